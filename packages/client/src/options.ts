/**
 * Client options: every field documented with its default, defaults merged in one place
 * (`resolveOptions`), and bad values refused there with an error naming the field.
 */
import { DEFAULT_BACKOFF_FACTOR, DEFAULT_INITIAL_DELAY_MS, DEFAULT_MAX_DELAY_MS, DEFAULT_STABLE_AFTER_MS } from './backoff.js';
import { InvalidArgumentError } from './errors.js';
import { DEFAULT_MAX_QUEUED_REQUESTS } from './queue.js';
import { DEFAULT_MAX_BUFFERED_EVENTS } from './stream.js';
import { DEFAULT_REFRESH_MARGIN_MS } from './token.js';
import { normaliseHttpBase, type FetchLike } from './http.js';
import type { WebSocketConstructor } from './transport.js';

/** Time allowed for a request's reply (and for a request waiting offline). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Time allowed from opening a socket to `auth_success`. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** A `ping` goes out after this long without any frame from the server. */
export const DEFAULT_PING_INTERVAL_MS = 20_000;
/** No frame at all this long after a `ping`: the connection is taken as dead. */
export const DEFAULT_PONG_TIMEOUT_MS = 10_000;

/** Asked before every connection attempt; may return a different node each time. */
export type UrlProvider = (context: { attempt: number; previous: string | undefined }) => string | Promise<string>;

/**
 * Asked for a token before every connection attempt (`reason: 'connect'`) and before the
 * current token expires (`reason: 'refresh'`). Throwing makes that attempt fail (and retry).
 */
export type TokenProvider = (context: { reason: 'connect' | 'refresh' }) => string | Promise<string>;

export interface ReconnectOptions {
  /**
   * Reconnect after a connection is lost.
   * @default true
   */
  enabled?: boolean;
  /**
   * Backoff ceiling of the first retry; it doubles (`factor`) per failed attempt.
   * @default 250
   */
  initialDelayMs?: number;
  /**
   * Cap on the backoff ceiling.
   * @default 15000
   */
  maxDelayMs?: number;
  /** @default 2 */
  factor?: number;
  /**
   * A connection that stays up this long resets the backoff to its first step.
   * @default 5000
   */
  stableAfterMs?: number;
  /**
   * Consecutive failed attempts before giving up (state `failed`).
   * @default Infinity
   */
  maxAttempts?: number;
  /**
   * Replaces the full-jitter backoff: gets the attempt number (0 for the first retry) and
   * returns the delay in ms. Server instructions (`reconnect.after_ms`, 1012) still win.
   */
  delay?: (attempt: number) => number;
}

/** Where log lines go; nothing is printed by default. */
export interface ClientLogger {
  debug?(message: string, context?: Record<string, unknown>): void;
  warn?(message: string, context?: Record<string, unknown>): void;
  error?(message: string, context?: Record<string, unknown>): void;
}

export interface ClientOptions {
  /**
   * The node to connect to (`ws://host:8765/ws`), several (tried in turn, moving to the next
   * on every reconnect), or a function asked before every attempt.
   */
  url: string | readonly string[] | UrlProvider;
  /** The JWT, or a provider asked on every (re)connect and before expiry. */
  token: string | TokenProvider;
  /**
   * The WebSocket class.
   * @default globalThis.WebSocket, else the `ws` package (Node 20)
   */
  WebSocket?: WebSocketConstructor;
  /**
   * Start connecting at once.
   * @default true
   */
  autoConnect?: boolean;
  /** Reconnect policy; `false` turns reconnecting off. */
  reconnect?: ReconnectOptions | false;
  /** @default 10000 */
  requestTimeoutMs?: number;
  /** @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Requests (publish, direct, cancel, ping) kept while offline; more are refused.
   * @default 100
   */
  maxQueuedRequests?: number;
  /**
   * Out-of-order events held per channel while a replay fills a gap.
   * @default 1000
   */
  maxBufferedEvents?: number;
  /**
   * Send a `ping` after this long without a frame; 0 turns it off.
   * @default 20000
   */
  pingIntervalMs?: number;
  /** @default 10000 */
  pongTimeoutMs?: number;
  /**
   * Ask the token provider this long before the token's `exp` (at most a quarter of its
   * remaining lifetime).
   * @default 30000
   */
  refreshMarginMs?: number;
  /**
   * Send the `session_id` on reconnect so the server restores subscriptions.
   * @default true
   */
  resume?: boolean;
  /** @default no logging */
  logger?: ClientLogger;
  /**
   * The node's HTTP base for `submitJob` (`https://api.example.com`).
   * @default the WebSocket URL's: ws://h:p/ws → http://h:p, wss → https
   */
  httpUrl?: string;
  /**
   * The `fetch` for `submitJob`.
   * @default globalThis.fetch
   */
  fetch?: FetchLike;
}

export interface ResolvedOptions {
  url: string | readonly string[] | UrlProvider;
  token: string | TokenProvider;
  WebSocket: WebSocketConstructor | undefined;
  autoConnect: boolean;
  reconnect: Required<Omit<ReconnectOptions, 'delay'>> & { delay: ((attempt: number) => number) | undefined };
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  maxQueuedRequests: number;
  maxBufferedEvents: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  refreshMarginMs: number;
  resume: boolean;
  logger: ClientLogger;
  httpUrl: string | undefined;
  fetch: FetchLike | undefined;
}

function nonNegative(field: string, value: number | undefined, fallback: number, { integer = true, positive = false } = {}): number {
  if (value === undefined) return fallback;
  const ok = typeof value === 'number' && !Number.isNaN(value) && (positive ? value > 0 : value >= 0) && (!integer || Number.isInteger(value) || value === Infinity);
  if (!ok) throw new InvalidArgumentError(field, `must be a ${positive ? 'positive' : 'non-negative'} ${integer ? 'integer' : 'number'}, got ${String(value)}`);
  return value;
}

export function resolveOptions(options: ClientOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', 'must be an object');
  const { url, token } = options;
  if (typeof url === 'string') {
    if (!/^wss?:\/\//.test(url)) throw new InvalidArgumentError('url', `must start with ws:// or wss://, got "${url}"`);
  } else if (Array.isArray(url)) {
    if (url.length === 0) throw new InvalidArgumentError('url', 'must list at least one URL');
    for (const u of url) if (typeof u !== 'string' || !/^wss?:\/\//.test(u)) throw new InvalidArgumentError('url', `entries must start with ws:// or wss://, got "${String(u)}"`);
  } else if (typeof url !== 'function') {
    throw new InvalidArgumentError('url', 'must be a ws:// URL, a list of them, or a function returning one');
  }
  if (typeof token !== 'function' && (typeof token !== 'string' || token === '')) {
    throw new InvalidArgumentError('token', 'must be a non-empty JWT string or a function returning one');
  }
  if (options.fetch !== undefined && typeof options.fetch !== 'function') throw new InvalidArgumentError('fetch', 'must be a fetch function');
  if (options.WebSocket !== undefined && typeof options.WebSocket !== 'function') throw new InvalidArgumentError('WebSocket', 'must be a WebSocket class');
  const r = options.reconnect === false ? { enabled: false } : (options.reconnect ?? {});
  if (r.delay !== undefined && typeof r.delay !== 'function') throw new InvalidArgumentError('reconnect.delay', 'must be a function (attempt) => ms');
  const reconnect = {
    enabled: r.enabled ?? true,
    initialDelayMs: nonNegative('reconnect.initialDelayMs', r.initialDelayMs, DEFAULT_INITIAL_DELAY_MS),
    maxDelayMs: nonNegative('reconnect.maxDelayMs', r.maxDelayMs, DEFAULT_MAX_DELAY_MS),
    factor: nonNegative('reconnect.factor', r.factor, DEFAULT_BACKOFF_FACTOR, { integer: false, positive: true }),
    stableAfterMs: nonNegative('reconnect.stableAfterMs', r.stableAfterMs, DEFAULT_STABLE_AFTER_MS),
    maxAttempts: nonNegative('reconnect.maxAttempts', r.maxAttempts, Infinity),
    delay: r.delay,
  };
  if (reconnect.maxDelayMs < reconnect.initialDelayMs) {
    throw new InvalidArgumentError('reconnect.maxDelayMs', `must be at least reconnect.initialDelayMs (${reconnect.initialDelayMs})`);
  }
  return {
    url,
    token,
    WebSocket: options.WebSocket,
    autoConnect: options.autoConnect ?? true,
    reconnect,
    requestTimeoutMs: nonNegative('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, { positive: true }),
    connectTimeoutMs: nonNegative('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, { positive: true }),
    maxQueuedRequests: nonNegative('maxQueuedRequests', options.maxQueuedRequests, DEFAULT_MAX_QUEUED_REQUESTS),
    maxBufferedEvents: nonNegative('maxBufferedEvents', options.maxBufferedEvents, DEFAULT_MAX_BUFFERED_EVENTS, { positive: true }),
    pingIntervalMs: nonNegative('pingIntervalMs', options.pingIntervalMs, DEFAULT_PING_INTERVAL_MS),
    pongTimeoutMs: nonNegative('pongTimeoutMs', options.pongTimeoutMs, DEFAULT_PONG_TIMEOUT_MS, { positive: true }),
    refreshMarginMs: nonNegative('refreshMarginMs', options.refreshMarginMs, DEFAULT_REFRESH_MARGIN_MS),
    resume: options.resume ?? true,
    logger: options.logger ?? {},
    httpUrl: options.httpUrl === undefined ? undefined : normaliseHttpBase(options.httpUrl),
    fetch: options.fetch,
  };
}
