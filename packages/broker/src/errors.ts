import { SwitchyardError } from '@switchyard/protocol';

/** The broker could not reach its backing store; retriable once it is back. */
export class BrokerUnavailableError extends SwitchyardError<'unavailable'> {
  override readonly name = 'BrokerUnavailableError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('unavailable', message, { ...options, retriable: true });
  }
}
