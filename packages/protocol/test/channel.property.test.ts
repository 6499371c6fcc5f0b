import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidChannel, matchGlob, matchesAny } from '../src/index.js';

/** Property-based checks of channel names and `*` patterns against a reference regex. */

function reference(pattern: string, subject: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 's').test(subject);
}

// A small alphabet so that patterns and subjects actually overlap.
const small = fc.string({ unit: fc.constantFrom('a', 'b', ':', '.', '-'), maxLength: 12 });
const pattern = fc.string({ unit: fc.constantFrom('a', 'b', ':', '.', '-', '*'), maxLength: 10 });
const channel = fc.stringMatching(/^[A-Za-z0-9:_\-.@/]{1,200}$/);

describe('matchGlob (properties)', () => {
  it('agrees with a regular-expression reference', () => {
    fc.assert(fc.property(pattern, small, (p, s) => {
        expect(matchGlob(p, s)).toBe(reference(p, s));
      }), { numRuns: 5000 });
  });

  it('`*` matches every channel; a pattern without `*` matches only itself', () => {
    fc.assert(
      fc.property(channel, channel, (a, b) => {
        expect(matchGlob('*', a)).toBe(true);
        expect(matchGlob(a, a)).toBe(true);
        expect(matchGlob(a, b)).toBe(a === b);
      }),
    );
  });

  it('a prefix pattern matches exactly the channels with that prefix', () => {
    fc.assert(fc.property(channel, channel, (prefix, c) => {
        expect(matchGlob(`${prefix}*`, c)).toBe(c.startsWith(prefix));
      }));
  });

  it('stays fast on hostile patterns (no exponential backtracking)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 200 }), (stars, length) => {
        const hostile = `${'*a'.repeat(stars)}*b`;
        const started = performance.now();
        expect(matchesAny([hostile], 'a'.repeat(length))).toBe(false);
        expect(performance.now() - started).toBeLessThan(50);
      }),
      { numRuns: 200 },
    );
  });
});

describe('isValidChannel (properties)', () => {
  it('accepts exactly 1–200 characters of A-Z a-z 0-9 : _ - . @ /', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 220 }), (s) => {
        expect(isValidChannel(s)).toBe(/^[A-Za-z0-9:_\-.@/]{1,200}$/.test(s));
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(channel, (c) => {
        expect(isValidChannel(c)).toBe(true);
      }),
    );
  });
});
