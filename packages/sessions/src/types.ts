/** Where a session stood on one channel: the last seq it was given, in which history epoch. */
export interface SessionPosition {
  seq: number;
  epoch: string;
}

export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  /** Channel → position. */
  subscriptions: Record<string, SessionPosition>;
  /** The node that last held the session live (to recover positions if it died). */
  node?: string;
  /** True while a connection holds it; a record still live on a dead node was never closed cleanly. */
  live?: boolean;
}

/**
 * Sessions outlive connections by WEBSOCKET_SESSION_TTL so a client can resume on any
 * node. Positions are written when subscriptions change and when a connection closes, not
 * per delivered message; a node that dies leaves its latest positions in the registry.
 */
export interface SessionStore {
  load(id: string): Promise<SessionRecord | undefined>;
  /** Writes the record and restarts its TTL. */
  save(record: SessionRecord): Promise<void>;
  delete(id: string): Promise<void>;
  /** Sessions alive (connected or resumable), cluster-wide; a cached figure. */
  count(): number;
  close(): Promise<void>;
}

/** What a node says about itself at each heartbeat. */
export interface WorkerInfo {
  id: string;
  connections: number;
  startedAt: number;
  draining: boolean;
  /** What the node tells operators about itself (the console); the registry only carries it. */
  stats?: NodeStats;
}

/** One channel as a node sees it: its local subscribers and how fast its events arrive. */
export interface ChannelStat {
  channel: string;
  subscribers: number;
  seq: number;
  events_per_s: number;
}

/** A node's own numbers, sampled at most once per heartbeat. */
export interface NodeStats {
  /** Connections of this node that hold a session. */
  sessions: number;
  subscriptions: number;
  channels: number;
  /** CPU time of the process over wall time since the last sample (100 = one core busy). */
  cpu_percent: number;
  rss_bytes: number;
  heap_used_bytes: number;
  /** The node's busiest channels (by events per second, then subscribers). */
  top_channels: ChannelStat[];
  sampled_at: number;
}

/**
 * Storage concern 3, membership: nodes announce themselves with TTL heartbeats; one that stops
 * is gone within three heartbeats, one that drains leaves at once.
 */
export interface Membership {
  /** Starts heartbeating. */
  start(self: () => WorkerInfo): Promise<void>;
  /** Cached, refreshed each heartbeat. */
  totalWorkers(): number;
  totalConnections(): number;
  workers(): readonly WorkerInfo[];
  isAlive(workerId: string): boolean;
  /** Like isAlive, but asks the shared store about a node the cache does not know. */
  checkAlive(workerId: string): Promise<boolean>;
  /** Leaves the registry at once (drain). */
  leave(): Promise<void>;
}

/** Where users' connections live, cluster-wide: for direct messages and the per-user connection limit. */
export interface ConnectionDirectory {
  /** Where a connection lives; undefined when absent or its node is gone. */
  locateConnection(connectionId: string): Promise<string | undefined>;
  /** Nodes (alive) holding connections of a user. */
  nodesOfUser(userId: string): Promise<string[]>;
  /**
   * Records the connection only if the user holds fewer than `max` connections on live
   * nodes, cluster-wide and atomically; entries of dead nodes do not count, so the limit
   * heals when a node dies.
   */
  admitConnection(connectionId: string, userId: string, max: number): Promise<boolean>;
  removeConnection(connectionId: string, userId: string): void;
}

/** Storage concern 4, the per-user budget: publishes and direct messages per second, cluster-wide. */
export interface UserBudget {
  /** Counts one publish/direct of a user against a cluster-wide per-second budget. */
  takeUserToken(userId: string, perS: number): Promise<boolean>;
}

/**
 * Storage concern 5, checkpoints: the channel positions each node delivered, so that the
 * sessions of a node that died resume from where it got to.
 */
export interface Checkpoints {
  /** Latest seq this node handed to local subscribers, per channel; flushed in batches. */
  notePosition(channel: string, position: SessionPosition): void;
  /**
   * This node no longer holds `channel` (its last local subscriber left): its recorded
   * position goes, so the node's position hash holds only the channels it holds.
   */
  forgetPosition(channel: string): void;
  /** Positions a (possibly dead) node last recorded. */
  positionsOf(workerId: string): Promise<Record<string, SessionPosition>>;
}

/** The registry: membership, the connection directory, the per-user budget and checkpoints over one store. */
export interface WorkerRegistry extends Membership, ConnectionDirectory, UserBudget, Checkpoints {
  close(): Promise<void>;
}
