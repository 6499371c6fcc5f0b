import { describe, expect, it } from 'vitest';
import { UserIndex } from '../src/user-index.js';

describe('UserIndex: connections by user', () => {
  it('holds one connection without a Set, several in one, and back', () => {
    const index = new UserIndex<string>();
    expect([...index.of('u')]).toEqual([]);
    index.add('u', 'c1');
    index.add('u', 'c1'); // the same connection twice is one
    expect(index.count('u')).toBe(1);
    expect([...index.of('u')]).toEqual(['c1']);
    index.add('u', 'c2');
    index.add('u', 'c3');
    index.add('v', 'c4');
    expect(index.count('u')).toBe(3);
    expect([...index.of('u')].sort()).toEqual(['c1', 'c2', 'c3']);
    expect(index.size).toBe(2);
    index.remove('u', 'c2');
    index.remove('u', 'c1');
    expect([...index.of('u')]).toEqual(['c3']);
    index.remove('u', 'c9'); // not there: nothing changes
    expect(index.count('u')).toBe(1);
    index.remove('u', 'c3');
    expect(index.count('u')).toBe(0);
    expect(index.size).toBe(1);
    index.remove('v', 'other');
    expect([...index.of('v')]).toEqual(['c4']);
    index.remove('v', 'c4');
    expect(index.size).toBe(0);
    index.remove('nobody', 'c1');
    expect(index.size).toBe(0);
  });
});
