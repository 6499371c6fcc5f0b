import { describe, expect, it } from 'vitest';
import { BoundedQueue } from '../src/queue.js';

describe('BoundedQueue', () => {
  it('keeps order and refuses past its limit without dropping what it holds', () => {
    const q = new BoundedQueue<string>(3);
    expect(['a', 'b', 'c'].map((x) => q.offer(x))).toEqual([true, true, true]);
    expect(q.offer('d')).toBe(false);
    expect(q.size).toBe(3);
    expect(q.drain()).toEqual(['a', 'b', 'c']);
    expect(q.size).toBe(0);
    expect(q.offer('e')).toBe(true);
    expect(q.drain()).toEqual(['e']);
  });

  it('frees a slot when an item is removed (a request that timed out)', () => {
    const q = new BoundedQueue<{ id: number }>(2);
    const a = { id: 1 };
    const b = { id: 2 };
    q.offer(a);
    q.offer(b);
    expect(q.offer({ id: 3 })).toBe(false);
    expect(q.remove(a)).toBe(true);
    expect(q.remove(a)).toBe(false);
    const c = { id: 4 };
    expect(q.offer(c)).toBe(true);
    expect(q.drain()).toEqual([b, c]);
  });

  it('a zero limit queues nothing; a bad limit is refused', () => {
    expect(new BoundedQueue(0).offer(1)).toBe(false);
    expect(() => new BoundedQueue(-1)).toThrow(RangeError);
    expect(() => new BoundedQueue(1.5)).toThrow(RangeError);
  });
});
