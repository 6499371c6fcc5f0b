/**
 * @switchyard/client — the public surface. Everything a user may import is named here;
 * React hooks live behind `@switchyard/client/react`, and the building blocks (ordering
 * stream, backoff policy, queue, frame parser) behind `@switchyard/client/internal`.
 */
export { SwitchyardClient } from './client.js';
export type {
  ChannelSnapshot,
  ClientEvents,
  ConnectionState,
  ConnectionStatus,
  DirectMessage,
  PublishResult,
  RequestOptions,
  SubscribeOptions,
  SubscriptionInfo,
} from './types.js';
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_PONG_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from './options.js';
export type { ClientLogger, ClientOptions, ReconnectOptions, TokenProvider, UrlProvider } from './options.js';
export { DEFAULT_BACKOFF_FACTOR, DEFAULT_INITIAL_DELAY_MS, DEFAULT_MAX_DELAY_MS, DEFAULT_STABLE_AFTER_MS } from './backoff.js';
export { DEFAULT_MAX_BUFFERED_EVENTS } from './stream.js';
export type { ChannelEvent, StreamGap } from './stream.js';
export { HttpError, httpBaseOf } from './http.js';
export type { FetchLike, JobRequest, SubmittedJob } from './http.js';
export { DEFAULT_MAX_QUEUED_REQUESTS } from './queue.js';
export { DEFAULT_REFRESH_MARGIN_MS } from './token.js';
export {
  AuthFailedError,
  ClientClosedError,
  ConnectionLostError,
  InvalidArgumentError,
  QueueFullError,
  ServerError,
  SwitchyardError,
  TimeoutError,
} from './errors.js';
export type { ClientErrorCode } from './errors.js';
// The wire vocabulary is @switchyard/protocol's, re-exported under the names this package has always used.
export { CloseCode, isValidChannel, jobChannelName as jobChannel } from '@switchyard/protocol';
export type {
  AckFrame,
  AuthErrorFrame,
  AuthExpiredFrame,
  AuthSuccessFrame,
  ClientFrame,
  ServerDirectFrame as DirectFrame,
  ErrorFrame,
  EventFrame,
  Json,
  PongFrame,
  ReconnectFrame,
  Ref,
  ServerFrame,
  SnapshotFrame,
  SubscriptionResultFrame,
  UnsubscribedFrame,
} from '@switchyard/protocol';
export { acquireChannel } from './lease.js';
export type { ChannelLease } from './lease.js';
export { TERMINAL_JOB_STATUSES, applyJobSnapshot, followJob, initialJobState, isTerminal, normaliseProgress, reduceJob } from './jobs.js';
export type { JobFailure, JobFollower, JobRetry, JobStall, JobState, JobStatus } from './jobs.js';
export type { WebSocketCloseEvent, WebSocketConstructor, WebSocketLike, WebSocketMessageEvent } from './transport.js';
