import { CloseCode, ErrorCode, encodeError, encodeFrame, parseClientFrame, type ClientFrame, type Ref } from '@switchyard/protocol';
import type { AuthSessions } from './auth-session.js';
import type { Claims } from './auth.js';
import { Connection, type ClientSocket, type SocketData } from './connection.js';
import type { EdgeContext } from './context.js';
import { AuthError } from './errors.js';
import { bearer, writeReply } from './http.js';
import { commonHeaders, originAllowed } from './http-routes.js';
import type { Hub } from './hub.js';
import type { Messages } from './messages.js';
import type { Subscriptions } from './subscriptions.js';
import type { HttpRequest, HttpResponse, WebSocket, us_socket_context_t } from './uws.js';

/** Frames a client may send while its first-frame `auth` is being verified. */
const MAX_QUEUED_DURING_AUTH = 32;

export interface ClientParts {
  auth: AuthSessions;
  subscriptions: Subscriptions;
  messages: Messages;
  hub: Hub;
}

/**
 * One client's protocol, whatever carries it (a uWS WebSocket, an SSE stream): upgrade and
 * admission, open, each frame (rate, size, auth first, then dispatch), drain and close.
 * A connection is `pending` → `authenticating` → `ready` → `closed` (Connection.state).
 */
export class ClientProtocol {
  readonly #ctx: EdgeContext;
  readonly #auth: AuthSessions;
  readonly #subs: Subscriptions;
  readonly #messages: Messages;
  readonly #hub: Hub;

  constructor(ctx: EdgeContext, parts: ClientParts) {
    this.#ctx = ctx;
    this.#auth = parts.auth;
    this.#subs = parts.subscriptions;
    this.#messages = parts.messages;
    this.#hub = parts.hub;
  }

  // ───────────────────────────── upgrade and open ─────────────────────────────

  onUpgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const ctx = this.#ctx;
    const key = req.getHeader('sec-websocket-key');
    const protocols = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const origin = req.getHeader('origin');
    const url = req.getUrl();
    const token = bearer(req.getHeader('authorization')) ?? (req.getQuery('token') || undefined);
    const ip = ctx.admission.clientAddress(Buffer.from(res.getRemoteAddressAsText()).toString(), req.getHeader('x-forwarded-for'));
    const protocol = protocols.split(',')[0]?.trim() ?? '';

    const refuse = (status: number, code: string, error: string) =>
      writeReply(res, { status, body: { error, code } }, commonHeaders(ctx, { url, origin }));
    if (ctx.state !== 'serving') return refuse(503, 'draining', 'node is not accepting connections');
    if (!originAllowed(ctx.config, origin)) return refuse(403, ErrorCode.Forbidden, 'origin not allowed');
    const refusal = ctx.admission.check(ip, token !== undefined, ctx.upgrading);
    if (refusal !== undefined) {
      ctx.log.debug({ ip, status: refusal.status }, 'upgrade refused by admission');
      // The code is the `error` here, as PROTOCOL.md §9 spells refusals: `{"error":"too_many_connections"}`.
      return writeReply(res, { status: refusal.status, body: { error: refusal.code, code: refusal.code, message: refusal.error } }, commonHeaders(ctx, { url, origin }));
    }
    const upgrade = (claims?: Claims) => {
      const data: SocketData = { conn: new Connection(ip, ctx.config.rateLimitBurst, claims) };
      res.upgrade(data, key, protocol, extensions, context);
    };
    if (token === undefined) return upgrade();
    const badToken = (err: unknown) => {
      const reason = err instanceof AuthError ? err.reason : 'token_malformed';
      const message = err instanceof AuthError ? err.message : 'token rejected';
      ctx.log.debug({ reason, ip }, 'upgrade refused: bad token');
      refuse(401, reason, message);
    };

    // With the key in hand the token is checked here and the upgrade completes in this
    // handler. An upgrade completed later (after an await) can be closed by uWebSockets
    // right after `open` (uNetworking/uWebSockets#1928, unfixed in the build used here).
    let claims: Claims | undefined;
    try {
      claims = ctx.verifier.verifySync(token);
    } catch (err) {
      return badToken(err);
    }
    if (claims !== undefined) return upgrade(claims);

    // Only a JWKS key not yet cached gets here: fetch, then upgrade. Not corked, which
    // avoids that bug at the price of a uWS warning on stderr for these rare upgrades.
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    ctx.upgrading++;
    ctx.verifier.verify(token).then(
      (verified) => {
        ctx.upgrading--;
        if (aborted) return;
        if (ctx.state !== 'serving') return res.cork(() => refuse(503, 'draining', 'node is not accepting connections'));
        upgrade(verified);
      },
      (err: unknown) => {
        ctx.upgrading--;
        if (!aborted) res.cork(() => badToken(err));
      },
    );
  }

  onOpen(ws: ClientSocket): void {
    const ctx = this.#ctx;
    const conn = ws.getUserData().conn;
    conn.ws = ws;
    conn.admittedAs = conn.upgradeClaims !== undefined ? 'authenticated' : 'pending';
    ctx.admission.opened(conn.ip, conn.admittedAs === 'authenticated');
    ctx.conns.add(conn);
    ctx.byId.set(conn.id, conn);
    ctx.metrics.setConnections(ctx.conns.size);
    if (ctx.state !== 'serving') {
      conn.end(CloseCode.Restart, 'draining');
      return;
    }
    if (conn.upgradeClaims !== undefined) {
      conn.state = 'authenticating';
      void this.#auth.completeAuth(conn, conn.upgradeClaims, undefined, undefined);
      return;
    }
    conn.authTimer = setTimeout(() => {
      if (conn.state === 'pending' || conn.state === 'authenticating') this.#auth.authFail(conn, 'auth_timeout', 'no auth frame within AUTH_TIMEOUT_MS');
    }, ctx.config.authTimeoutMs);
  }

  // ───────────────────────────── frames ─────────────────────────────

  onMessage(ws: WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean): void {
    const { config, metrics } = this.#ctx;
    const conn = ws.getUserData().conn;
    const now = Date.now();
    conn.lastSeen = now;
    if (!conn.take(now, config.rateLimitPerS, config.rateLimitBurst)) {
      metrics.count('rate_limited', 'in');
      conn.send(encodeError(ErrorCode.RateLimited, 'more frames than RATE_LIMIT_PER_S / RATE_LIMIT_BURST allow'));
      conn.end(CloseCode.RateLimited, 'rate_limited');
      return;
    }
    if (message.byteLength > config.maxMessageBytes) {
      metrics.count('too_large', 'in');
      conn.send(encodeError(ErrorCode.TooLarge, `frame larger than MAX_MESSAGE_BYTES (${config.maxMessageBytes})`));
      conn.end(CloseCode.TooLarge, 'too_large');
      return;
    }
    if (isBinary) {
      metrics.count('binary', 'in');
      if (conn.state !== 'ready') return this.#rejectBeforeAuth(conn, 'binary frame before auth');
      conn.send(encodeError(ErrorCode.BadFrame, 'binary frames are not accepted; send JSON text frames'));
      return;
    }
    // Copies out of uWS's buffer, which is reused after this callback returns.
    const text = Buffer.from(message).toString('utf8');
    if (conn.state === 'authenticating') {
      if (conn.queued.length >= MAX_QUEUED_DURING_AUTH) return this.#rejectBeforeAuth(conn, 'too many frames before auth completed');
      conn.queued.push(text);
      conn.queuedBytes += text.length;
      return;
    }
    this.handleText(conn, text);
  }

  #rejectBeforeAuth(conn: Connection, why: string): void {
    this.#auth.authFail(conn, ErrorCode.Unauthenticated, `the first frame must be auth (${why})`);
  }

  handleText(conn: Connection, text: string): void {
    if (!conn.open) return;
    const metrics = this.#ctx.metrics;
    const parsed = parseClientFrame(text);
    if (!parsed.ok) {
      metrics.count('invalid', 'in');
      if (conn.state !== 'ready') return this.#rejectBeforeAuth(conn, parsed.error);
      conn.send(encodeError(parsed.code, parsed.error, parsed.ref));
      metrics.count('error', 'out');
      return;
    }
    const frame = parsed.frame;
    metrics.count(frame.type, 'in');
    if (conn.state !== 'ready') {
      if (frame.type !== 'auth') return this.#rejectBeforeAuth(conn, `got "${frame.type}"`);
      void this.#auth.onAuthFrame(conn, frame.token, frame.session_id, frame.ref, frame.positions).catch((err: unknown) => this.internal(conn, err, frame.ref));
      return;
    }
    this.#dispatch(conn, frame).catch((err: unknown) => this.internal(conn, err, frame.ref));
  }

  internal(conn: Connection, err: unknown, ref: Ref | undefined): void {
    this.#ctx.log.error({ err, conn: conn.id }, 'frame handling failed');
    conn.send(encodeError(ErrorCode.Unavailable, 'the server could not complete this request', ref));
  }

  async #dispatch(conn: Connection, frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case 'ping':
        conn.send(frame.ref === undefined ? '{"type":"pong"}' : encodeFrame({ type: 'pong', ref: frame.ref }));
        this.#ctx.metrics.count('pong', 'out');
        return;
      case 'auth':
        return this.#auth.onAuthFrame(conn, frame.token, frame.session_id, frame.ref);
      case 'subscribe':
        return this.#subs.subscribe(conn, frame.channel, frame.since, frame.ref, undefined, frame.snapshot !== false);
      case 'unsubscribe':
        return this.#subs.unsubscribe(conn, frame.channel, frame.ref);
      case 'publish':
        return this.#messages.publish(conn, frame.channel, frame.event, frame.data, frame.ref, frame.coalesce);
      case 'direct':
        return this.#messages.direct(conn, frame.to, frame.data, frame.ref);
      case 'cancel':
        return this.#messages.cancel(conn, frame.job_id, frame.ref);
      case 'presence': {
        const reply = await this.#ctx.presence.frame(conn, frame.channel, frame.ref);
        if (conn.open) conn.send(reply);
        return;
      }
    }
  }

  // ───────────────────────────── drain, idle and close ─────────────────────────────

  onDrain(conn: Connection): void {
    this.#hub.flushSlowLane(conn);
    conn.replay.wake();
  }

  /** Every PING_INTERVAL_S: ping the live, close the idle. */
  pingSweep(): void {
    const now = Date.now();
    const idleMs = this.#ctx.config.idleTimeoutS * 1000;
    for (const conn of this.#ctx.conns) {
      if (!conn.open) continue;
      if (now - conn.lastSeen > idleMs) conn.end(CloseCode.GoingAway, 'idle_timeout');
      else conn.ws!.ping();
    }
  }

  onClose(ws: ClientSocket, code: number): void {
    const ctx = this.#ctx;
    const conn = ws.getUserData().conn;
    const buffered = conn.bufferedAtEnd;
    conn.state = 'closed';
    conn.clearTimers();
    conn.replay.wake();
    if (conn.admittedAs !== undefined) ctx.admission.closed(conn.ip, conn.admittedAs === 'authenticated');
    conn.admittedAs = undefined;
    ctx.conns.delete(conn);
    ctx.byId.delete(conn.id);
    this.#auth.removeFromUser(conn);
    for (const channel of conn.subscriptions) ctx.broker.unsubscribe(channel);
    ctx.presence.closed(conn);
    this.#subs.closeJoins(conn);
    // Read before the hub forgets the channels this connection was the last member of.
    this.#auth.closeSession(conn, buffered, (channel) => this.#hub.positionOf(channel));
    this.#hub.dropConnection(conn);
    conn.lane = undefined;
    conn.subscriptions.clear();
    conn.joining.clear();
    ctx.metrics.setConnections(ctx.conns.size);
    ctx.metrics.sessionDuration.observe((Date.now() - conn.openedAt) / 1000);
    ctx.log.debug({ conn: conn.id, code }, 'connection closed');
  }
}
