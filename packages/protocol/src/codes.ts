/**
 * Stable wire codes. These strings and numbers are part of the public contract
 * (PROTOCOL.md §5): clients branch on them, so they never change meaning.
 */

export const ErrorCode = {
  BadJson: 'bad_json',
  BadFrame: 'bad_frame',
  UnknownType: 'unknown_type',
  BadChannel: 'bad_channel',
  Forbidden: 'forbidden',
  NotFound: 'not_found',
  RateLimited: 'rate_limited',
  TooLarge: 'too_large',
  TooManyConnections: 'too_many_connections',
  Unauthenticated: 'unauthenticated',
  /** Extension: a subscribe past MAX_SUBSCRIPTIONS_PER_CONNECTION. */
  TooManySubscriptions: 'too_many_subscriptions',
  /** Extension: the server could not complete a request (e.g. the broker is unreachable). */
  Unavailable: 'unavailable',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  /** Never sent: what a client sees when the connection dropped without a close frame. */
  Abnormal: 1006,
  TooLarge: 1009,
  /** The server failed to set up the connection. */
  InternalError: 1011,
  /** Service restart: the client should reconnect at once (drain). */
  Restart: 1012,
  AuthFailed: 4001,
  RateLimited: 4008,
  TooManyConnections: 4009,
  SlowConsumer: 4010,
  /** Extension: a newer connection resumed this session; the old one must not fight back. */
  SessionTakenOver: 4011,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
