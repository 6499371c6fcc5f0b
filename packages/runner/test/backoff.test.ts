import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../src/index.js';

describe('retryDelayMs', () => {
  const mid = () => 0.5;

  it('doubles from BASE_RETRY_DELAY: base, 2×base, 4×base (no jitter at the midpoint)', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, { baseS: 60, random: mid }))).toEqual([60_000, 120_000, 240_000, 480_000]);
  });

  it('takes fractional seconds', () => {
    expect(retryDelayMs(1, { baseS: 0.05, random: mid })).toBe(50);
    expect(retryDelayMs(3, { baseS: 0.25, random: mid })).toBe(1000);
  });

  it('spreads by ±jitter around the nominal delay', () => {
    expect(retryDelayMs(1, { baseS: 10, random: () => 0 })).toBe(8000);
    expect(retryDelayMs(1, { baseS: 10, random: () => 0.999999 })).toBe(12_000);
    expect(retryDelayMs(1, { baseS: 10, jitter: 0, random: () => 0 })).toBe(10_000);
    for (let i = 0; i < 200; i++) {
      const d = retryDelayMs(2, { baseS: 1 });
      expect(d).toBeGreaterThanOrEqual(1600);
      expect(d).toBeLessThanOrEqual(2400);
    }
  });

  it('caps at MAX_RETRY_DELAY_S, even for absurd retry numbers', () => {
    expect(retryDelayMs(40, { baseS: 60, maxS: 3600, random: mid })).toBe(3_600_000);
    expect(retryDelayMs(10_000, { baseS: 1, maxS: 5, random: mid })).toBe(5000);
    expect(Number.isFinite(retryDelayMs(Number.MAX_SAFE_INTEGER, { baseS: 1, random: mid }))).toBe(true);
  });

  it('never goes negative, and treats retry 0 like retry 1', () => {
    expect(retryDelayMs(0, { baseS: 1, random: mid })).toBe(1000);
    expect(retryDelayMs(1, { baseS: 0, random: () => 0 })).toBe(0);
  });
});
