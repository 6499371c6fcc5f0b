import type { HistoryPage } from '@switchyard/broker';
import { ErrorCode, encodeFrame, type Ref, type ServerFrame } from '@switchyard/protocol';
import type { Connection, JoinState } from './connection.js';
import { MIN_BODY_LIMIT, mayRead, saveSession, sleep, type EdgeContext } from './context.js';
import type { Hub } from './hub.js';
import type { JobSnapshotView } from './job-access.js';
import { ReplayBudget, Replayer, replayToSocket } from './replay.js';

/** Longest a join waits for this node's live stream to catch up with the history it sent. */
const JOIN_CATCH_UP_MS = 1000;
/** How long a subscribe waits for an earlier join of the same channel to finish. */
const JOIN_WAIT_MS = 10_000;
const JOIN_POLL_MS = 10;
/** What an event frame adds around its data (type, channel, seq, event, timestamp). */
const EVENT_FRAME_OVERHEAD = 1024;

export type SubscriptionContext = Pick<EdgeContext, 'config' | 'log' | 'metrics' | 'broker' | 'sessions' | 'presence' | 'jobs'>;

/**
 * One connection's channels: subscribe (rights, limits, repeats), the join of history and
 * live (replay.ts pages it), leave and unsubscribe. A channel is `joining` (conn.joining)
 * until the join completes, then live (conn.subscriptions, a member in the hub).
 */
export class Subscriptions {
  readonly #deps: SubscriptionContext;
  readonly #hub: Hub;
  readonly #replayer: Replayer;

  constructor(ctx: SubscriptionContext, hub: Hub) {
    this.#deps = ctx;
    this.#hub = hub;
    const c = ctx.config;
    this.#replayer = new Replayer(new ReplayBudget(c.maxReplayBytesInFlight), Math.max(c.maxMessageBytes, MIN_BODY_LIMIT) + EVENT_FRAME_OVERHEAD);
  }

  async subscribe(conn: Connection, channel: string, since: number | undefined, ref: Ref | undefined, epoch?: string, withSnapshot = true): Promise<void> {
    const { config, metrics, broker } = this.#deps;
    const claims = conn.claims!;
    const result = (extra: { success: boolean; error?: string; seq?: number }) => {
      conn.send(encodeFrame({ type: 'subscription_result', channel, ...extra, ...(ref !== undefined && { ref }) }));
      metrics.count('subscription_result', 'out');
    };
    // A subscribe to a channel still joining (a resumed session restores its channels while the
    // client, reconnected, subscribes again) waits for that join, then answers as a repeat.
    if (!(await this.#joined(conn, channel))) return;
    const already = conn.subscriptions.has(channel);
    if (!already && conn.subscriptions.size + conn.joining.size >= config.maxSubscriptionsPerConnection) {
      return result({ success: false, error: ErrorCode.TooManySubscriptions });
    }
    if (!(await mayRead(this.#deps, claims, channel))) return result({ success: false, error: ErrorCode.Forbidden });
    if (!conn.open) return;
    // Checked again after the await: subscribes pipelined by one client must not overshoot the limit together.
    if (!conn.subscriptions.has(channel) && conn.subscriptions.size + conn.joining.size >= config.maxSubscriptionsPerConnection) {
      return result({ success: false, error: ErrorCode.TooManySubscriptions });
    }
    if (!(await this.#joined(conn, channel))) return;
    if (conn.subscriptions.has(channel)) {
      if (since === undefined) {
        const position = await broker.position(channel);
        return result({ success: true, seq: position.seq });
      }
      // A repeated subscribe with `since` asks for a replay: rejoin from that point (presence
      // stays). Only once the store answers: while it is away the replay cannot be made, and the
      // live subscription must not end for it.
      try {
        await broker.position(channel);
      } catch {
        return result({ success: false, error: ErrorCode.Unavailable });
      }
      if (!conn.open) return;
      if (conn.subscriptions.has(channel)) this.leave(conn, channel, true);
    }
    // A refresh while this subscribe waited: the rights that count are the newest token's.
    if (conn.claims !== claims && !(await mayRead(this.#deps, conn.claims!, channel))) return result({ success: false, error: ErrorCode.Forbidden });
    if (!conn.open) return;
    await this.#join(conn, channel, since, ref, epoch, withSnapshot);
  }

  /** Waits (bounded) until no join of `channel` is in progress; false when the connection went away. */
  async #joined(conn: Connection, channel: string): Promise<boolean> {
    const deadline = Date.now() + JOIN_WAIT_MS;
    while (conn.joining.has(channel) && conn.open && Date.now() < deadline) await sleep(JOIN_POLL_MS);
    return conn.open && !conn.joining.has(channel);
  }

  /**
   * Joins a channel without a gap or a duplicate at the seam between history and live:
   * events that arrive while the position or history is fetched are buffered on the
   * connection, then history, then the buffer (deduplicated by seq) are sent, and only then
   * is the socket added to the uWS topic — all in one synchronous step, so no live event can
   * slip between them. A `job:<id>` channel (unless asked `snapshot: false`) starts with a
   * `snapshot` of the job's status, read after the broker subscription is in place; the
   * history read then starts at the seq the snapshot reflects, or at `since` when given.
   */
  async #join(conn: Connection, channel: string, since: number | undefined, ref: Ref | undefined, epoch: string | undefined, withSnapshot = true): Promise<void> {
    const { broker, metrics, log } = this.#deps;
    const join: JoinState = { buffer: [], bufferBytes: 0, overflowed: false };
    conn.joinMap().set(channel, join);
    const joiners = this.#hub.addJoiner(channel, conn);
    let interest = false;
    let waiting = false;
    try {
      await broker.subscribe(channel);
      interest = true;
      // A job channel starts with a snapshot of the job's status (read after the subscribe,
      // so every later event is in the history read below or in the join buffer).
      const snapshot = withSnapshot ? await this.#jobSnapshot(channel) : undefined;
      let page: HistoryPage | undefined;
      let tail: { page: HistoryPage; seq: number; from: number } | undefined;
      // Superseded meanwhile (an unsubscribe right behind the subscribe): no history is read at all.
      const wanted = () => conn.open && conn.joining.get(channel) === join;
      const readPage = (from: number, limit: number) => (wanted() ? broker.history(channel, from, limit) : broker.position(channel).then((p) => ({ ...p, events: [], recovered: false })));
      if (snapshot === undefined) page = since === undefined ? undefined : await this.#replayer.firstPage(readPage, since);
      else if (since === undefined) page = (tail = await this.#tailOf(channel, snapshot, undefined, epoch)).page;
      else {
        // With `since` the contract's replay holds (PROTOCOL.md §3: every event after `since`,
        // `recovered:false` where history lost some); the snapshot comes first as extra context.
        const at = await this.#tailOf(channel, snapshot, undefined, undefined);
        page = await this.#replayer.firstPage(readPage, since);
        tail = { page, seq: at.seq, from: since };
      }
      const position = page ?? (await broker.position(channel));
      if (!conn.open || conn.joining.get(channel) !== join) {
        broker.unsubscribe(channel);
        return;
      }
      // A session from another epoch (history reset) cannot be replayed exactly; after a
      // snapshot, only the events after it need to be (the snapshot stands for the rest).
      const epochMatches = epoch === undefined || epoch === position.epoch || (tail !== undefined && since === undefined);
      const recovered = page === undefined || (tail !== undefined && since === undefined) ? undefined : page.recovered && epochMatches && !join.overflowed;
      const frame: ServerFrame = { type: 'subscription_result', channel, success: true, seq: position.seq, epoch: position.epoch };
      if (recovered !== undefined) frame.recovered = recovered;
      if (ref !== undefined) frame.ref = ref;
      const ws = conn.ws!;
      let last = tail?.from ?? since ?? position.seq;
      ws.cork(() => {
        ws.send(encodeFrame(frame), false, false);
        if (tail !== undefined) ws.send(encodeFrame({ type: 'snapshot', channel, seq: tail.seq, epoch: position.epoch, data: snapshot!.data }), false, false);
        if (page !== undefined) {
          for (const e of page.events) {
            if (e.seq > last) {
              ws.send(e.frame, false, false);
              last = e.seq;
            }
          }
        }
      });
      metrics.count('subscription_result', 'out');
      if (page !== undefined && Replayer.hasMore(page, last)) {
        const outcome = await replayToSocket(this.#replayer, conn, channel, readPage, wanted, last, page, this.#deps.config.coalesceBytes);
        if (!wanted()) {
          broker.unsubscribe(channel);
          return;
        }
        last = outcome;
      }
      ws.cork(() => {
        for (const e of join.buffer) {
          if (e.seq > last) {
            ws.send(e.frame, false, false);
            last = e.seq;
          }
        }
      });
      join.buffer = [];
      join.bufferBytes = 0;
      // The history read may have been answered before this node's live stream brought the
      // same events (two Redis connections): then wait for the live stream to pass what was
      // sent before taking live events, or they would come twice.
      const live = broker.delivered?.(channel);
      if (live !== undefined && live.epoch === position.epoch && live.seq < last) {
        waiting = true;
        log.debug({ channel, sent: last, live: live.seq }, 'join waits for the live stream to catch up with the history it sent');
        join.waiting = { sent: last, epoch: position.epoch, timer: setTimeout(() => this.completeJoin(conn, channel, join), JOIN_CATCH_UP_MS) };
        return;
      }
      join.waiting = { sent: last, epoch: position.epoch };
      this.completeJoin(conn, channel, join);
    } catch (err) {
      if (interest) broker.unsubscribe(channel);
      log.warn({ err, channel }, 'subscribe failed');
      if (conn.open && conn.joining.get(channel) === join) {
        conn.send(
          encodeFrame({ type: 'subscription_result', channel, success: false, error: ErrorCode.Unavailable, ...(ref !== undefined && { ref }) }),
        );
      }
    } finally {
      if (!waiting) {
        if (conn.joining.get(channel) === join) conn.joining.delete(channel);
        this.#hub.releaseJoiner(channel, conn, joiners);
      }
    }
  }

  /**
   * The last step of a join: what live events came after what was sent, then the socket joins
   * the uWS topic — in one synchronous step. Called at once, or (`join.waiting`) when this
   * node's live stream of the channel has caught up with the history sent, or after
   * JOIN_CATCH_UP_MS in any case.
   */
  completeJoin(conn: Connection, channel: string, join: JoinState): void {
    const at = join.waiting;
    if (at === undefined || conn.joining.get(channel) !== join) return;
    clearTimeout(at.timer);
    join.waiting = undefined;
    conn.joining.delete(channel);
    this.#hub.removeJoiner(channel, conn);
    if (!conn.open) {
      this.#deps.broker.unsubscribe(channel);
      return;
    }
    const ws = conn.ws!;
    let last = at.sent;
    ws.cork(() => {
      for (const e of join.buffer) {
        if (e.seq > last) {
          ws.send(e.frame, false, false);
          last = e.seq;
        }
      }
      this.#hub.attach(conn, channel, last, at.epoch);
    });
    join.buffer = [];
    join.bufferBytes = 0;
    conn.subscriptions.add(channel);
    if (conn.session !== undefined) {
      conn.session.subscriptions[channel] = { seq: last, epoch: at.epoch };
      saveSession(this.#deps, conn.session);
    }
    this.#deps.presence.joined(conn, channel);
  }

  /** A join waiting for the live stream ends without completing (unsubscribe, close): its broker interest goes. */
  #dropWaitingJoin(conn: Connection, channel: string, join: JoinState): void {
    if (join.waiting === undefined) return;
    clearTimeout(join.waiting.timer);
    join.waiting = undefined;
    this.#hub.removeJoiner(channel, conn);
    this.#deps.broker.unsubscribe(channel);
  }

  /** The job status a `job:<id>` subscription starts with; undefined for other channels, or without one. */
  async #jobSnapshot(channel: string): Promise<JobSnapshotView | undefined> {
    const jobs = this.#deps.jobs;
    if (!channel.startsWith('job:') || jobs?.snapshot === undefined) return undefined;
    try {
      return await jobs.snapshot(channel.slice(4));
    } catch (err) {
      // Without a snapshot the subscription still works the contract's way.
      this.#deps.log.warn({ err, channel }, 'job snapshot unavailable');
      return undefined;
    }
  }

  /**
   * The history after a snapshot: events with seq above the snapshot's, and above `since`
   * when the client has seen more. `seq` is the snapshot's seq in the channel's current
   * epoch — 0 when the history was reset after the last job event (every event of the new
   * epoch came after it), in which case a `since` from the old epoch means nothing.
   */
  async #tailOf(channel: string, snapshot: JobSnapshotView, since: number | undefined, sinceEpoch: string | undefined): Promise<{ page: HistoryPage; seq: number; from: number }> {
    const broker = this.#deps.broker;
    let seq = snapshot.seq;
    let from = since !== undefined && since > seq ? since : seq;
    let page = await broker.history(channel, from);
    const sinceValid = (p: HistoryPage) => since !== undefined && (sinceEpoch === undefined ? since <= p.seq : sinceEpoch === p.epoch);
    if (page.epoch !== snapshot.epoch) {
      seq = 0;
      from = sinceValid(page) ? since! : 0;
      page = await broker.history(channel, from);
    } else if (from !== seq && !sinceValid(page)) {
      from = seq;
      page = await broker.history(channel, from);
    }
    return { page, seq, from };
  }

  /** Drops a channel from a connection, live or joining; false when it had neither. */
  leave(conn: Connection, channel: string, rejoining = false): boolean {
    if (conn.subscriptions.delete(channel)) {
      if (!rejoining) this.#deps.presence.left(conn, channel);
      this.#deps.broker.unsubscribe(channel);
      if (conn.session !== undefined) delete conn.session.subscriptions[channel];
      this.#hub.detach(conn, channel);
      return true;
    }
    // A pending join notices it was superseded and releases its own broker interest; a join
    // waiting for the live stream has nothing pending, so it is released here.
    const joining = conn.joining.get(channel);
    if (joining !== undefined) this.#dropWaitingJoin(conn, channel, joining);
    if (conn.joining.delete(channel)) {
      if (conn.session !== undefined) delete conn.session.subscriptions[channel];
      return true;
    }
    return false;
  }

  async unsubscribe(conn: Connection, channel: string, ref: Ref | undefined): Promise<void> {
    this.leave(conn, channel);
    conn.send(encodeFrame({ type: 'unsubscribed', channel, ...(ref !== undefined && { ref }) }));
    this.#deps.metrics.count('unsubscribed', 'out');
    if (conn.session !== undefined) void this.#deps.sessions.save(conn.session).catch(() => undefined);
  }

  /** A closed connection's joins end; one waiting for the live stream had sent up to there, and its session resumes from it. */
  closeJoins(conn: Connection): void {
    for (const [channel, join] of conn.joining) {
      if (join.waiting !== undefined && conn.session !== undefined) conn.session.subscriptions[channel] = { seq: join.waiting.sent, epoch: join.waiting.epoch };
      this.#dropWaitingJoin(conn, channel, join);
      this.#hub.forgetJoiner(channel, conn);
    }
  }
}
