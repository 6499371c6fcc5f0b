/**
 * Reconnect timing: capped exponential backoff with full jitter, and what each close code
 * means for the next attempt. Pure functions, so the policy is testable without sockets.
 */
import { CloseCode } from '@switchyard/protocol';

/** First backoff ceiling. */
export const DEFAULT_INITIAL_DELAY_MS = 250;
/** Backoff ceiling cap. */
export const DEFAULT_MAX_DELAY_MS = 15_000;
export const DEFAULT_BACKOFF_FACTOR = 2;
/** A connection that stayed up this long resets the backoff. */
export const DEFAULT_STABLE_AFTER_MS = 5_000;
/** After close 4008 (rate limited) the server's bucket needs time to refill. */
export const RATE_LIMITED_MIN_DELAY_MS = 1_000;
/** Exponents past this would only overflow; the cap has long been reached. */
const MAX_EXPONENT = 31;

export interface BackoffOptions {
  /** @default 250 */
  initialDelayMs: number;
  /** @default 15000 */
  maxDelayMs: number;
  /** @default 2 */
  factor: number;
}

/**
 * Full jitter (a uniformly random delay in [0, ceiling]) where the ceiling is
 * `min(maxDelayMs, initialDelayMs × factor^attempt)`. `attempt` counts from 0.
 */
export function fullJitterDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), MAX_EXPONENT);
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * options.factor ** exponent);
  return Math.floor(random() * (Math.floor(ceiling) + 1));
}

/** What the client knew when its socket closed. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** The `auth_error` received on this connection, if any. */
  authError?: { code?: string; error: string } | undefined;
  /** Whether the server sent `auth_expired` before closing. */
  authExpired?: boolean;
  /** `after_ms` of a `reconnect` frame received before the close. */
  reconnectAfterMs?: number | undefined;
  /** Whether the connection had authenticated. */
  wasConnected: boolean;
}

export type ReconnectDecision =
  | { action: 'retry'; delayMs: number; countsAsFailure: boolean }
  | { action: 'fail'; why: 'auth_failed' | 'auth_expired' | 'session_taken_over'; detail: string };

/** `auth_error` codes that say nothing about the token itself, so a retry may succeed. */
const TRANSIENT_AUTH_CODES = new Set(['auth_timeout', 'key_unavailable', 'too_many_connections']);

/**
 * Decides what follows a close:
 * - 1012 (draining) and a `reconnect` frame: come back after `after_ms` (0 without a frame),
 *   not counted as a failure;
 * - 4001 after `auth_error`: the token was refused — fail, unless the reason was transient;
 * - 4001 after `auth_expired`: retry at once when a token provider can give a fresh token,
 *   else fail;
 * - 4011 (another connection resumed the session): fail, do not fight over the session;
 * - 4008 (rate limited): backoff, at least a second;
 * - 4010 (slow consumer): at once for the first attempt, then backoff (the session resumes);
 * - anything else (1001, 1006, 1009, 1011, 4009, ...): backoff.
 */
export function decideReconnect(close: CloseInfo, attempt: number, options: BackoffOptions & { canRefreshToken: boolean }, random: () => number = Math.random): ReconnectDecision {
  const backoff = () => fullJitterDelay(attempt, options, random);
  if (close.code === CloseCode.SessionTakenOver) {
    return { action: 'fail', why: 'session_taken_over', detail: 'another connection resumed this session (close 4011)' };
  }
  if (close.authExpired === true) {
    if (options.canRefreshToken) return { action: 'retry', delayMs: 0, countsAsFailure: true };
    return { action: 'fail', why: 'auth_expired', detail: 'the token expired and "token" is a fixed string; pass a token provider function to refresh it' };
  }
  if (close.authError !== undefined) {
    const code = close.authError.code ?? 'unknown';
    if (TRANSIENT_AUTH_CODES.has(code)) return { action: 'retry', delayMs: backoff(), countsAsFailure: true };
    return { action: 'fail', why: 'auth_failed', detail: code };
  }
  if (close.code === CloseCode.AuthFailed) {
    return { action: 'fail', why: 'auth_failed', detail: close.reason || 'closed 4001' };
  }
  if (close.reconnectAfterMs !== undefined) {
    return { action: 'retry', delayMs: Math.max(0, Math.floor(close.reconnectAfterMs)), countsAsFailure: false };
  }
  if (close.code === CloseCode.Restart) return { action: 'retry', delayMs: 0, countsAsFailure: false };
  if (close.code === CloseCode.RateLimited) {
    return { action: 'retry', delayMs: Math.max(RATE_LIMITED_MIN_DELAY_MS, backoff()), countsAsFailure: true };
  }
  if (close.code === CloseCode.SlowConsumer && attempt === 0) return { action: 'retry', delayMs: 0, countsAsFailure: true };
  return { action: 'retry', delayMs: backoff(), countsAsFailure: true };
}
