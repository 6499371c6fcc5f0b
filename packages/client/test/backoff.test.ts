import { describe, expect, it } from 'vitest';
import { decideReconnect, fullJitterDelay, RATE_LIMITED_MIN_DELAY_MS, type BackoffOptions, type CloseInfo } from '../src/backoff.js';

const opts: BackoffOptions = { initialDelayMs: 100, maxDelayMs: 2000, factor: 2 };
const withRefresh = { ...opts, canRefreshToken: true };
const close = (extra: Partial<CloseInfo>): CloseInfo => ({ code: 1006, reason: '', wasConnected: true, ...extra });

describe('fullJitterDelay', () => {
  it('draws from [0, min(cap, initial × factor^attempt)]', () => {
    // random() at its extremes gives the bounds of the range.
    const top = () => 0.999_999_999;
    const bottom = () => 0;
    expect([0, 1, 2, 3, 4, 5, 6].map((a) => fullJitterDelay(a, opts, top))).toEqual([100, 200, 400, 800, 1600, 2000, 2000]);
    for (let a = 0; a < 10; a++) expect(fullJitterDelay(a, opts, bottom)).toBe(0);
    expect(fullJitterDelay(3, opts, () => 0.5)).toBe(400);
  });

  it('stays within the cap for huge attempt numbers and never goes negative', () => {
    for (const attempt of [31, 32, 100, 10_000, Number.MAX_SAFE_INTEGER, -5]) {
      const d = fullJitterDelay(attempt, opts, () => 0.999_999);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(2000);
    }
  });

  it('spreads delays over the whole range (full jitter, not equal jitter)', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const draws = Array.from({ length: 2000 }, () => fullJitterDelay(4, opts, random));
    expect(Math.min(...draws)).toBeLessThan(160);
    expect(Math.max(...draws)).toBeGreaterThan(1440);
    expect(draws.every((d) => d >= 0 && d <= 1600)).toBe(true);
  });
});

describe('decideReconnect', () => {
  it('comes back at once after a drain (1012), not counted as a failure', () => {
    expect(decideReconnect(close({ code: 1012 }), 7, withRefresh)).toEqual({ action: 'retry', delayMs: 0, countsAsFailure: false });
  });

  it('honours reconnect.after_ms from the server over any backoff', () => {
    expect(decideReconnect(close({ code: 1012, reconnectAfterMs: 731 }), 9, withRefresh)).toEqual({ action: 'retry', delayMs: 731, countsAsFailure: false });
  });

  it('does not retry a refused token (4001 after auth_error)', () => {
    const d = decideReconnect(close({ code: 4001, authError: { code: 'bad_signature', error: 'signature verification failed' }, wasConnected: false }), 0, withRefresh);
    expect(d).toMatchObject({ action: 'fail', why: 'auth_failed', detail: 'bad_signature' });
    expect(decideReconnect(close({ code: 4001, wasConnected: false }), 0, withRefresh)).toMatchObject({ action: 'fail', why: 'auth_failed' });
  });

  it('retries auth errors that say nothing about the token', () => {
    for (const code of ['auth_timeout', 'key_unavailable', 'too_many_connections']) {
      const d = decideReconnect(close({ code: code === 'too_many_connections' ? 4009 : 4001, authError: { code, error: code } }), 2, withRefresh, () => 0.5);
      expect(d, code).toEqual({ action: 'retry', delayMs: 200, countsAsFailure: true });
    }
  });

  it('after auth_expired: retries at once with a token provider, fails with a fixed token', () => {
    expect(decideReconnect(close({ code: 4001, authExpired: true }), 3, withRefresh)).toEqual({ action: 'retry', delayMs: 0, countsAsFailure: true });
    expect(decideReconnect(close({ code: 4001, authExpired: true }), 0, { ...opts, canRefreshToken: false })).toMatchObject({ action: 'fail', why: 'auth_expired' });
  });

  it('does not fight over a session taken over by another connection (4011)', () => {
    expect(decideReconnect(close({ code: 4011, reason: 'session_resumed_elsewhere' }), 0, withRefresh)).toMatchObject({ action: 'fail', why: 'session_taken_over' });
  });

  it('waits at least a second after rate limiting (4008)', () => {
    expect(decideReconnect(close({ code: 4008 }), 0, withRefresh, () => 0)).toEqual({ action: 'retry', delayMs: RATE_LIMITED_MIN_DELAY_MS, countsAsFailure: true });
    expect(decideReconnect(close({ code: 4008 }), 20, { ...withRefresh, maxDelayMs: 5000 }, () => 0.999_999)).toMatchObject({ delayMs: 5000 });
  });

  it('resumes a slow consumer (4010) at once the first time, then backs off', () => {
    expect(decideReconnect(close({ code: 4010 }), 0, withRefresh, () => 0.9)).toEqual({ action: 'retry', delayMs: 0, countsAsFailure: true });
    expect(decideReconnect(close({ code: 4010 }), 3, withRefresh, () => 0.5)).toEqual({ action: 'retry', delayMs: 400, countsAsFailure: true });
  });

  it('backs off on lost connections and other closes', () => {
    for (const code of [1000, 1001, 1006, 1009, 1011, 4000]) {
      expect(decideReconnect(close({ code }), 2, withRefresh, () => 0.5), String(code)).toEqual({ action: 'retry', delayMs: 200, countsAsFailure: true });
    }
  });
});
