/**
 * The Switchyard client: one connection at a time, authenticated by first frame, that
 * reconnects by itself and keeps the application's view of every channel exact — each event
 * once, in seq order — across reconnects, session resumes, replays and node failures.
 *
 * Data flows one way: socket → `#onFrame` (routing by `ref` first, then by type) → the
 * channel's `ChannelStream` (dedupe, order, gap detection) → the application's listeners.
 */
import { decideReconnect, fullJitterDelay, type CloseInfo } from './backoff.js';
import { Emitter } from './emitter.js';
import {
  AuthFailedError,
  ClientClosedError,
  ConnectionLostError,
  InvalidArgumentError,
  QueueFullError,
  ServerError,
  SwitchyardError,
  TimeoutError,
} from './errors.js';
import { isValidChannel } from '@switchyard/protocol';
import type { AuthSuccessFrame, ClientFrame, EventFrame, Json, ServerFrame, SnapshotFrame, SubscriptionResultFrame } from '@switchyard/protocol';
import { parseServerFrame } from './wire.js';
import { resolveOptions, type ClientOptions, type ResolvedOptions, type TokenProvider, type UrlProvider } from './options.js';
import { BoundedQueue } from './queue.js';
import { ChannelStream, eventId, type ChannelEvent, type StreamGap } from './stream.js';
import { MAX_TIMER_MS, refreshDelay, tokenExpiry } from './token.js';
import { platformWebSocket, WS_OPEN, type WebSocketLike } from './transport.js';
import { httpBaseOf, postJob, type JobRequest, type SubmittedJob } from './http.js';

type Timer = ReturnType<typeof setTimeout>;

/** Internal close code for a socket the client gave up on itself (connect or pong timeout). */
const CLIENT_ABORT = 4000;
/** Retries of a subscribe the server answered `unavailable` (or did not answer), per connection. */
const MAX_SUBSCRIBE_RETRIES = 10;
/** Token refresh retried this often when the provider fails, while time remains. */
const REFRESH_RETRY_MS = 5_000;
/** A `reconnect` frame not followed by a close within after_ms + this: close it ourselves. */
const RECONNECT_GRACE_MS = 2_000;
/** How long an early event waits for a coalescing announcement before a replay is asked for. */
const GAP_GRACE_MS = 1_000;

/** The connection's lifecycle, one typed union (listen with `client.on('state', ...)`). */
export type ConnectionState =
  /** Created with `autoConnect: false`, not started yet. */
  | { status: 'idle' }
  /** Opening a socket and authenticating. `attempt` counts consecutive failures (0 first). */
  | { status: 'connecting'; attempt: number; url: string | undefined }
  | {
      status: 'connected';
      url: string;
      connectionId: string;
      sessionId: string;
      userId: string;
      nodeId: string;
      /** The server restored the previous session's subscriptions. */
      resumed: boolean;
    }
  /**
   * Waiting `delayMs` before the next attempt, after a close with `closeCode`. `closedBy`:
   * `client` when this client gave up on the socket (connect or pong timeout, a provider that
   * threw), `server` when the server closed it or the network dropped it.
   */
  | { status: 'reconnecting'; attempt: number; delayMs: number; closeCode: number; closeReason: string; closedBy: 'client' | 'server' }
  /** Given up: a refused token, a session taken over, or `reconnect.maxAttempts` reached. `connect()` starts again. */
  | { status: 'failed'; error: SwitchyardError }
  /** Closed by `close()`. */
  | { status: 'closed' };

export type ConnectionStatus = ConnectionState['status'];

export interface DirectMessage {
  /** The sender's connection id (reply with `client.direct(from, ...)`). */
  from: string;
  userId: string;
  data: unknown;
}

export interface SubscriptionInfo {
  channel: string;
  /** The channel's latest seq when the subscription was confirmed. */
  seq: number;
  epoch: string | undefined;
  /** Present when the subscribe asked for a replay (`since`): whether it was complete. */
  recovered: boolean | undefined;
}

/**
 * A channel's state as of `seq`, sent by the server right after a subscription to a
 * `job:<id>` channel is confirmed (`data`: the job's status, as `GET /jobs/:id` gives it).
 * The channel's events that follow have seq > `seq`.
 */
export interface ChannelSnapshot {
  channel: string;
  seq: number;
  epoch: string | undefined;
  data: unknown;
}

export interface PublishResult {
  /** The event's seq; null when the server's broker was unreachable and it went to local subscribers only. */
  seq: number | null;
  degraded: boolean;
}

export interface SubscribeOptions {
  /**
   * Replay every retained event after this seq first (0: the whole retained history).
   * Only used when the channel is not already subscribed.
   */
  since?: number;
  /** @default requestTimeoutMs */
  timeoutMs?: number;
}

export interface RequestOptions {
  /** @default requestTimeoutMs */
  timeoutMs?: number;
}

/** What `client.on(...)` can listen to. */
export interface ClientEvents {
  /** Every change of the connection state. */
  state: ConnectionState;
  /** Every channel event, once, in seq order per channel. */
  event: ChannelEvent;
  /** A channel's current state (job channels), before the events that follow it. */
  snapshot: ChannelSnapshot;
  /** Events were lost, or a channel's history was reset: reload that channel's state. */
  gap: StreamGap;
  direct: DirectMessage;
  /** Failures not tied to a call: a refused token refresh, a subscription lost on reconnect, ... */
  error: SwitchyardError;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
  timer: Timer | undefined;
}

type ChannelStatus =
  /** Wanted, not (yet) sent on this connection. */
  | 'pending'
  /** Our subscribe is on its way. */
  | 'subscribing'
  /** Waiting for the server to restore it from the session. */
  | 'resuming'
  | 'active';

interface ChannelEntry {
  readonly name: string;
  readonly stream: ChannelStream;
  /** The `since` the application asked for, used until the stream has a position. */
  readonly initialSince: number | undefined;
  status: ChannelStatus;
  /** Confirmed on the previous connection, so a resumed session should bring it back. */
  wasActive: boolean;
  subscribeRef: string | undefined;
  fillRef: string | undefined;
  retries: number;
  timer: Timer | undefined;
  /** Set while an early event waits for its gap to be explained before a fill is asked for. */
  gapTimer: Timer | undefined;
  readonly waiters: Set<Waiter<SubscriptionInfo>>;
}

interface Pending {
  readonly kind: 'request' | 'subscribe' | 'fill' | 'unsubscribe' | 'refresh';
  onReply(frame: ServerFrame): void;
  /** The connection dropped (no argument), or the client was closed or failed (the reason). */
  onLost(reason?: SwitchyardError): void;
  timer: Timer | undefined;
}

interface Queued {
  readonly frame: ClientFrame;
  readonly what: string;
  readonly settle: (frame: ServerFrame) => void;
  readonly fail: (err: unknown) => void;
  /** Set once sent: the ref its reply will carry. */
  ref: string | undefined;
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

export class SwitchyardClient {
  readonly #o: ResolvedOptions;
  readonly #emitter: Emitter<ClientEvents>;
  #state: ConnectionState = { status: 'idle' };
  /** Bumped for every socket and on close(); stale callbacks compare and bail out. */
  #gen = 0;
  #attempt: Attempt | undefined;
  /** Consecutive failed attempts since the last stable connection. */
  #failures = 0;
  #urlIndex = 0;
  #connects = 0;
  #lastUrl: string | undefined;
  #sessionId: string | undefined;
  #refCounter = 0;
  readonly #channels = new Map<string, ChannelEntry>();
  readonly #pending = new Map<string, Pending>();
  readonly #queue: BoundedQueue<Queued>;
  #reconnectTimer: Timer | undefined;
  #connectTimer: Timer | undefined;
  #stableTimer: Timer | undefined;
  #refreshTimer: Timer | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: Timer | undefined;
  #reconnectHintTimer: Timer | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: ClientOptions) {
    this.#o = resolveOptions(options);
    this.#queue = new BoundedQueue(this.#o.maxQueuedRequests);
    this.#emitter = new Emitter((err, event) => this.#o.logger.error?.('a listener threw', { event, err }));
    if (this.#o.autoConnect) this.connect();
  }

  /** The current connection state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The session id of the current (or last) connection; sent on reconnect to resume it. */
  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /** Channels the client is subscribed to, or will subscribe to once connected. */
  get channels(): string[] {
    return [...this.#channels.keys()];
  }

  /**
   * What a resume sends as `positions` (v1.1): the last seq handed to the application per
   * channel, so the server replays each channel from exactly there — every event once, even
   * after the node that held the session was killed before it could record where we stood.
   */
  #positions(): Record<string, number> | undefined {
    let positions: Record<string, number> | undefined;
    for (const [name, entry] of this.#channels) {
      const seq = entry.stream.lastSeq;
      if (seq !== undefined) (positions ??= {})[name] = seq;
    }
    return positions;
  }

  /** The seq of the last event of `channel` handed to the application. */
  lastSeq(channel: string): number | undefined {
    return this.#channels.get(channel)?.stream.lastSeq;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void): () => void {
    return this.#emitter.on(event, listener);
  }

  off<K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void): void {
    this.#emitter.off(event, listener);
  }

  /** Listens to the events of one channel only; returns the function that stops it. */
  onChannel(channel: string, listener: (event: ChannelEvent) => void): () => void {
    return this.on('event', (e) => {
      if (e.channel === channel) listener(e);
    });
  }

  /** Listens to the snapshots of one channel only (job channels); returns the function that stops it. */
  onSnapshot(channel: string, listener: (snapshot: ChannelSnapshot) => void): () => void {
    return this.on('snapshot', (s) => {
      if (s.channel === channel) listener(s);
    });
  }

  /** Resolves once the client is connected; rejects if it fails or is closed first, or after `timeoutMs`. */
  waitForConnection(timeoutMs: number = this.#o.connectTimeoutMs): Promise<Extract<ConnectionState, { status: 'connected' }>> {
    const now = this.#state;
    if (now.status === 'connected') return Promise.resolve(now);
    if (now.status === 'failed') return Promise.reject(now.error);
    if (now.status === 'closed') return Promise.reject(new ClientClosedError('waitForConnection'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new TimeoutError('waitForConnection', timeoutMs, 'queued'));
      }, timeoutMs);
      const off = this.on('state', (s) => {
        if (s.status === 'connected') {
          clearTimeout(timer);
          off();
          resolve(s);
        } else if (s.status === 'failed' || s.status === 'closed') {
          clearTimeout(timer);
          off();
          reject(s.status === 'failed' ? s.error : new ClientClosedError('waitForConnection'));
        }
      });
    });
  }

  // ───────────────────────────── lifecycle ─────────────────────────────

  /** Starts connecting (again, after `failed` or `close()`). Does nothing while connecting or connected. */
  connect(): void {
    const s = this.#state.status;
    if (s === 'connecting' || s === 'connected' || s === 'reconnecting') return;
    this.#closed = undefined;
    this.#failures = 0;
    void this.#open();
  }

  /**
   * Closes the connection for good (until `connect()`): no reconnect; requests in flight or
   * queued are rejected. Idempotent; concurrent callers share one promise.
   */
  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closed = this.#shutdown({ status: 'closed' }, new ClientClosedError('request'));
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
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
    for (const [ref, p] of [...this.#pending]) {
      this.#pending.delete(ref);
      clearTimeout(p.timer);
      p.onLost(err);
    }
    for (const q of this.#queue.drain()) q.fail(err);
    for (const entry of this.#channels.values()) {
      clearTimeout(entry.timer);
      clearTimeout(entry.gapTimer);
      entry.timer = entry.gapTimer = undefined;
      entry.status = 'pending';
      entry.subscribeRef = undefined;
      entry.fillRef = undefined;
      for (const w of [...entry.waiters]) this.#settleWaiter(entry, w, err);
    }
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
    const listed = this.#listedUrl();
    this.#setState({ status: 'connecting', attempt: attemptNo, url: listed });
    let url: string;
    let token: string;
    let Ctor;
    try {
      url = listed ?? (await this.#providedUrl());
      if (gen !== this.#gen) return;
      token = await this.#token('connect');
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
    this.#lastUrl = url;
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
        const positions = this.#positions();
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

  /** The next URL of a fixed one or a list (moving to the next on every reconnect); undefined for a provider. */
  #listedUrl(): string | undefined {
    const url = this.#o.url;
    if (typeof url === 'string') return url;
    if (typeof url === 'function') return undefined;
    if (this.#connects++ > 0) this.#urlIndex = (this.#urlIndex + 1) % url.length;
    return url[this.#urlIndex]!;
  }

  async #providedUrl(): Promise<string> {
    const provider = this.#o.url as UrlProvider;
    const chosen = await provider({ attempt: this.#failures, previous: this.#lastUrl });
    if (typeof chosen !== 'string' || !/^wss?:\/\//.test(chosen)) throw new InvalidArgumentError('url', `provider returned "${String(chosen)}", not a ws:// URL`);
    return chosen;
  }

  async #token(reason: 'connect' | 'refresh'): Promise<string> {
    const t = this.#o.token;
    if (typeof t === 'string') return t;
    let token: string;
    try {
      token = await (t as TokenProvider)({ reason });
    } catch (err) {
      throw new SwitchyardError('provider_failed', `the token provider failed (${reason}): ${(err as Error)?.message ?? String(err)}`, { retriable: true, cause: err });
    }
    if (typeof token !== 'string' || token === '') throw new SwitchyardError('provider_failed', `the token provider returned ${JSON.stringify(token)}, not a JWT`, { retriable: true });
    return token;
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
    for (const [ref, p] of [...this.#pending]) {
      this.#pending.delete(ref);
      clearTimeout(p.timer);
      p.onLost();
    }
    for (const entry of this.#channels.values()) {
      clearTimeout(entry.timer);
      clearTimeout(entry.gapTimer);
      entry.timer = entry.gapTimer = undefined;
      if (entry.status === 'active' || entry.status === 'resuming') entry.wasActive = true;
      entry.status = 'pending';
      entry.subscribeRef = undefined;
      entry.fillRef = undefined;
    }
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
    if (ref !== undefined) {
      const p = this.#pending.get(ref);
      if (p !== undefined) {
        this.#pending.delete(ref);
        clearTimeout(p.timer);
        p.onReply(frame);
        return;
      }
    }
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
        this.#onEvent(frame);
        return;
      case 'subscription_result':
        this.#onUnsolicitedResult(frame);
        return;
      case 'snapshot':
        this.#onSnapshot(frame);
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
    for (const entry of this.#channels.values()) {
      if (hello.resumed && entry.wasActive) this.#awaitResume(entry);
      else this.#sendSubscribe(entry);
    }
    for (const q of this.#queue.drain()) this.#sendQueued(attempt, q);
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
      token = await this.#token('refresh');
    } catch (err) {
      if (this.#attempt !== attempt) return;
      this.#emitter.emit('error', err as SwitchyardError);
      const left = oldExp * 1000 - Date.now();
      if (left > 1000) this.#refreshTimer = setTimeout(() => void this.#refresh(attempt, oldExp), Math.min(REFRESH_RETRY_MS, left / 2));
      return;
    }
    if (this.#attempt !== attempt) return;
    const ref = this.#nextRef();
    const timer = setTimeout(() => {
      if (this.#pending.delete(ref)) this.#emitter.emit('error', new TimeoutError('token refresh', this.#o.requestTimeoutMs, 'sent'));
    }, this.#o.requestTimeoutMs);
    this.#pending.set(ref, {
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

  // ───────────────────────────── channels ─────────────────────────────

  /**
   * Subscribes to a channel, now or as soon as the client is connected, and keeps it
   * subscribed across reconnects until `unsubscribe`. Resolves once the server confirmed it;
   * rejects if the server refuses (`forbidden`, ...), or after `timeoutMs` — the channel then
   * stays wanted and is subscribed on the next connection unless you unsubscribe.
   */
  subscribe(channel: string, options: SubscribeOptions = {}): Promise<SubscriptionInfo> {
    if (!isValidChannel(channel)) return Promise.reject(new InvalidArgumentError('channel', `must be 1–200 characters of A-Z a-z 0-9 : _ - . @ /, got ${JSON.stringify(channel)}`));
    if (options.since !== undefined && (!Number.isInteger(options.since) || options.since < 0)) {
      return Promise.reject(new InvalidArgumentError('since', `must be a non-negative integer, got ${String(options.since)}`));
    }
    if (this.#state.status === 'closed') return Promise.reject(new ClientClosedError(`subscribe ${channel}`));
    let entry = this.#channels.get(channel);
    if (entry === undefined) {
      entry = {
        name: channel,
        stream: new ChannelStream(channel, { since: options.since, maxBuffered: this.#o.maxBufferedEvents }),
        initialSince: options.since,
        status: 'pending',
        wasActive: false,
        subscribeRef: undefined,
        fillRef: undefined,
        retries: 0,
        timer: undefined,
        gapTimer: undefined,
        waiters: new Set(),
      };
      this.#channels.set(channel, entry);
      if (this.#attempt?.hello !== undefined) this.#sendSubscribe(entry);
    } else if (entry.status === 'active') {
      return Promise.resolve({ channel, seq: entry.stream.resumeFrom ?? 0, epoch: entry.stream.epoch, recovered: undefined });
    }
    const e = entry;
    const timeoutMs = options.timeoutMs ?? this.#o.requestTimeoutMs;
    return new Promise<SubscriptionInfo>((resolve, reject) => {
      const waiter: Waiter<SubscriptionInfo> = { resolve, reject, timer: undefined };
      waiter.timer = setTimeout(() => {
        this.#settleWaiter(e, waiter, new TimeoutError(`subscribe ${channel}`, timeoutMs, e.status === 'pending' ? 'queued' : 'sent'));
      }, timeoutMs);
      e.waiters.add(waiter);
    });
  }

  /**
   * Stops a subscription: no further events of the channel reach the application from now on.
   * Resolves once the server confirmed it (at once when offline).
   */
  async unsubscribe(channel: string, options: RequestOptions = {}): Promise<void> {
    const entry = this.#channels.get(channel);
    if (entry === undefined) return;
    this.#channels.delete(channel);
    clearTimeout(entry.timer);
    clearTimeout(entry.gapTimer);
    for (const w of [...entry.waiters]) this.#settleWaiter(entry, w, new SwitchyardError('unsubscribed', `subscribe ${channel}: unsubscribed before it was confirmed`));
    const attempt = this.#attempt;
    if (attempt?.hello === undefined || entry.status === 'pending') return;
    const ref = this.#nextRef();
    const timeoutMs = options.timeoutMs ?? this.#o.requestTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(ref);
        reject(new TimeoutError(`unsubscribe ${channel}`, timeoutMs, 'sent'));
      }, timeoutMs);
      this.#pending.set(ref, {
        kind: 'unsubscribe',
        timer,
        onReply: (frame) => (frame.type === 'error' ? reject(new ServerError(frame.code, frame.error)) : resolve()),
        // Offline, the subscription is gone with the connection; a resumed session that
        // brings it back is answered with an unsubscribe then.
        onLost: () => resolve(),
      });
      this.#write(attempt, { type: 'unsubscribe', channel, ref });
    });
  }

  #settleWaiter(entry: ChannelEntry, waiter: Waiter<SubscriptionInfo>, outcome: SubscriptionInfo | SwitchyardError): void {
    if (!entry.waiters.delete(waiter)) return;
    clearTimeout(waiter.timer);
    if (outcome instanceof Error) waiter.reject(outcome);
    else waiter.resolve(outcome);
  }

  #sendSubscribe(entry: ChannelEntry): void {
    const attempt = this.#attempt;
    if (attempt?.hello === undefined || this.#channels.get(entry.name) !== entry) return;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const since = entry.stream.resumeFrom ?? entry.initialSince;
    const ref = this.#nextRef();
    entry.status = 'subscribing';
    entry.subscribeRef = ref;
    const timer = setTimeout(() => {
      if (!this.#pending.delete(ref)) return;
      if (entry.subscribeRef === ref) entry.subscribeRef = undefined;
      this.#retrySubscribe(entry, new TimeoutError(`subscribe ${entry.name}`, this.#o.requestTimeoutMs, 'sent'));
    }, this.#o.requestTimeoutMs);
    this.#pending.set(ref, {
      kind: 'subscribe',
      timer,
      onReply: (frame) => {
        if (entry.subscribeRef === ref) entry.subscribeRef = undefined;
        if (frame.type === 'subscription_result') this.#onResult(entry, frame, since);
        else if (frame.type === 'error') this.#onSubscribeError(entry, frame.code, frame.error);
      },
      onLost: () => undefined,
    });
    const frame: ClientFrame = { type: 'subscribe', channel: entry.name, ref };
    if (since !== undefined) frame.since = since;
    this.#write(attempt, frame);
  }

  /** A resumed session restores this channel by itself; if it does not within the timeout, subscribe. */
  #awaitResume(entry: ChannelEntry): void {
    clearTimeout(entry.timer);
    entry.status = 'resuming';
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (entry.status === 'resuming') this.#sendSubscribe(entry);
    }, this.#o.requestTimeoutMs);
  }

  #retrySubscribe(entry: ChannelEntry, cause: SwitchyardError): void {
    if (this.#channels.get(entry.name) !== entry) return;
    entry.status = 'pending';
    entry.retries++;
    if (entry.retries > MAX_SUBSCRIBE_RETRIES) {
      this.#dropChannel(entry, cause);
      return;
    }
    const o = this.#o.reconnect;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (entry.status === 'pending') this.#sendSubscribe(entry);
    }, fullJitterDelay(entry.retries, o));
  }

  #onSubscribeError(entry: ChannelEntry, code: string, message: string): void {
    if (this.#channels.get(entry.name) !== entry || entry.status === 'active') return;
    // `bad_frame` here means the server is still setting the channel up — restoring it from
    // the resumed session. Its own subscription_result follows.
    if (code === 'bad_frame' && this.#state.status === 'connected' && this.#state.resumed) {
      this.#awaitResume(entry);
      return;
    }
    if (code === 'unavailable' || code === 'rate_limited') {
      this.#retrySubscribe(entry, new ServerError(code, `subscribe ${entry.name}: ${message}`));
      return;
    }
    this.#dropChannel(entry, new ServerError(code, `subscribe ${entry.name}: ${message}`));
  }

  /** A subscription that cannot be had: forget it, tell whoever waits, or the error listeners. */
  #dropChannel(entry: ChannelEntry, error: SwitchyardError): void {
    if (this.#channels.get(entry.name) === entry) this.#channels.delete(entry.name);
    clearTimeout(entry.timer);
    clearTimeout(entry.gapTimer);
    entry.timer = undefined;
    const waiting = entry.waiters.size > 0;
    for (const w of [...entry.waiters]) this.#settleWaiter(entry, w, error);
    if (!waiting) this.#emitter.emit('error', error);
  }

  #onResult(entry: ChannelEntry, frame: SubscriptionResultFrame, since: number | undefined): void {
    if (this.#channels.get(entry.name) !== entry) return;
    if (!frame.success) {
      const code = frame.error ?? 'unknown';
      if (code === 'unavailable') this.#retrySubscribe(entry, new ServerError(code, `subscribe ${entry.name}: the server could not complete it`));
      else this.#dropChannel(entry, new ServerError(code, `subscribe ${entry.name} refused: ${code}`));
      return;
    }
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.status = 'active';
    entry.wasActive = true;
    entry.retries = 0;
    const seq = typeof frame.seq === 'number' ? frame.seq : 0;
    const outcome = entry.stream.onSubscribed({ seq, epoch: frame.epoch, recovered: frame.recovered }, since);
    const info: SubscriptionInfo = { channel: entry.name, seq, epoch: frame.epoch, recovered: frame.recovered };
    for (const w of [...entry.waiters]) this.#settleWaiter(entry, w, info);
    if (outcome.signal !== undefined) this.#emitter.emit('gap', outcome.signal);
    if (outcome.needFill) this.#checkCaughtUp(entry, seq);
  }

  /**
   * After a resume the server replays from where *it* thinks the client stood; the replay
   * travels right behind the subscription_result. A ping's pong comes after all of it, so
   * if the stream has still not reached `target` by then, what it missed was skipped: fill.
   */
  #checkCaughtUp(entry: ChannelEntry, target: number): void {
    const attempt = this.#attempt;
    if (attempt?.hello === undefined) return;
    const ref = this.#nextRef();
    const check = () => {
      if (this.#channels.get(entry.name) === entry && (entry.stream.lastSeq ?? -1) < target) this.#requestFill(entry);
    };
    const timer = setTimeout(() => {
      if (this.#pending.delete(ref)) check();
    }, this.#o.requestTimeoutMs);
    this.#pending.set(ref, { kind: 'request', timer, onReply: check, onLost: () => undefined });
    this.#write(attempt, { type: 'ping', ref });
  }

  /** A `subscription_result` nobody asked for: a resumed session restoring a channel, or a reset notice. */
  #onUnsolicitedResult(frame: SubscriptionResultFrame): void {
    const entry = this.#channels.get(frame.channel);
    if (entry === undefined) {
      // A channel the application has dropped meanwhile: the session still had it.
      if (frame.success && this.#attempt?.hello !== undefined) this.#write(this.#attempt, { type: 'unsubscribe', channel: frame.channel });
      return;
    }
    this.#onResult(entry, frame, undefined);
  }

  /** Asks for a replay from the last seq handed over: `subscribe` again with `since`. */
  #requestFill(entry: ChannelEntry): void {
    const attempt = this.#attempt;
    if (attempt?.hello === undefined || entry.fillRef !== undefined || entry.status !== 'active') return;
    const since = entry.stream.resumeFrom;
    if (since === undefined) return;
    const ref = this.#nextRef();
    entry.fillRef = ref;
    const timer = setTimeout(() => {
      if (this.#pending.delete(ref) && entry.fillRef === ref) entry.fillRef = undefined;
    }, this.#o.requestTimeoutMs);
    this.#pending.set(ref, {
      kind: 'fill',
      timer,
      onReply: (frame) => {
        if (entry.fillRef === ref) entry.fillRef = undefined;
        if (frame.type === 'subscription_result') this.#onResult(entry, frame, since);
      },
      onLost: () => undefined,
    });
    this.#o.logger.debug?.('asking for a replay', { channel: entry.name, since });
    this.#write(attempt, { type: 'subscribe', channel: entry.name, since, ref });
  }

  #onSnapshot(frame: SnapshotFrame): void {
    const entry = this.#channels.get(frame.channel);
    if (entry === undefined || typeof frame.seq !== 'number') return;
    const out = entry.stream.onSnapshot(frame.seq, frame.epoch);
    this.#emitter.emit('snapshot', { channel: frame.channel, seq: frame.seq, epoch: frame.epoch, data: frame.data });
    for (const e of out.deliver) {
      if (this.#channels.get(frame.channel) !== entry) return; // a listener unsubscribed
      this.#emitter.emit('event', e);
    }
    if (out.needFill) this.#fillAfterGrace(entry);
  }

  #onEvent(frame: EventFrame): void {
    const entry = this.#channels.get(frame.channel);
    if (entry === undefined) return;
    const seq = typeof frame.seq === 'number' ? frame.seq : null;
    const event: ChannelEvent = {
      id: eventId(entry.stream.epoch, seq),
      channel: frame.channel,
      seq,
      event: frame.event,
      data: frame.data,
      timestamp: frame.timestamp,
      degraded: frame.degraded === true,
      coalesced: typeof frame.coalesced === 'number' && frame.coalesced > 0 ? frame.coalesced : 0,
    };
    const out = entry.stream.push(event);
    for (const e of out.deliver) {
      this.#emitter.emit('event', e);
      if (this.#channels.get(frame.channel) !== entry) return; // a listener unsubscribed
    }
    if (out.needFill) this.#fillAfterGrace(entry);
  }

  /**
   * An event came early. Within one connection the server skips seqs only when it coalesces
   * a slow client's events, and the event announcing that follows shortly: give it that long
   * before asking for a replay.
   */
  #fillAfterGrace(entry: ChannelEntry): void {
    if (entry.gapTimer !== undefined || entry.fillRef !== undefined) return;
    entry.gapTimer = setTimeout(() => {
      entry.gapTimer = undefined;
      if (this.#channels.get(entry.name) === entry && entry.stream.waiting) this.#requestFill(entry);
    }, GAP_GRACE_MS);
  }

  // ───────────────────────────── requests ─────────────────────────────

  /** Publishes an event (needs a publish right on the channel). Queued while offline. */
  async publish(channel: string, event: string, data: unknown = null, options: RequestOptions = {}): Promise<PublishResult> {
    if (!isValidChannel(channel)) throw new InvalidArgumentError('channel', `must be a valid channel name, got ${JSON.stringify(channel)}`);
    if (typeof event !== 'string' || event.length === 0 || event.length > 200) throw new InvalidArgumentError('event', 'must be a string of 1–200 characters');
    const reply = await this.#request({ type: 'publish', channel, event, data: data as Json }, `publish to ${channel}`, options.timeoutMs);
    if (reply.type !== 'ack') throw new SwitchyardError('server_error', `publish to ${channel}: unexpected reply ${reply.type}`);
    return { seq: typeof reply.seq === 'number' ? reply.seq : null, degraded: reply.degraded === true };
  }

  /** Sends `data` to one connection (`c_...`) or every connection of a user (`user:<id>`). Queued while offline. */
  async direct(to: string, data: unknown, options: RequestOptions = {}): Promise<void> {
    if (typeof to !== 'string' || to === '') throw new InvalidArgumentError('to', 'must be a connection id or "user:<id>"');
    await this.#request({ type: 'direct', to, data: data as Json }, `direct to ${to}`, options.timeoutMs);
  }

  /**
   * Submits a job (`POST /jobs` on the node's HTTP side, with this client's token); resolves
   * with its id once queued. The HTTP base comes from the WebSocket URL (`ws://h:p/ws` →
   * `http://h:p`) unless the `httpUrl` option sets it. Refusals reject with `HttpError`
   * (`status`, `serverCode`); an unknown outcome with `connection_lost` (retry with the same `job_id`).
   */
  async submitJob(job: JobRequest, options: RequestOptions = {}): Promise<SubmittedJob> {
    if (this.#state.status === 'closed') throw new ClientClosedError('submit job');
    const base = this.#o.httpUrl ?? httpBaseOf(this.#state.status === 'connected' ? this.#state.url : (this.#lastUrl ?? this.#listedUrlPeek() ?? (await this.#providedUrl())));
    const token = await this.#token('connect');
    return postJob(base, token, job, { fetch: this.#o.fetch, timeoutMs: options.timeoutMs ?? this.#o.requestTimeoutMs });
  }

  /**
   * Replaces the token (a JWT, or a provider). On a live connection the new token is sent at
   * once (re-authentication, as a refresh); after `failed` — a refused token — the client
   * connects again with it; otherwise the next attempt uses it.
   */
  setToken(token: string | TokenProvider): void {
    if (typeof token !== 'function' && (typeof token !== 'string' || token === '')) {
      throw new InvalidArgumentError('token', 'must be a non-empty JWT string or a function returning one');
    }
    this.#o.token = token;
    const attempt = this.#attempt;
    if (attempt?.hello !== undefined) void this.#refresh(attempt, 0);
    else if (this.#state.status === 'failed') this.connect();
  }

  /** The first URL of a fixed one or a list, without moving along the list; undefined for a provider. */
  #listedUrlPeek(): string | undefined {
    const url = this.#o.url;
    return typeof url === 'string' ? url : typeof url === 'function' ? undefined : url[this.#urlIndex];
  }

  /** Asks the server to cancel a job this user owns. Queued while offline. */
  async cancelJob(jobId: string, options: RequestOptions = {}): Promise<void> {
    if (typeof jobId !== 'string' || jobId === '') throw new InvalidArgumentError('jobId', 'must be a non-empty string');
    await this.#request({ type: 'cancel', job_id: jobId }, `cancel ${jobId}`, options.timeoutMs);
  }

  /** Round trip to the server, in milliseconds. */
  async ping(options: RequestOptions = {}): Promise<number> {
    const started = Date.now();
    await this.#request({ type: 'ping' }, 'ping', options.timeoutMs);
    return Date.now() - started;
  }

  /**
   * Sends a frame and waits for the reply with its `ref`: now when connected, else from the
   * bounded offline queue once connected. Error frames reject with ServerError.
   */
  #request(frame: ClientFrame, what: string, timeoutMs: number = this.#o.requestTimeoutMs): Promise<ServerFrame> {
    const s = this.#state.status;
    if (s === 'closed') return Promise.reject(new ClientClosedError(what));
    if (s === 'failed') return Promise.reject(new ClientClosedError(what, this.#state.status === 'failed' ? this.#state.error : undefined));
    return new Promise<ServerFrame>((resolve, reject) => {
      let done = false;
      const q: Queued = {
        frame,
        what,
        ref: undefined,
        settle: (reply) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (reply.type === 'error') reject(new ServerError(reply.code, `${what}: ${reply.error}`));
          else resolve(reply);
        },
        fail: (err) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        if (q.ref === undefined) this.#queue.remove(q);
        else this.#pending.delete(q.ref);
        q.fail(new TimeoutError(what, timeoutMs, q.ref === undefined ? 'queued' : 'sent'));
      }, timeoutMs);
      const attempt = this.#attempt;
      if (attempt?.hello !== undefined) {
        this.#sendQueued(attempt, q);
      } else if (!this.#queue.offer(q)) {
        q.fail(new QueueFullError(this.#queue.limit));
      }
    });
  }

  #sendQueued(attempt: Attempt, q: Queued): void {
    const ref = this.#nextRef();
    q.ref = ref;
    this.#pending.set(ref, {
      kind: 'request',
      timer: undefined,
      onReply: (frame) => q.settle(frame),
      onLost: (reason) => q.fail(reason ?? new ConnectionLostError(q.what)),
    });
    if (!this.#write(attempt, { ...q.frame, ref })) {
      this.#pending.delete(ref);
      q.fail(new ConnectionLostError(q.what));
    }
  }

  #nextRef(): string {
    this.#refCounter = (this.#refCounter + 1) % Number.MAX_SAFE_INTEGER;
    return `c${this.#refCounter}`;
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
