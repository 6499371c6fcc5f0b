/**
 * Reading a JWT's `exp` (without verifying it: that is the server's job) to know when to
 * ask the token provider for a fresh one.
 */

/** Refresh this long before `exp` ... */
export const DEFAULT_REFRESH_MARGIN_MS = 30_000;
/** ... but never more than this share of the token's remaining lifetime (short-lived tokens). */
const MAX_MARGIN_SHARE = 0.25;
/** setTimeout's ceiling; longer delays are re-armed. */
export const MAX_TIMER_MS = 2_147_483_647;

/** The `exp` claim (seconds since the epoch) of a JWT, or undefined when it has none or is not a JWT. */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined || payload === '') return undefined;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const binary = atob(padded);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds from `nowMs` until a token expiring at `expSeconds` should be refreshed:
 * `marginMs` before expiry, or a quarter of the remaining lifetime when that is shorter.
 * Zero when it is already due.
 */
export function refreshDelay(expSeconds: number, nowMs: number, marginMs: number = DEFAULT_REFRESH_MARGIN_MS): number {
  const remaining = expSeconds * 1000 - nowMs;
  if (remaining <= 0) return 0;
  const margin = Math.min(marginMs, remaining * MAX_MARGIN_SHARE);
  return Math.max(0, Math.floor(remaining - margin));
}
