import type { BrokerEvent, ChannelPosition } from '@switchyard/broker';
import { CloseCode, encodeFrame } from '@switchyard/protocol';
import { SlowLane, coalesceKey } from './coalesce.js';
import type { Connection, JoinState } from './connection.js';
import type { EdgeContext } from './context.js';

/** Live events buffered per joining subscription before it gives up on exact recovery. */
const MAX_JOIN_BUFFER = 10_000;

/** The node's native fan-out: a uWS app publishes to a topic's sockets in C++. */
export interface Topics {
  publish(topic: string, message: string, isBinary?: boolean, compress?: boolean): unknown;
  numSubscribers(topic: string): number;
}

/** Clients whose socket cannot join a topic (SSE streams, sse.ts): their own member lists. */
export interface Streams {
  /** Returns how many streams got the event. */
  deliver(event: BrokerEvent): number;
  publish(channel: string, frame: string): void;
}

export type HubContext = Pick<EdgeContext, 'config' | 'log' | 'metrics' | 'registry' | 'conns'>;

/** A join waiting for this node's live stream (JoinState.waiting) has seen it catch up (subscriptions.ts). */
export type CompleteJoin = (conn: Connection, channel: string, join: JoinState) => void;

/**
 * The local index of who hears what, and the only part that moves frames to many clients:
 * uWS topics, the members and slow members of each channel, the connections joining one,
 * SSE streams, and the latest position seen per channel (where a closing session stood).
 * Broker events, presence signals and history resets come in here and go out to sockets.
 */
export class Hub {
  readonly #deps: HubContext;
  readonly #completeJoin: CompleteJoin;
  #topics: Topics | undefined;
  #streams: Streams | undefined;
  /** Connections joining a channel, to receive events that arrive meanwhile. */
  readonly #joiners = new Map<string, Set<Connection>>();
  /** Live subscribers per channel (fast and slow alike). */
  readonly #members = new Map<string, Set<Connection>>();
  /** Subscribers of a channel currently served from their own SlowLane instead of the uWS topic. */
  readonly #slowMembers = new Map<string, Set<Connection>>();
  /** Latest seq seen per channel with local subscribers: where a closing session stood. */
  readonly #channelSeq = new Map<string, { seq: number; epoch: string }>();

  constructor(ctx: HubContext, completeJoin: CompleteJoin) {
    this.#deps = ctx;
    this.#completeJoin = completeJoin;
  }

  /** Delivery starts once the node serves: before that, nothing is published anywhere. */
  open(topics: Topics, streams: Streams | undefined): void {
    this.#topics = topics;
    this.#streams = streams;
  }

  /** Channels with a recorded position (the `channels` of /stats). */
  get channels(): number {
    return this.#channelSeq.size;
  }

  positionOf(channel: string): { seq: number; epoch: string } | undefined {
    return this.#channelSeq.get(channel);
  }

  /** Channels with local subscribers: how many, and the latest seq seen (the console's rates). */
  *channelCounts(): Iterable<{ channel: string; subscribers: number; seq: number }> {
    for (const [channel, members] of this.#members) yield { channel, subscribers: members.size, seq: this.#channelSeq.get(channel)?.seq ?? 0 };
  }

  // ───────────────────────────── delivery ─────────────────────────────

  /** The broker's sink: one serialised frame, handed to uWS once for every local subscriber. */
  deliver(event: BrokerEvent): void {
    const app = this.#topics;
    if (app === undefined) return;
    const { config, metrics, registry } = this.#deps;
    const channel = event.channel;
    const seen = this.#channelSeq.get(channel);
    if (seen !== undefined) {
      seen.seq = event.seq;
      registry.notePosition(channel, seen);
    }
    const subscribers = app.numSubscribers(channel);
    if (subscribers > 0) app.publish(channel, event.frame, false, false);
    const streams = this.#streams?.deliver(event) ?? 0;
    const slow = this.#slowMembers.get(channel);
    if (slow !== undefined) for (const conn of slow) this.#enqueueSlow(conn, event);
    // A coalescable event is where a slow client hurts most (a flood of progress): check its
    // subscribers now rather than at the next sweep. Other channels wait for the sweep.
    if (subscribers > 0 && coalesceKey(event.frame) !== undefined) {
      const soft = config.coalesceBytes;
      for (const conn of this.#members.get(channel) ?? []) {
        if (conn.lane === undefined && conn.open && conn.ws!.getBufferedAmount() > soft) this.#enterSlowLane(conn);
      }
    }
    const joiners = this.#joiners.get(channel);
    if (joiners !== undefined) {
      for (const conn of joiners) {
        const join = conn.joining.get(channel);
        if (join === undefined) continue;
        if (join.buffer.length < MAX_JOIN_BUFFER) {
          join.buffer.push(event);
          join.bufferBytes += event.frame.length;
          if (join.bufferBytes > config.coalesceBytes && conn.open && this.overHardLimit(conn, conn.ws!.getBufferedAmount())) continue;
        } else join.overflowed = true;
        if (join.waiting !== undefined && event.seq >= join.waiting.sent) this.#completeJoin(conn, channel, join);
      }
    }
    metrics.count('event', 'out', subscribers + streams);
    metrics.deliveryLatency.observe(Math.max(0, Date.now() - event.publishedAt) / 1000);
  }

  /** A frame without a seq for a channel's subscribers here (presence join/leave): not for joiners, not replayed. */
  signal(channel: string, frame: string): void {
    const app = this.#topics;
    if (app === undefined) return;
    const n = app.numSubscribers(channel);
    if (n > 0) app.publish(channel, frame, false, false);
    const slow = this.#slowMembers.get(channel);
    if (slow !== undefined) for (const conn of slow) if (conn.open) conn.send(frame);
    this.#streams?.publish(channel, frame);
    this.#deps.metrics.count('presence_signal', 'out', n + (slow?.size ?? 0));
  }

  /** Subscribers of a channel whose stream could not be kept gap-free learn it here. */
  announceReset(channel: string, position: ChannelPosition): void {
    const seen = this.#channelSeq.get(channel);
    if (seen !== undefined) {
      seen.seq = Math.max(0, position.seq - 1);
      seen.epoch = position.epoch;
    }
    const frame = encodeFrame({ type: 'subscription_result', channel, success: true, seq: position.seq, epoch: position.epoch, recovered: false });
    this.#topics?.publish(channel, frame, false, false);
    this.#streams?.publish(channel, frame);
    this.#deps.log.warn({ channel, epoch: position.epoch }, 'channel history reset; subscribers told recovered:false');
  }

  /** An event the broker could not take, for this node's topic subscribers only (degraded mode). */
  publishLocal(channel: string, frame: string): void {
    const app = this.#topics;
    if (app === undefined) return;
    const n = app.numSubscribers(channel);
    if (n > 0) app.publish(channel, frame, false, false);
    this.#deps.metrics.count('event', 'out', n);
  }

  // ───────────────────────────── membership ─────────────────────────────

  /** `conn` starts buffering the channel's live events (JoinState); returns the set it joined. */
  addJoiner(channel: string, conn: Connection): Set<Connection> {
    return addMember(this.#joiners, channel, conn);
  }

  /** The end of a join that held `joiners` (addJoiner's answer), which may have been replaced since. */
  releaseJoiner(channel: string, conn: Connection, joiners: Set<Connection>): void {
    joiners.delete(conn);
    if (joiners.size === 0 && this.#joiners.get(channel) === joiners) this.#joiners.delete(channel);
  }

  removeJoiner(channel: string, conn: Connection): void {
    removeMember(this.#joiners, channel, conn);
  }

  /** A closing connection stops buffering; the join's own end releases the set. */
  forgetJoiner(channel: string, conn: Connection): void {
    this.#joiners.get(channel)?.delete(conn);
  }

  /**
   * The socket joins the channel's topic and the channel's members; the position it was sent
   * up to becomes the channel's, unless the node has seen further. Called inside the cork
   * that flushed the join's buffer, so no live event falls between.
   */
  attach(conn: Connection, channel: string, last: number, epoch: string): void {
    conn.ws!.subscribe(channel);
    addMember(this.#members, channel, conn);
    const seen = this.#channelSeq.get(channel);
    if (seen === undefined || seen.seq < last || seen.epoch !== epoch) this.#channelSeq.set(channel, { seq: last, epoch });
  }

  /** A live subscription ends: off the topic (or the slow lane) and the members. */
  detach(conn: Connection, channel: string): void {
    if (conn.open) conn.ws!.unsubscribe(channel);
    removeMember(this.#members, channel, conn);
    removeMember(this.#slowMembers, channel, conn);
    conn.lane?.channels.delete(channel);
    if (!this.#members.has(channel) && !this.#joiners.has(channel)) this.#forgetChannel(channel);
  }

  /** A closed connection leaves every channel it was a member of (uWS drops its topics itself). */
  dropConnection(conn: Connection): void {
    for (const channel of conn.subscriptions) {
      removeMember(this.#members, channel, conn);
      removeMember(this.#slowMembers, channel, conn);
      if (!this.#members.has(channel) && !this.#joiners.has(channel)) this.#forgetChannel(channel);
    }
  }

  /** No local subscriber or joiner is left: the channel's position is no longer this node's to record. */
  #forgetChannel(channel: string): void {
    if (this.#channelSeq.delete(channel)) this.#deps.registry.forgetPosition(channel);
  }

  // ───────────────────────────── slow consumers ─────────────────────────────

  /** Every BACKPRESSURE_CHECK_MS: close what is over the hard bound, move what is over the soft one to a lane. */
  pressureSweep(): void {
    const { config } = this.#deps;
    const soft = config.coalesceBytes;
    const now = Date.now();
    for (const conn of this.#deps.conns) {
      if (!conn.open) continue;
      const buffered = conn.ws!.getBufferedAmount();
      if (this.overHardLimit(conn, buffered)) continue;
      // A replay waiting on a client that reads nothing is a client that cannot keep up; with
      // no replay waiting (or room again) the clock starts over.
      if (buffered < soft || !conn.replay.waiting) conn.replay.drained();
      const stalled = conn.replay.stalledSince;
      if (stalled !== undefined && now - stalled > config.replayStallMs) {
        this.#closeSlow(conn);
        continue;
      }
      conn.replay.wake();
      if (conn.lane !== undefined) this.flushSlowLane(conn);
      else if (buffered > soft && conn.subscriptions.size > 0) this.#enterSlowLane(conn);
    }
  }

  /** MAX_BACKPRESSURE_BYTES over everything held for the client (Connection.heldBytes). */
  overHardLimit(conn: Connection, buffered: number): boolean {
    if (conn.heldBytes(buffered) <= this.#deps.config.maxBackpressureBytes) return false;
    this.#closeSlow(conn);
    return true;
  }

  /** 4010; the session stays resumable (saved on close, rewound past what was still buffered). */
  #closeSlow(conn: Connection): void {
    this.#deps.log.info({ conn: conn.id, user: conn.userId }, 'slow consumer closed');
    this.#deps.metrics.count('slow_consumer', 'out');
    conn.end(CloseCode.SlowConsumer, 'slow_consumer');
  }

  /**
   * Coalescing instead of dropping. Past COALESCE_BYTES buffered, a connection's channels
   * leave the native uWS fan-out and its events queue in its own SlowLane, where a newer
   * coalescable event replaces the older one of its key. The switch happens on the next
   * turn: uWS drops a message published in the same turn to a socket that unsubscribes from
   * its topic, and the lane takes over exactly after the last seq the topic delivered.
   */
  #enterSlowLane(conn: Connection): void {
    const lane = new SlowLane();
    conn.lane = lane;
    this.#deps.metrics.count('slow_lane', 'out');
    setImmediate(() => {
      if (!conn.open || conn.lane !== lane) return;
      for (const channel of conn.subscriptions) {
        conn.ws!.unsubscribe(channel);
        lane.channels.set(channel, this.#channelSeq.get(channel)?.seq ?? 0);
        addMember(this.#slowMembers, channel, conn);
      }
    });
  }

  #enqueueSlow(conn: Connection, event: BrokerEvent): void {
    const lane = conn.lane;
    if (lane === undefined || !conn.open) return;
    lane.enqueue(event);
    if (!this.overHardLimit(conn, conn.ws!.getBufferedAmount())) this.flushSlowLane(conn);
  }

  /** Sends what the socket can take; once the lane is empty and the socket drained, back to the topic. */
  flushSlowLane(conn: Connection): void {
    const lane = conn.lane;
    if (lane === undefined || !conn.open || lane.channels.size === 0) return;
    const ws = conn.ws!;
    const soft = this.#deps.config.coalesceBytes;
    let sent = 0;
    const empty = lane.flush(
      (frame) => {
        ws.send(frame, false, false);
        sent++;
      },
      () => ws.getBufferedAmount() < soft,
    );
    this.#deps.metrics.count('event', 'out', sent);
    if (!empty || ws.getBufferedAmount() > soft / 2) return;
    // One synchronous step: nothing published can fall between the lane and the topic.
    for (const channel of lane.channels.keys()) {
      if (!conn.subscriptions.has(channel)) continue;
      ws.subscribe(channel);
      removeMember(this.#slowMembers, channel, conn);
    }
    conn.lane = undefined;
  }
}

function addMember(map: Map<string, Set<Connection>>, channel: string, conn: Connection): Set<Connection> {
  let set = map.get(channel);
  if (set === undefined) {
    set = new Set();
    map.set(channel, set);
  }
  set.add(conn);
  return set;
}

function removeMember(map: Map<string, Set<Connection>>, channel: string, conn: Connection): void {
  const set = map.get(channel);
  if (set === undefined) return;
  set.delete(conn);
  if (set.size === 0) map.delete(channel);
}
