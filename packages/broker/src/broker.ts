/**
 * The cross-node pub/sub seam. The edge talks only to this interface; the in-memory
 * implementation serves a single node, the Redis one (cluster issue) a cluster.
 *
 * Events cross the broker already serialised as the wire `event` frame, so a node
 * forwards them to its sockets without parsing them again.
 */

export interface BrokerEvent {
  readonly channel: string;
  /** Per channel, cluster-wide, rising by exactly 1 per event. */
  readonly seq: number;
  /** The complete `{"type":"event",...}` frame, ready to send. */
  readonly frame: string;
  /** When it was published (ms since the epoch), for the delivery-latency histogram. */
  readonly publishedAt: number;
}

export interface PublishRequest {
  readonly channel: string;
  readonly event: string;
  /** The event's `data`, already JSON. */
  readonly dataJson: string;
  /** Coalescing key: slow clients get only the latest event of a key (channel-name characters). */
  readonly coalesce?: string;
}

/** See RedisBroker.publishTarget: the keys and settings of a channel's publish step. */
export interface PublishTarget {
  readonly meta: string;
  readonly hist: string;
  readonly pubsub: string;
  /** The event frame up to its seq (`eventPrefix`). */
  readonly prefix: string;
  readonly historySize: number;
  readonly ttlS: number;
  readonly sharded: boolean;
  /** Makes the epoch a channel without history starts with. */
  readonly newEpoch: () => string;
}

export interface ChannelPosition {
  /** The channel's latest seq; 0 before its first event. */
  readonly seq: number;
  /** Changes whenever the channel's history is reset (expired, flushed); seqs restart then. */
  readonly epoch: string;
}

export interface HistoryPage extends ChannelPosition {
  /** Every retained event with seq > since, oldest first. */
  readonly events: readonly BrokerEvent[];
  /** False when events after `since` were no longer retained (or `since` is from another epoch). */
  readonly recovered: boolean;
}

export interface BrokerHealth {
  readonly healthy: boolean;
  readonly status: 'ok' | 'disabled' | 'down';
  readonly latencyMs: number | null;
}

export type BrokerListener = (event: BrokerEvent) => void;

export type SignalListener = (channel: string, frame: string) => void;

/**
 * Called when a channel's delivery could not be kept gap-free (history reset or trimmed
 * past what was missed): subscribers should be told their stream was not recovered.
 */
export type ResetListener = (channel: string, position: ChannelPosition) => void;

/**
 * Storage concern 1, pub/sub + history: each channel's seqs, its bounded history and the
 * fan-out of its events to the nodes subscribed to it.
 */
export interface ChannelLog {
  /** The one sink for events of channels this node is subscribed to. */
  setListener(listener: BrokerListener): void;
  onReset(listener: ResetListener): void;
  /** Assigns the next seq, stores the event in history and fans it out to every interested node. */
  publish(request: PublishRequest): Promise<BrokerEvent>;
  /** Reference-counted: the node receives the channel while at least one local subscriber wants it. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): void;
  position(channel: string): Promise<ChannelPosition>;
  /**
   * How far this node's listener has been handed the events of a subscribed channel: events
   * at or below `seq` are never handed over live any more, every later one will be. Undefined
   * while not known. A joining subscriber whose history read ran ahead of it waits for it.
   */
  delivered?(channel: string): ChannelPosition | undefined;
  /**
   * Events after `since` still retained, oldest first; at most `limit` of them when given (a
   * page: the rest is read with `since` = the last seq of this one).
   */
  history(channel: string, since: number, limit?: number): Promise<HistoryPage>;
  /**
   * The sink for frames sent to a channel's subscribers without a seq (presence `join`/`leave`):
   * never in history, never checked against seqs. Only for channels this node is subscribed to.
   */
  onSignal(listener: SignalListener): void;
  /** Sends such a frame to every node subscribed to `channel`. */
  signal(channel: string, frame: string): Promise<void>;
}

/** Storage concern 2, the node bus: small control messages to one node's inbox (direct messages). */
export interface NodeBus {
  sendToNode(nodeId: string, payload: string): Promise<void>;
  /** The sink for this node's inbox. */
  onNodeMessage(listener: (payload: string) => void): void;
}

/** The broker: a channel log and a node bus over one backing store (memory, or Redis). */
export interface Broker extends ChannelLog, NodeBus {
  readonly kind: 'memory' | 'redis';
  health(): BrokerHealth;
  /** Resolves once the backing store is reachable; rejects after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface BrokerOptions {
  /**
   * Events kept per channel for `since` replay and session resume.
   * @default 1000
   */
  historySize?: number;
  /**
   * Seconds a channel's history lives after its last event.
   * @default 3600
   */
  historyTtlS?: number;
}

export const DEFAULT_HISTORY_SIZE = 1000;
export const DEFAULT_HISTORY_TTL_S = 3600;
