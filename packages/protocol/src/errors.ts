/**
 * The one error base of the server packages: every failure is a typed value with a stable
 * `code` (what programs, HTTP bodies, wire frames and logs key on) and `retriable` (whether
 * the same thing may succeed later); the message is for people. Subclasses narrow `code` to
 * their package's union (JobErrorCode, AuthFailure, ...). Wire codes are never renamed here.
 */
export class SwitchyardError<C extends string = string> extends Error {
  override name = 'SwitchyardError';
  readonly code: C;
  readonly retriable: boolean;

  constructor(code: C, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}
