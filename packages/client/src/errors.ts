/**
 * One error class per failure. Every one has a stable `code` (for programs), a message that
 * says what to change where that is the fix, and `retriable`: whether trying the same thing
 * again later may succeed.
 */

export type ClientErrorCode =
  /** A request got no reply in time. */
  | 'timeout'
  /** The connection dropped while a request was in flight; whether it took effect is unknown. */
  | 'connection_lost'
  /** The offline send queue is full (`maxQueuedRequests`). */
  | 'queue_full'
  /** The client was closed (by `close()`, or for good after a failure). */
  | 'closed'
  /** The server refused the token (`auth_error`); `reason` holds its code. */
  | 'auth_failed'
  /** The token expired on a live connection and no fresh one could be had. */
  | 'auth_expired'
  /** Another connection resumed this client's session (close 4011). */
  | 'session_taken_over'
  /** Reconnecting gave up after `reconnect.maxAttempts`. */
  | 'reconnect_failed'
  /** The token or URL provider threw. */
  | 'provider_failed'
  /** A bad argument or option, caught before anything was sent. */
  | 'invalid_argument'
  /** `unsubscribe()` was called while a `subscribe()` still waited. */
  | 'unsubscribed'
  /** An `error` frame or a failed `subscription_result`: `serverCode` says which. */
  | 'server_error';

export class SwitchyardError extends Error {
  override name = 'SwitchyardError';
  readonly code: ClientErrorCode;
  readonly retriable: boolean;

  constructor(code: ClientErrorCode, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** A request that got no reply within its timeout; `stage` says how far it got. */
export class TimeoutError extends SwitchyardError {
  override name = 'TimeoutError';
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    /** `queued`: never sent (still offline); `sent`: sent, no reply. */
    readonly stage: 'queued' | 'sent',
  ) {
    super(
      'timeout',
      stage === 'queued'
        ? `${what}: not connected within ${timeoutMs} ms, so it was never sent (raise requestTimeoutMs, or check the connection state)`
        : `${what}: sent, but no reply within ${timeoutMs} ms (raise requestTimeoutMs)`,
      { retriable: true },
    );
  }
}

/** The server answered with an `error` frame or a failed `subscription_result`. */
export class ServerError extends SwitchyardError {
  override name = 'ServerError';
  constructor(
    /** The wire code: `forbidden`, `not_found`, `bad_channel`, `rate_limited`, `unavailable`, ... */
    readonly serverCode: string,
    message: string,
  ) {
    super('server_error', message, { retriable: serverCode === 'unavailable' || serverCode === 'rate_limited' });
  }
}

/** The server refused the token. The client does not retry; it goes to the `failed` state. */
export class AuthFailedError extends SwitchyardError {
  override name = 'AuthFailedError';
  constructor(
    /** The `auth_error` code: `token_expired`, `bad_signature`, `bad_claims`, ... */
    readonly reason: string,
    message: string,
  ) {
    super('auth_failed', `the server refused the token (${reason}): ${message}; give the client a valid token (option "token")`);
  }
}

export class QueueFullError extends SwitchyardError {
  override name = 'QueueFullError';
  constructor(limit: number) {
    super('queue_full', `offline send queue is full (${limit} requests waiting for a connection); raise maxQueuedRequests or wait for the "connected" state`, {
      retriable: true,
    });
  }
}

export class ConnectionLostError extends SwitchyardError {
  override name = 'ConnectionLostError';
  constructor(what: string) {
    super('connection_lost', `${what}: the connection dropped before the reply; it may or may not have taken effect`, { retriable: true });
  }
}

export class ClientClosedError extends SwitchyardError {
  override name = 'ClientClosedError';
  constructor(what: string, cause?: unknown) {
    super('closed', `${what}: the client is closed`, { cause });
  }
}

export class InvalidArgumentError extends SwitchyardError {
  override name = 'InvalidArgumentError';
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super('invalid_argument', `"${field}" ${problem}`);
  }
}
