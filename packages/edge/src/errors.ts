import { SwitchyardError } from '@switchyard/protocol';

/** The one error base with stable codes, shared by every server package. */
export { SwitchyardError };

/** A token that cannot be accepted. `reason` is the stable code sent in `auth_error`. */
export class AuthError extends SwitchyardError {
  override readonly name = 'AuthError';
  constructor(
    readonly reason: AuthFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(reason, message, options);
  }
}

export type AuthFailure =
  | 'token_missing'
  | 'token_malformed'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'bad_signature'
  | 'bad_algorithm'
  | 'bad_claims'
  | 'unknown_key'
  | 'key_unavailable'
  | 'subject_changed';

/** The bundled uWebSockets.js fell back to its JavaScript shim: refuse to run on it. */
export class UwsFallbackError extends SwitchyardError {
  override readonly name = 'UwsFallbackError';
  constructor(detail: string) {
    super(
      'uws_fallback',
      'uWebSockets.js did not load its native binary and would fall back to a slow `ws` shim; ' +
        'refusing to start. Use Node 20 (ABI 115) on linux-x64/arm64 or macOS, or point the ' +
        '"uWebSockets.js" dependency at an official release (see README). Detail: ' +
        detail,
    );
  }
}
