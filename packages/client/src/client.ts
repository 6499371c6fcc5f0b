/**
 * The Switchyard client: one connection at a time, authenticated by first frame, that
 * reconnects by itself and keeps the application's view of every channel exact — each event
 * once, in seq order — across reconnects, session resumes, replays and node failures.
 *
 * Data flows one way: socket → `Connection` (routing by `ref` first, then by type) → the
 * `SubscriptionManager` → the channel's `ChannelStream` (dedupe, order, gap detection) → the
 * application's listeners. This class is the facade over those two: it checks arguments,
 * wires them together and owns the listeners.
 */
import { isValidChannel, type Json } from '@switchyard/protocol';
import { Connection } from './connection.js';
import { Emitter } from './emitter.js';
import { ClientClosedError, InvalidArgumentError, SwitchyardError, TimeoutError } from './errors.js';
import { httpBaseOf, postJob, type JobRequest, type SubmittedJob } from './http.js';
import { resolveOptions, type ClientOptions, type ResolvedOptions, type TokenProvider } from './options.js';
import type { ChannelEvent } from './stream.js';
import { SubscriptionManager } from './subscriptions.js';
import type {
  ChannelSnapshot,
  ClientEvents,
  ConnectionState,
  PublishResult,
  RequestOptions,
  SubscribeOptions,
  SubscriptionInfo,
} from './types.js';

export { withSessionHint } from './connection.js';

export class SwitchyardClient {
  readonly #o: ResolvedOptions;
  readonly #emitter: Emitter<ClientEvents>;
  readonly #subs: SubscriptionManager;
  readonly #conn: Connection;

  constructor(options: ClientOptions) {
    this.#o = resolveOptions(options);
    this.#emitter = new Emitter((err, event) => this.#o.logger.error?.('a listener threw', { event, err }));
    this.#subs = new SubscriptionManager(this.#o, this.#emitter, () => this.#conn);
    this.#conn = new Connection(this.#o, this.#emitter, this.#subs);
    if (this.#o.autoConnect) this.connect();
  }

  /** The current connection state. */
  get state(): ConnectionState {
    return this.#conn.state;
  }

  /** The session id of the current (or last) connection; sent on reconnect to resume it. */
  get sessionId(): string | undefined {
    return this.#conn.sessionId;
  }

  /** Channels the client is subscribed to, or will subscribe to once connected. */
  get channels(): string[] {
    return this.#subs.names;
  }

  /** The seq of the last event of `channel` handed to the application. */
  lastSeq(channel: string): number | undefined {
    return this.#subs.lastSeq(channel);
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
    const now = this.#conn.state;
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
    this.#conn.connect();
  }

  /**
   * Closes the connection for good (until `connect()`): no reconnect; requests in flight or
   * queued are rejected. Idempotent; concurrent callers share one promise.
   */
  close(): Promise<void> {
    return this.#conn.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ───────────────────────────── channels ─────────────────────────────

  /**
   * Subscribes to a channel, now or as soon as the client is connected, and keeps it
   * subscribed across reconnects until `unsubscribe`. Resolves once the server confirmed it;
   * rejects if the server refuses (`forbidden`, ...), or after `timeoutMs` — the channel then
   * stays wanted and is subscribed on the next connection unless you unsubscribe.
   */
  subscribe(channel: string, options: SubscribeOptions = {}): Promise<SubscriptionInfo> {
    return this.#subs.subscribe(channel, options);
  }

  /**
   * Stops a subscription: no further events of the channel reach the application from now on.
   * Resolves once the server confirmed it (at once when offline).
   */
  unsubscribe(channel: string, options: RequestOptions = {}): Promise<void> {
    return this.#subs.unsubscribe(channel, options);
  }

  // ───────────────────────────── requests ─────────────────────────────

  /** Publishes an event (needs a publish right on the channel). Queued while offline. */
  async publish(channel: string, event: string, data: unknown = null, options: RequestOptions = {}): Promise<PublishResult> {
    if (!isValidChannel(channel)) throw new InvalidArgumentError('channel', `must be a valid channel name, got ${JSON.stringify(channel)}`);
    if (typeof event !== 'string' || event.length === 0 || event.length > 200) throw new InvalidArgumentError('event', 'must be a string of 1–200 characters');
    const reply = await this.#conn.requests.request({ type: 'publish', channel, event, data: data as Json }, `publish to ${channel}`, options.timeoutMs);
    if (reply.type !== 'ack') throw new SwitchyardError('server_error', `publish to ${channel}: unexpected reply ${reply.type}`);
    return { seq: typeof reply.seq === 'number' ? reply.seq : null, degraded: reply.degraded === true };
  }

  /** Sends `data` to one connection (`c_...`) or every connection of a user (`user:<id>`). Queued while offline. */
  async direct(to: string, data: unknown, options: RequestOptions = {}): Promise<void> {
    if (typeof to !== 'string' || to === '') throw new InvalidArgumentError('to', 'must be a connection id or "user:<id>"');
    await this.#conn.requests.request({ type: 'direct', to, data: data as Json }, `direct to ${to}`, options.timeoutMs);
  }

  /**
   * Submits a job (`POST /jobs` on the node's HTTP side, with this client's token); resolves
   * with its id once queued. The HTTP base comes from the WebSocket URL (`ws://h:p/ws` →
   * `http://h:p`) unless the `httpUrl` option sets it. Refusals reject with `HttpError`
   * (`status`, `serverCode`); an unknown outcome with `connection_lost` (retry with the same `job_id`).
   */
  async submitJob(job: JobRequest, options: RequestOptions = {}): Promise<SubmittedJob> {
    if (this.#conn.state.status === 'closed') throw new ClientClosedError('submit job');
    const base = this.#o.httpUrl ?? httpBaseOf(await this.#conn.currentUrl());
    const token = await this.#conn.endpoints.token('connect');
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
    this.#conn.setToken(token);
  }

  /** Asks the server to cancel a job this user owns. Queued while offline. */
  async cancelJob(jobId: string, options: RequestOptions = {}): Promise<void> {
    if (typeof jobId !== 'string' || jobId === '') throw new InvalidArgumentError('jobId', 'must be a non-empty string');
    await this.#conn.requests.request({ type: 'cancel', job_id: jobId }, `cancel ${jobId}`, options.timeoutMs);
  }

  /** Round trip to the server, in milliseconds. */
  async ping(options: RequestOptions = {}): Promise<number> {
    const started = Date.now();
    await this.#conn.requests.request({ type: 'ping' }, 'ping', options.timeoutMs);
    return Date.now() - started;
  }
}
