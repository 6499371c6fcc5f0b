import { CloseCode, ErrorCode, encodeError, encodeFrame, type Ref, type ServerFrame } from '@switchyard/protocol';
import { newSessionId, type SessionRecord } from '@switchyard/sessions';
import { ExpiryWheel } from './expiry-wheel.js';
import { rewindSeq } from './replay.js';
import type { Claims } from './auth.js';
import type { Connection } from './connection.js';
import { mayRead, saveSession, type EdgeContext } from './context.js';
import { AuthError } from './errors.js';
import { encodeNodeMessage } from './node-messages.js';

/** How long a resume waits for the node that holds a session to hand it over. */
const HANDOVER_TIMEOUT_MS = 500;
/** Close code for a connection whose session was resumed by a newer connection (extension). */
export const SESSION_TAKEN_OVER = CloseCode.SessionTakenOver;

/** What authentication asks of the rest of the node. */
export interface AuthHooks {
  /** Restores a resumed session's channel (subscriptions.ts). */
  subscribe(conn: Connection, channel: string, since: number | undefined, ref: Ref | undefined, epoch?: string): Promise<void>;
  /** Drops a channel, live or joining; false when the connection had neither. */
  leave(conn: Connection, channel: string): boolean;
  /** Handles a frame that was queued while the first `auth` was verified. */
  handleText(conn: Connection, text: string): void;
  internal(conn: Connection, err: unknown, ref: Ref | undefined): void;
}

/**
 * Who a connection is and which session it carries: first-frame and upgrade auth, token
 * refresh (and the subscriptions it revokes), expiry, the per-user limits, session resume,
 * the handover of a session still live on another node, and saving where a closing
 * connection stood.
 */
export class AuthSessions {
  readonly #ctx: EdgeContext;
  readonly #hooks: AuthHooks;
  readonly #handovers = new Map<string, () => void>();
  #handoverSeq = 0;

  constructor(ctx: EdgeContext, hooks: AuthHooks) {
    this.#ctx = ctx;
    this.#hooks = hooks;
  }

  authFail(conn: Connection, code: string, error: string, closeCode: number = CloseCode.AuthFailed): void {
    conn.send(encodeFrame({ type: 'auth_error', error, code }));
    this.#ctx.metrics.count('auth_error', 'out');
    conn.end(closeCode, code);
  }

  async onAuthFrame(conn: Connection, token: string, sessionId: string | undefined, ref: Ref | undefined, positions?: Record<string, number>): Promise<void> {
    const refreshing = conn.state === 'ready';
    if (!refreshing) conn.state = 'authenticating';
    let claims: Claims;
    try {
      claims = await this.#ctx.verifier.verify(token);
    } catch (err) {
      if (!conn.open) return;
      const reason = err instanceof AuthError ? err.reason : 'token_malformed';
      const message = err instanceof AuthError ? err.message : 'token rejected';
      return this.authFail(conn, reason, message);
    }
    if (!conn.open) return;
    if (refreshing) return this.#refreshAuth(conn, claims, ref);
    await this.completeAuth(conn, claims, sessionId, ref, positions);
  }

  /** A fresh token on a live connection: same user, new expiry and rights. */
  async #refreshAuth(conn: Connection, claims: Claims, ref: Ref | undefined): Promise<void> {
    if (claims.sub !== conn.userId) {
      conn.send(encodeError(ErrorCode.Forbidden, 'a refreshed token must have the same sub', ref));
      return;
    }
    conn.claims = claims;
    this.#armExpiry(conn);
    this.#sendAuthSuccess(conn, false, ref);
    // The connection keeps its own (interned) copy: that identity is what a newer refresh replaces.
    await this.#revokeLost(conn, conn.claims ?? claims);
  }

  /**
   * PROTOCOL.md §9: every subscription (live or joining) the refreshed token no longer allows
   * ends with `unsubscribed` + `reason:"forbidden"`, and leaves the session so no resume brings
   * it back. Decided against the claims in force after each await: a newer refresh wins.
   */
  async #revokeLost(conn: Connection, claims: Claims): Promise<void> {
    for (const channel of [...conn.subscriptions, ...conn.joining.keys()]) {
      const allowed = await mayRead(this.#ctx, claims, channel).catch(() => false);
      if (allowed || !conn.open || conn.claims !== claims || !this.#hooks.leave(conn, channel)) continue;
      conn.send(encodeFrame({ type: 'unsubscribed', channel, reason: 'forbidden' }));
      this.#ctx.metrics.count('unsubscribed', 'out');
      if (conn.session !== undefined) saveSession(this.#ctx, conn.session);
    }
  }

  async completeAuth(conn: Connection, claims: Claims, sessionId: string | undefined, ref: Ref | undefined, positions?: Record<string, number>): Promise<void> {
    const ctx = this.#ctx;
    const { config, log } = ctx;
    clearTimeout(conn.authTimer);
    conn.authTimer = undefined;
    if (conn.admittedAs === 'pending') {
      if (!ctx.admission.authenticate()) return this.authFail(conn, ErrorCode.TooManyConnections, 'too_many_connections', CloseCode.TooManyConnections);
      conn.admittedAs = 'authenticated';
    }
    if (ctx.byUser.count(claims.sub) >= config.maxConnectionsPerUser) {
      return this.authFail(conn, ErrorCode.TooManyConnections, 'too_many_connections', CloseCode.TooManyConnections);
    }
    // Reserve the slot before any await so two racing connections of one user cannot both pass.
    conn.claims = claims;
    this.#addToUser(conn);
    // The same limit across the cluster, decided atomically in Redis. If Redis cannot answer,
    // the node's own count (above) still holds: admission fails open, not closed.
    const admitted = await ctx.registry.admitConnection(conn.id, claims.sub, config.maxConnectionsPerUser).catch((err: unknown) => {
      log.warn({ err }, 'cluster-wide admission unavailable; local limit only');
      return true;
    });
    if (!conn.open) return;
    if (!admitted) return this.authFail(conn, ErrorCode.TooManyConnections, 'too_many_connections', CloseCode.TooManyConnections);

    let record: SessionRecord | undefined;
    if (sessionId !== undefined) {
      try {
        const loaded = await ctx.sessions.load(sessionId);
        if (loaded !== undefined && loaded.userId === claims.sub) record = loaded;
      } catch (err) {
        log.warn({ err, sessionId }, 'session load failed; starting a new session');
      }
      if (!conn.open) return;
    }
    const resumed = record !== undefined;
    if (record !== undefined) {
      const previous = ctx.bySession.get(record.id);
      if (previous !== undefined && previous !== conn) {
        previous.session = undefined;
        previous.end(SESSION_TAKEN_OVER, 'session_resumed_elsewhere');
      }
    }
    if (record !== undefined && record.live === true && record.node !== undefined && record.node !== config.workerId) {
      record = await this.#settle(record);
      if (!conn.open) return;
    }
    conn.session = record ?? { id: newSessionId(), userId: claims.sub, subscriptions: {} };
    conn.session.node = config.workerId;
    conn.session.live = true;
    ctx.bySession.set(conn.session.id, conn);
    conn.state = 'ready';
    this.#armExpiry(conn);
    this.#sendAuthSuccess(conn, resumed, ref);
    void ctx.sessions.save(conn.session).catch((err: unknown) => log.warn({ err }, 'session save failed'));

    if (record !== undefined) {
      for (const [channel, position] of Object.entries(record.subscriptions)) {
        // The client's own position (v1.1 `positions`) beats the recorded one: it is exactly
        // what it received, where a killed node's record may lag behind or run ahead.
        const seq = positions !== undefined && Object.hasOwn(positions, channel) ? positions[channel]! : position.seq;
        // Rights are checked again: the new token may grant less than the one that made the session.
        this.#hooks.subscribe(conn, channel, seq, undefined, position.epoch).catch((err: unknown) => this.#hooks.internal(conn, err, undefined));
      }
    }
    const queued = conn.queued.splice(0);
    conn.queuedBytes = 0;
    for (const text of queued) this.#hooks.handleText(conn, text);
  }

  /**
   * A session still marked live on another node: that node is closing the old connection
   * right now, still holds it (a half-open connection it has not noticed), or died. Ask it
   * through its inbox to hand the session over: a live node closes its connection (4011) and
   * saves exact positions, then answers; the session is read again. No answer within
   * HANDOVER_TIMEOUT_MS means the node is gone: its last recorded channel positions are the
   * resume point (it had handed those events to the connection).
   */
  async #settle(record: SessionRecord): Promise<SessionRecord> {
    const node = record.node!;
    const answered = (await this.#ctx.registry.checkAlive(node).catch(() => false)) && (await this.#requestHandover(node, record.id));
    if (answered) return (await this.#ctx.sessions.load(record.id).catch(() => undefined)) ?? record;
    await this.#adoptPositions(record);
    return record;
  }

  #requestHandover(node: string, sessionId: string): Promise<boolean> {
    const me = this.#ctx.config.workerId;
    const request = `${me}:${++this.#handoverSeq}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#handovers.delete(request);
        resolve(false);
      }, HANDOVER_TIMEOUT_MS);
      this.#handovers.set(request, () => {
        clearTimeout(timer);
        this.#handovers.delete(request);
        resolve(true);
      });
      this.#ctx.broker.sendToNode(node, encodeNodeMessage({ kind: 'handover_request', request, from: me, sessionId })).catch(() => {
        clearTimeout(timer);
        this.#handovers.delete(request);
        resolve(false);
      });
    });
  }

  /** The node asked answered a handover request of ours. */
  handedOver(request: string): void {
    this.#handovers.get(request)?.();
  }

  /** Another node resumes a session held here: close ours, save, then answer (from closeSession). */
  handOver(from: string, request: string, sessionId: string): void {
    const conn = this.#ctx.bySession.get(sessionId);
    if (conn === undefined || !conn.open) return this.#replyHandover(from, request);
    conn.handover = { from, request };
    conn.end(SESSION_TAKEN_OVER, 'session_resumed_elsewhere');
  }

  #replyHandover(to: string, request: string): void {
    this.#ctx.broker.sendToNode(to, encodeNodeMessage({ kind: 'handover_done', request })).catch((err: unknown) => this.#ctx.log.warn({ err }, 'handover reply failed'));
  }

  /**
   * A session still marked live on another node was not closed cleanly: that node died
   * (kill -9, crash) before saving where the client stood. It did record, in batches, the
   * latest seq it handed out per channel; a live subscriber had been given those events, so
   * they are the better resume point.
   */
  async #adoptPositions(record: SessionRecord): Promise<void> {
    let positions: Record<string, { seq: number; epoch: string }>;
    try {
      positions = await this.#ctx.registry.positionsOf(record.node!);
    } catch (err) {
      this.#ctx.log.warn({ err }, 'could not read the previous node’s positions');
      return;
    }
    for (const [channel, mine] of Object.entries(record.subscriptions)) {
      const theirs = positions[channel];
      if (theirs !== undefined && theirs.epoch === mine.epoch && theirs.seq > mine.seq) record.subscriptions[channel] = theirs;
    }
  }

  #sendAuthSuccess(conn: Connection, resumed: boolean, ref: Ref | undefined): void {
    const frame: ServerFrame = {
      type: 'auth_success',
      connection_id: conn.id,
      user_id: conn.userId,
      session_id: conn.session?.id ?? '',
      node_id: this.#ctx.config.workerId,
      resumed,
    };
    if (ref !== undefined) frame.ref = ref;
    conn.send(encodeFrame(frame));
    this.#ctx.metrics.count('auth_success', 'out');
  }

  #addToUser(conn: Connection): void {
    this.#ctx.byUser.add(conn.userId, conn);
  }

  /** A closed connection leaves its user's connections, here and in the cluster's count. */
  removeFromUser(conn: Connection): void {
    if (this.#ctx.byUser.count(conn.userId) === 0) return;
    this.#ctx.byUser.remove(conn.userId, conn);
    this.#ctx.registry.removeConnection(conn.id, conn.userId);
  }

  /** At `exp` the connection gets `auth_expired` and 4001, unless a fresh `auth` moved `exp` on. */
  #armExpiry(conn: Connection): void {
    const exp = conn.claims?.exp;
    if (exp === undefined) return this.#expiry.disarm(conn);
    conn.expiryWheel = this.#expiry;
    this.#expiry.arm(conn, exp);
  }

  /** Every connection's token expiry in one wheel: no timer per connection (expiry-wheel.ts). */
  readonly #expiry = new ExpiryWheel<Connection>((conn) => {
    const exp = conn.claims?.exp;
    if (!conn.open || exp === undefined) return;
    if (exp * 1000 > Date.now()) return this.#armExpiry(conn);
    conn.send(encodeFrame({ type: 'auth_expired' }));
    this.#ctx.metrics.count('auth_expired', 'out');
    conn.end(CloseCode.AuthFailed, 'token_expired');
  });

  /** Stops the expiry wheel's tick (the node is stopping). */
  stop(): void {
    this.#expiry.stop();
  }

  /**
   * A closing connection's session: where each live channel stood (`positionOf`, the hub's),
   * rewound past what was still buffered, saved; then a handover asked of it is answered.
   */
  closeSession(conn: Connection, buffered: number, positionOf: (channel: string) => { seq: number; epoch: string } | undefined): void {
    const ctx = this.#ctx;
    const session = conn.session;
    if (session === undefined || ctx.bySession.get(session.id) !== conn) return;
    ctx.bySession.delete(session.id);
    session.live = false;
    for (const channel of conn.subscriptions) {
      const seen = positionOf(channel);
      // A channel served by the slow lane stands where the lane last sent, not where the node is.
      const laneAt = conn.lane?.position(channel);
      if (seen !== undefined) session.subscriptions[channel] = { seq: laneAt ?? seen.seq, epoch: seen.epoch };
    }
    // Bytes still queued never reached the client: rewind so a resume replays them.
    const saved = (buffered > 0 ? this.#rewind(session, buffered) : Promise.resolve()).then(() =>
      ctx.sessions.save(session).catch((err: unknown) => ctx.log.warn({ err }, 'session save failed')),
    );
    const handover = conn.handover;
    if (handover !== undefined) void saved.then(() => this.#replyHandover(handover.from, handover.request));
  }

  /**
   * Moves each channel's resume point back past the newest events whose bytes add up to
   * what was still buffered. Conservative: a resume may repeat an event, never skip one.
   */
  async #rewind(session: SessionRecord, buffered: number): Promise<void> {
    for (const [channel, position] of Object.entries(session.subscriptions)) {
      const read = (from: number, limit: number) => this.#ctx.broker.history(channel, from, limit);
      const seq = await rewindSeq(read, position.seq, buffered).catch(() => undefined);
      if (seq !== undefined) session.subscriptions[channel] = { seq, epoch: position.epoch };
    }
  }
}
