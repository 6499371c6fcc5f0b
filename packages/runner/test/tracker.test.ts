import { describe, expect, it } from 'vitest';
import { PartitionTracker } from '../src/index.js';

describe('PartitionTracker', () => {
  it('commits past a message once it is done', () => {
    const t = new PartitionTracker();
    t.add(5n);
    expect(t.done(5n)).toBe(6n);
  });

  it('never commits past a job still running, whatever order jobs end in', () => {
    const t = new PartitionTracker();
    for (const o of [10n, 11n, 12n, 13n]) t.add(o);
    expect(t.done(12n)).toBeUndefined(); // 10 still runs
    expect(t.done(11n)).toBeUndefined();
    expect(t.done(10n)).toBe(13n); // 13 still runs
    t.add(14n);
    expect(t.done(14n)).toBeUndefined();
    expect(t.done(13n)).toBe(15n);
    expect(t.pending).toBe(0);
  });

  it('ignores an offset it does not hold, or one acked twice', () => {
    const t = new PartitionTracker();
    t.add(1n);
    expect(t.done(7n)).toBeUndefined();
    expect(t.done(1n)).toBe(2n);
    expect(t.done(1n)).toBeUndefined();
  });

  it('handles offsets beyond 2^53', () => {
    const t = new PartitionTracker();
    const big = 2n ** 60n;
    t.add(big);
    expect(t.done(big)).toBe(big + 1n);
  });
});
