/** The broker could not reach its backing store; retriable once it is back. */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
  readonly code = 'unavailable';
  readonly retriable = true;
}
