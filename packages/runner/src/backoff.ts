export interface BackoffOptions {
  /** BASE_RETRY_DELAY, in seconds (fractions allowed). */
  baseS: number;
  /**
   * Longest delay, in seconds.
   * @default 3600
   */
  maxS?: number;
  /**
   * Spread around the nominal delay: 0.2 draws from ±20 %.
   * @default 0.2
   */
  jitter?: number;
  /** A number in [0, 1); Math.random by default (tests pass their own). */
  random?: () => number;
}

export const DEFAULT_MAX_RETRY_DELAY_S = 3600;
export const DEFAULT_RETRY_JITTER = 0.2;

/**
 * Delay before retry number `retry` (1 for the first retry): BASE_RETRY_DELAY × 2^(retry-1)
 * seconds — BASE, 2×BASE, 4×BASE, ... — capped at `maxS`, then spread by ±jitter so that jobs
 * that failed together (a GPU node rebooting) do not all come back at the same instant.
 */
export function retryDelayMs(retry: number, options: BackoffOptions): number {
  const exponent = Math.max(0, Math.floor(retry) - 1);
  const maxMs = (options.maxS ?? DEFAULT_MAX_RETRY_DELAY_S) * 1000;
  const nominal = Math.min(options.baseS * 1000 * 2 ** Math.min(exponent, 30), maxMs);
  const jitter = Math.min(Math.max(options.jitter ?? DEFAULT_RETRY_JITTER, 0), 1);
  const r = (options.random ?? Math.random)();
  return Math.max(0, Math.round(nominal * (1 + jitter * (2 * r - 1))));
}
