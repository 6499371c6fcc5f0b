/**
 * One connection at a time, and every timer it needs: opening and authenticating a socket,
 * reconnecting with backoff, pings, token refresh, and the requests that wait for a reply by
 * `ref` (sent now, or from the bounded offline queue once connected). It knows nothing of
 * channels: frames about them, and the moments a connection starts, drops or ends for good,
 * go to its `ConnectionHooks` (the subscription manager).
 */
import type { AuthSuccessFrame, ClientFrame, EventFrame, ServerFrame, SnapshotFrame, SubscriptionResultFrame } from '@switchyard/protocol';
import { decideReconnect, type CloseInfo } from './backoff.js';
import type { Emitter } from './emitter.js';
import { Endpoints } from './endpoints.js';
import { AuthFailedError, ClientClosedError, ServerError, SwitchyardError, TimeoutError } from './errors.js';
import type { ResolvedOptions, TokenProvider } from './options.js';
import { Requests, type Timer } from './requests.js';
import { MAX_TIMER_MS, refreshDelay, tokenExpiry } from './token.js';
import { platformWebSocket, WS_OPEN, type WebSocketLike } from './transport.js';
import type { ClientEvents, ConnectionState } from './types.js';
import { parseServerFrame } from './wire.js';

/** Internal close code for a socket the client gave up on itself (connect or pong timeout). */
const CLIENT_ABORT = 4000;
/** Token refresh retried this often when the provider fails, while time remains. */
const REFRESH_RETRY_MS = 5_000;
/** A `reconnect` frame not followed by a close within after_ms + this: close it ourselves. */
const RECONNECT_GRACE_MS = 2_000;

/** What the connection tells the part that keeps the channels. */
export interface ConnectionHooks {
  /** The last seq handed over per channel, for a resume's `auth` (v1.1 `positions`). */
  positions(): Record<string, number> | undefined;
  /** Authenticated: restore the channels (by the resumed session, or by subscribing again). */
  onConnected(resumed: boolean): void;
  /** The socket closed: requests in flight are lost, subscriptions stay wanted. */
  onDisconnected(): void;
  /** Closed or failed for good: reject whoever waits with `err`. */
  onShutdown(err: SwitchyardError): void;
  /** A frame about a channel that no request waited for. */
  onChannelFrame(frame: EventFrame | SubscriptionResultFrame | SnapshotFrame): void;
}

/** One connection attempt's socket and what it learned. */
interface Attempt {
  readonly gen: number;
  readonly ws: WebSocketLike;
  readonly url: string;
  readonly token: string;
  authError: { code?: string; error: string } | undefined;
  authExpired: boolean;
  reconnectAfterMs: number | undefined;
  hello: AuthSuccessFrame | undefined;
  lastFrameAt: number;
}

export class Connection {
  readonly #o: ResolvedOptions;
  readonly #emitter: Emitter<ClientEvents>;
  readonly #hooks: ConnectionHooks;
  #state: ConnectionState = { status: 'idle' };
  /** Bumped for every socket and on close(); stale callbacks compare and bail out. */
  #gen = 0;
  #attempt: Attempt | undefined;
  /** Consecutive failed attempts since the last stable connection. */
  #failures = 0;
  /** The URL and token of the next attempt. */
  readonly endpoints: Endpoints;
  #sessionId: string | undefined;
  /** Requests waiting for a reply, and the offline queue. */
  readonly requests: Requests;
  #reconnectTimer: Timer | undefined;
  #connectTimer: Timer | undefined;
  #stableTimer: Timer | undefined;
  #refreshTimer: Timer | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: Timer | undefined;
  #reconnectHintTimer: Timer | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: ResolvedOptions, emitter: Emitter<ClientEvents>, hooks: ConnectionHooks) {
    this.#o = options;
    this.#emitter = emitter;
    this.#hooks = hooks;
    this.endpoints = new Endpoints(this.#o);
    this.requests = new Requests(this, this.#o.maxQueuedRequests, this.#o.requestTimeoutMs);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /** Authenticated on a live socket: frames written now reach the server. */
  get authenticated(): boolean {
    return this.#attempt?.hello !== undefined;
  }

  // ───────────────────────────── lifecycle ─────────────────────────────

  connect(): void {
    const s = this.#state.status;
    if (s === 'connecting' || s === 'connected' || s === 'reconnecting') return;
    this.#closed = undefined;
    this.#failures = 0;
    void this.#open();
  }

  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closed = this.#shutdown({ status: 'closed' }, new ClientClosedError('request'));
    return this.#closed;
  }

  async #shutdown(next: ConnectionState, err: SwitchyardError): Promise<void> {
    this.#gen++;
    this.#clearConnectionTimers();
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const attempt = this.#attempt;
    this.#attempt = undefined;
    let closed: Promise<void> = Promise.resolve();
    if (attempt !== undefined) closed = this.#dropSocket(attempt.ws, 1000, 'client closed');
    this.#failAll(err);
    this.#setState(next);
    await closed;
  }

  /** Rejects everything waiting: requests in flight, the offline queue, subscribe() callers. */
  #failAll(err: SwitchyardError): void {
    this.requests.failAll(err);
    this.#hooks.onShutdown(err);
  }

  #setState(next: ConnectionState): void {
    this.#state = next;
    this.#o.logger.debug?.('state', { ...next });
    this.#emitter.emit('state', next);
  }

  // ───────────────────────────── connecting ─────────────────────────────

  async #open(): Promise<void> {
    const gen = ++this.#gen;
    const attemptNo = this.#failures;
    const listed = this.endpoints.listedUrl();
    this.#setState({ status: 'connecting', attempt: attemptNo, url: listed });
    let url: string;
    let token: string;
    let Ctor;
    try {
      url = listed ?? (await this.endpoints.providedUrl(this.#failures));
      if (gen !== this.#gen) return;
      token = await this.endpoints.token('connect');
      if (gen !== this.#gen) return;
      Ctor = this.#o.WebSocket ?? (await platformWebSocket());
      if (gen !== this.#gen) return;
    } catch (err) {
      if (gen !== this.#gen) return;
      const error = err instanceof SwitchyardError ? err : new SwitchyardError('provider_failed', `could not prepare a connection: ${(err as Error)?.message ?? String(err)}`, { retriable: true, cause: err });
      this.#emitter.emit('error', error);
      this.#afterClose({ code: CLIENT_ABORT, reason: 'provider_failed', wasConnected: false });
      return;
    }
    this.endpoints.lastUrl = url;
    if (listed === undefined) this.#setState({ status: 'connecting', attempt: attemptNo, url });
    let ws: WebSocketLike;
    try {
      ws = new Ctor(this.#o.resume && this.#sessionId !== undefined ? withSessionHint(url, this.#sessionId) : url);
    } catch (err) {
      this.#emitter.emit('error', new SwitchyardError('invalid_argument', `cannot open a WebSocket to ${url}: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      this.#afterClose({ code: CLIENT_ABORT, reason: 'open_failed', wasConnected: false });
      return;
    }
    const attempt: Attempt = { gen, ws, url, token, authError: undefined, authExpired: false, reconnectAfterMs: undefined, hello: undefined, lastFrameAt: Date.now() };
    this.#attempt = attempt;
    this.#connectTimer = setTimeout(() => {
      if (this.#attempt === attempt && attempt.hello === undefined) this.#abort(attempt, 'connect_timeout');
    }, this.#o.connectTimeoutMs);
    ws.onopen = () => {
      if (this.#attempt !== attempt) return;
      const frame: ClientFrame = { type: 'auth', token };
      if (this.#o.resume && this.#sessionId !== undefined) {
        frame.session_id = this.#sessionId;
        const positions = this.#hooks.positions();
        if (positions !== undefined) frame.positions = positions;
      }
      this.#write(attempt, frame);
    };
    ws.onmessage = (message) => {
      if (this.#attempt !== attempt) return;
      if (typeof message.data !== 'string') return;
      attempt.lastFrameAt = Date.now();
      clearTimeout(this.#pongTimer);
      this.#pongTimer = undefined;
      const frame = parseServerFrame(message.data);
      if (frame === undefined) {
        this.#o.logger.warn?.('unreadable frame from the server', { data: message.data.slice(0, 200) });
        return;
      }
      this.#onFrame(attempt, frame);
    };
    ws.onerror = () => {
      /* a close event follows */
    };
    ws.onclose = (event) => {
      if (this.#attempt !== attempt) return;
      this.#onSocketClosed(attempt, event.code, event.reason);
    };
  }

  /** The URL of the live connection, else the last one tried, else the first one listed or provided. */
  async currentUrl(): Promise<string> {
    return this.#state.status === 'connected' ? this.#state.url : (this.endpoints.lastUrl ?? this.endpoints.listedUrlPeek() ?? (await this.endpoints.providedUrl(this.#failures)));
  }

  /**
   * A new token (a JWT, or a provider): sent at once on a live connection (as a refresh);
   * after `failed` — a refused token — it connects again with it; otherwise the next attempt uses it.
   */
  setToken(token: string | TokenProvider): void {
    this.#o.token = token;
    const attempt = this.#attempt;
    if (attempt?.hello !== undefined) void this.#refresh(attempt, 0);
    else if (this.#state.status === 'failed') this.connect();
  }

  /** Gives up on a socket from our side (timeout): its own events are ignored from now on. */
  #abort(attempt: Attempt, reason: string): void {
    this.#o.logger.warn?.('closing the connection', { reason, url: attempt.url });
    void this.#dropSocket(attempt.ws, CLIENT_ABORT, reason);
    this.#onSocketClosed(attempt, CLIENT_ABORT, reason);
  }

  /** Detaches a socket and closes it; resolves when it is closed (or at once if it cannot tell). */
  #dropSocket(ws: WebSocketLike, code: number, reason: string): Promise<void> {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onerror = () => undefined;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      ws.onclose = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    try {
      ws.close(code, reason);
    } catch {
      return Promise.resolve();
    }
    return done;
  }

  /** Writes on the authenticated connection; false when there is none or the send failed. */
  write(frame: ClientFrame): boolean {
    const attempt = this.#attempt;
    return attempt?.hello !== undefined && this.#write(attempt, frame);
  }

  #write(attempt: Attempt, frame: ClientFrame): boolean {
    if (attempt.ws.readyState !== WS_OPEN) return false;
    try {
      attempt.ws.send(JSON.stringify(frame));
      return true;
    } catch (err) {
      this.#o.logger.warn?.('send failed', { err });
      return false;
    }
  }

  #clearConnectionTimers(): void {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#stableTimer);
    clearTimeout(this.#refreshTimer);
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    clearTimeout(this.#reconnectHintTimer);
    this.#connectTimer = this.#stableTimer = this.#refreshTimer = this.#pongTimer = this.#reconnectHintTimer = undefined;
    this.#pingTimer = undefined;
  }

  #onSocketClosed(attempt: Attempt, code: number, reason: string): void {
    if (this.#attempt !== attempt) return;
    this.#attempt = undefined;
    this.#gen++;
    this.#clearConnectionTimers();
    const wasConnected = attempt.hello !== undefined;
    // Requests in flight: their outcome is unknown. Subscriptions stay wanted and come back.
    this.requests.loseInFlight();
    this.#hooks.onDisconnected();
    this.#o.logger.debug?.('connection closed', { code, reason, url: attempt.url });
    this.#afterClose({
      code,
      reason,
      authError: attempt.authError,
      authExpired: attempt.authExpired,
      reconnectAfterMs: attempt.reconnectAfterMs,
      wasConnected,
    });
  }

  /** Decides, after a close or a failed attempt, between retrying (when) and failing. */
  #afterClose(close: CloseInfo): void {
    const o = this.#o.reconnect;
    const decision = decideReconnect(close, this.#failures, { ...o, canRefreshToken: typeof this.#o.token === 'function' });
    if (decision.action === 'fail') {
      const error =
        decision.why === 'auth_failed'
          ? new AuthFailedError(decision.detail, close.authError?.error ?? close.reason)
          : new SwitchyardError(decision.why, decision.detail);
      this.#fail(error);
      return;
    }
    if (!o.enabled) {
      this.#fail(new SwitchyardError('reconnect_failed', `connection closed (${close.code} ${close.reason}) and reconnecting is off (option "reconnect")`, { retriable: true }));
      return;
    }
    let delayMs = decision.delayMs;
    // A replaced backoff applies where the built-in one would have.
    if (o.delay !== undefined && decision.countsAsFailure && delayMs > 0) delayMs = Math.max(0, o.delay(this.#failures));
    if (decision.countsAsFailure) this.#failures++;
    if (this.#failures > o.maxAttempts) {
      this.#fail(new SwitchyardError('reconnect_failed', `gave up after ${o.maxAttempts} failed attempts (last close ${close.code} ${close.reason}); raise reconnect.maxAttempts`, { retriable: true }));
      return;
    }
    const closedBy = close.code === CLIENT_ABORT ? 'client' : 'server';
    this.#setState({ status: 'reconnecting', attempt: this.#failures, delayMs, closeCode: close.code, closeReason: close.reason, closedBy });
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state.status === 'reconnecting') void this.#open();
    }, delayMs);
  }

  #fail(error: SwitchyardError): void {
    this.#o.logger.warn?.('connection failed for good', { code: error.code, message: error.message });
    void this.#shutdown({ status: 'failed', error }, error);
    this.#emitter.emit('error', error);
  }

  // ───────────────────────────── frames ─────────────────────────────

  #onFrame(attempt: Attempt, frame: ServerFrame): void {
    const ref = 'ref' in frame && frame.ref !== undefined ? String(frame.ref) : undefined;
    if (ref !== undefined && this.requests.reply(ref, frame)) return;
    switch (frame.type) {
      case 'auth_success':
        if (attempt.hello === undefined) this.#onAuthenticated(attempt, frame);
        return;
      case 'auth_error':
        attempt.authError = { error: frame.error, ...(frame.code !== undefined && { code: frame.code }) };
        return;
      case 'auth_expired':
        attempt.authExpired = true;
        return;
      case 'event':
      case 'subscription_result':
      case 'snapshot':
        this.#hooks.onChannelFrame(frame);
        return;
      case 'direct':
        this.#emitter.emit('direct', { from: frame.from, userId: frame.user_id, data: frame.data });
        return;
      case 'reconnect':
        this.#onReconnectFrame(attempt, frame.after_ms);
        return;
      case 'error':
        this.#emitter.emit('error', new ServerError(frame.code, frame.error));
        return;
      default:
        // Replies whose request timed out already (ack, pong, unsubscribed): nothing waits.
        return;
    }
  }

  #onAuthenticated(attempt: Attempt, hello: AuthSuccessFrame): void {
    attempt.hello = hello;
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#sessionId = hello.session_id;
    this.#setState({
      status: 'connected',
      url: attempt.url,
      connectionId: hello.connection_id,
      sessionId: hello.session_id,
      userId: hello.user_id,
      nodeId: hello.node_id,
      resumed: hello.resumed,
    });
    if (this.#attempt !== attempt) return; // a state listener closed the client
    const stableAfter = this.#o.reconnect.stableAfterMs;
    this.#stableTimer = setTimeout(() => {
      if (this.#attempt === attempt) this.#failures = 0;
    }, stableAfter);
    this.#armRefresh(attempt, attempt.token);
    this.#armPing(attempt);
    this.#hooks.onConnected(hello.resumed);
    this.requests.flush();
  }

  #onReconnectFrame(attempt: Attempt, afterMs: number): void {
    attempt.reconnectAfterMs = typeof afterMs === 'number' && afterMs >= 0 ? afterMs : 0;
    // The server closes with 1012 right after; should it not, leave on our own.
    clearTimeout(this.#reconnectHintTimer);
    this.#reconnectHintTimer = setTimeout(() => {
      if (this.#attempt === attempt) this.#abort(attempt, 'reconnect_requested');
    }, attempt.reconnectAfterMs + RECONNECT_GRACE_MS);
  }

  #armPing(attempt: Attempt): void {
    const interval = this.#o.pingIntervalMs;
    if (interval <= 0) return;
    this.#pingTimer = setInterval(() => {
      if (this.#attempt !== attempt || this.#pongTimer !== undefined) return;
      if (Date.now() - attempt.lastFrameAt < interval) return;
      this.#write(attempt, { type: 'ping' });
      this.#pongTimer = setTimeout(() => {
        if (this.#attempt === attempt) this.#abort(attempt, 'pong_timeout');
      }, this.#o.pongTimeoutMs);
    }, Math.max(50, Math.floor(interval / 2)));
  }

  // ───────────────────────────── token refresh ─────────────────────────────

  #armRefresh(attempt: Attempt, token: string): void {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    if (typeof this.#o.token !== 'function') return;
    const exp = tokenExpiry(token);
    if (exp === undefined) return;
    const delay = refreshDelay(exp, Date.now(), this.#o.refreshMarginMs);
    if (delay > MAX_TIMER_MS) {
      this.#refreshTimer = setTimeout(() => this.#armRefresh(attempt, token), MAX_TIMER_MS);
      return;
    }
    this.#refreshTimer = setTimeout(() => void this.#refresh(attempt, exp), delay);
  }

  /** Sends a fresh token on the live connection (`auth` again) before the current one expires. */
  async #refresh(attempt: Attempt, oldExp: number): Promise<void> {
    if (this.#attempt !== attempt) return;
    let token: string;
    try {
      token = await this.endpoints.token('refresh');
    } catch (err) {
      if (this.#attempt !== attempt) return;
      this.#emitter.emit('error', err as SwitchyardError);
      const left = oldExp * 1000 - Date.now();
      if (left > 1000) this.#refreshTimer = setTimeout(() => void this.#refresh(attempt, oldExp), Math.min(REFRESH_RETRY_MS, left / 2));
      return;
    }
    if (this.#attempt !== attempt) return;
    const ref = this.requests.nextRef();
    const timer = setTimeout(() => {
      if (this.requests.forget(ref)) this.#emitter.emit('error', new TimeoutError('token refresh', this.#o.requestTimeoutMs, 'sent'));
    }, this.#o.requestTimeoutMs);
    this.requests.expect(ref, {
      kind: 'refresh',
      timer,
      onReply: (frame) => {
        if (frame.type === 'auth_success') {
          this.#o.logger.debug?.('token refreshed', { exp: tokenExpiry(token) });
          this.#armRefresh(attempt, token);
        } else if (frame.type === 'error') {
          this.#emitter.emit('error', new ServerError(frame.code, `token refresh refused: ${frame.error}`));
        }
      },
      onLost: () => undefined,
    });
    this.#write(attempt, { type: 'auth', token, ref });
  }
}

/**
 * Adds `sid=<session id>` to a reconnect URL: the shipped nginx and HAProxy configs hash on
 * it, so a resuming client lands on the node that still holds its session. The edge ignores it.
 */
export function withSessionHint(url: string, sessionId: string): string {
  const hashAt = url.indexOf('#');
  const base = hashAt < 0 ? url : url.slice(0, hashAt);
  const cleaned = base.replace(/([?&])sid=[^&]*(&|$)/, (_m, lead: string, tail: string) => (tail === '&' ? lead : '')).replace(/[?&]$/, '');
  return `${cleaned}${cleaned.includes('?') ? '&' : '?'}sid=${encodeURIComponent(sessionId)}`;
}
