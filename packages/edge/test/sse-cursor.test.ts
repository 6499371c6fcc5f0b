import { describe, expect, it } from 'vitest';
import { CursorError, MAX_CURSOR_LENGTH, StreamCursor, channelTag, decodeCursor, epochTag } from '../src/sse-cursor.js';

describe('SSE cursor', () => {
  it('round-trips every channel’s epoch and seq', () => {
    const cursor = new StreamCursor(['news', 'job:j-1', 'a/b@c']);
    cursor.set('news', 'e1', 41);
    cursor.set('a/b@c', 'e2', 0);
    cursor.advance('news', 42);
    const decoded = decodeCursor(cursor.encode());
    expect(decoded.get(channelTag('news'))).toEqual({ epochTag: epochTag('e1'), seq: 42 });
    expect(decoded.get(channelTag('a/b@c'))).toEqual({ epochTag: epochTag('e2'), seq: 0 });
    // A channel without a position yet is left out (it starts fresh on resume).
    expect(decoded.has(channelTag('job:j-1'))).toBe(false);
    expect(cursor.position('news')).toEqual({ epoch: 'e1', seq: 42 });
  });

  it('stays compact and header-safe for 16 channels of 200 odd characters', () => {
    const channels = Array.from({ length: 16 }, (_, i) => `${i}:` + 'a/b@c.d-e_f:'.repeat(17).slice(0, 197));
    const cursor = new StreamCursor(channels);
    channels.forEach((c, i) => cursor.set(c, 'AbCdEfGh', 1_000_000 + i));
    const text = cursor.encode();
    expect(text.length).toBeLessThan(400);
    expect(text).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(decodeCursor(text).size).toBe(16);
  });

  it('moves with each event and caches between moves', () => {
    const cursor = new StreamCursor(['x']);
    cursor.set('x', 'e', 1);
    const one = cursor.encode();
    expect(cursor.encode()).toBe(one);
    cursor.advance('x', 2);
    expect(cursor.encode()).not.toBe(one);
    // An advance before the channel has an epoch, or of a channel not in the stream, changes nothing.
    const other = new StreamCursor(['y']);
    other.advance('y', 5);
    other.advance('z', 5);
    expect(other.encode()).toBe('1');
  });

  it('refuses what it did not make', () => {
    for (const bad of ['', 'garbage', '2.AAAAAAAABBBBBB1', '1.short', '1.AAAAAAAABBBBBB', '1.AAAAAAAABBBBBB!', '1.AAAAAAAABBBBBBzzzzzzzzzzzzzzzz', 'x'.repeat(MAX_CURSOR_LENGTH + 1)]) {
      expect(() => decodeCursor(bad), bad).toThrow(CursorError);
    }
    expect(decodeCursor('1').size).toBe(0);
  });
});
