/**
 * @switchyard/client/internal — the client's building blocks, for tests and for people
 * writing another client: no stability promise beyond the package's own use of them.
 */
export { decideReconnect, fullJitterDelay, RATE_LIMITED_MIN_DELAY_MS } from './backoff.js';
export type { BackoffOptions, CloseInfo, ReconnectDecision } from './backoff.js';
export { ChannelStream } from './stream.js';
export type { PushOutcome, ResultOutcome, SubscriptionResultInfo } from './stream.js';
export { BoundedQueue } from './queue.js';
export { refreshDelay, tokenExpiry } from './token.js';
export { parseServerFrame } from './wire.js';
export { resolveOptions } from './options.js';
export type { ResolvedOptions } from './options.js';
export { Emitter } from './emitter.js';
export { platformWebSocket, WS_OPEN } from './transport.js';
