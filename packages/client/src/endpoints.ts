/**
 * Where and with what the next connection attempt goes: the URL (fixed, a list walked on
 * every reconnect, or a provider) and the token (fixed or a provider), with the checks that
 * turn a provider's bad answer into a typed error.
 */
import { InvalidArgumentError, SwitchyardError } from './errors.js';
import type { ResolvedOptions, TokenProvider, UrlProvider } from './options.js';

export class Endpoints {
  readonly #o: ResolvedOptions;
  #urlIndex = 0;
  #connects = 0;
  /** The URL of the last attempt that got as far as opening a socket. */
  lastUrl: string | undefined;

  constructor(options: ResolvedOptions) {
    this.#o = options;
  }

  /** The next URL of a fixed one or a list (moving to the next on every reconnect); undefined for a provider. */
  listedUrl(): string | undefined {
    const url = this.#o.url;
    if (typeof url === 'string') return url;
    if (typeof url === 'function') return undefined;
    if (this.#connects++ > 0) this.#urlIndex = (this.#urlIndex + 1) % url.length;
    return url[this.#urlIndex]!;
  }

  /** Asks the URL provider; `attempt` counts consecutive failures. */
  async providedUrl(attempt: number): Promise<string> {
    const provider = this.#o.url as UrlProvider;
    const chosen = await provider({ attempt, previous: this.lastUrl });
    if (typeof chosen !== 'string' || !/^wss?:\/\//.test(chosen)) throw new InvalidArgumentError('url', `provider returned "${String(chosen)}", not a ws:// URL`);
    return chosen;
  }

  /** The first URL of a fixed one or a list, without moving along the list; undefined for a provider. */
  listedUrlPeek(): string | undefined {
    const url = this.#o.url;
    return typeof url === 'string' ? url : typeof url === 'function' ? undefined : url[this.#urlIndex];
  }

  async token(reason: 'connect' | 'refresh'): Promise<string> {
    const t = this.#o.token;
    if (typeof t === 'string') return t;
    let token: string;
    try {
      token = await (t as TokenProvider)({ reason });
    } catch (err) {
      throw new SwitchyardError('provider_failed', `the token provider failed (${reason}): ${(err as Error)?.message ?? String(err)}`, { retriable: true, cause: err });
    }
    if (typeof token !== 'string' || token === '') throw new SwitchyardError('provider_failed', `the token provider returned ${JSON.stringify(token)}, not a JWT`, { retriable: true });
    return token;
  }
}
