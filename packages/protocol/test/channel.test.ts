import { describe, expect, it } from 'vitest';
import { MAX_CHANNEL_LENGTH, isValidChannel, jobChannel, matchGlob, matchesAny } from '../src/index.js';

describe('isValidChannel', () => {
  it('accepts every allowed character', () => {
    expect(isValidChannel('ABCXYZabcxyz0189:_-.@/')).toBe(true);
    for (const name of ['a', 'dashboard', 'user:alice', 'job:job-123', 'a.b@c/d_e-f:g', '0', ':', '/', '@']) {
      expect(isValidChannel(name), name).toBe(true);
    }
  });

  it('accepts 1 to 200 characters and nothing longer or empty', () => {
    expect(MAX_CHANNEL_LENGTH).toBe(200);
    expect(isValidChannel('')).toBe(false);
    expect(isValidChannel('x')).toBe(true);
    expect(isValidChannel('x'.repeat(200))).toBe(true);
    expect(isValidChannel('x'.repeat(201))).toBe(false);
  });

  it('refuses characters outside the set', () => {
    for (const name of ['a b', 'a*', 'a?', 'a#b', 'a\n', '\na', 'a\tb', 'é', 'a"b', 'a\\b', 'a,b', 'a+b', 'a%20', 'a\u0000', '日本']) {
      expect(isValidChannel(name), JSON.stringify(name)).toBe(false);
    }
  });

  it('refuses non-strings', () => {
    for (const value of [undefined, null, 1, true, ['a'], { a: 1 }]) {
      expect(isValidChannel(value), JSON.stringify(value)).toBe(false);
    }
  });
});

describe('matchGlob', () => {
  it('matches literals exactly', () => {
    expect(matchGlob('dashboard', 'dashboard')).toBe(true);
    expect(matchGlob('dashboard', 'dashboards')).toBe(false);
    expect(matchGlob('dashboard', 'dashboar')).toBe(false);
    expect(matchGlob('dashboard', 'Dashboard')).toBe(false);
  });

  it('lets * match any run of characters, including none and including ":"', () => {
    expect(matchGlob('job:*', 'job:123')).toBe(true);
    expect(matchGlob('job:*', 'job:')).toBe(true);
    expect(matchGlob('job:*', 'job:a:b:c')).toBe(true);
    expect(matchGlob('job:*', 'job')).toBe(false);
    expect(matchGlob('job:*', 'jobs:1')).toBe(false);
    expect(matchGlob('*:status', 'node:7:status')).toBe(true);
    expect(matchGlob('*:status', 'node:7:statuses')).toBe(false);
    expect(matchGlob('a*c', 'ac')).toBe(true);
    expect(matchGlob('a*c', 'abbbc')).toBe(true);
    expect(matchGlob('a*c', 'abbbcd')).toBe(false);
  });

  it('handles the empty pattern and the empty subject', () => {
    expect(matchGlob('', '')).toBe(true);
    expect(matchGlob('', 'a')).toBe(false);
    expect(matchGlob('a', '')).toBe(false);
    expect(matchGlob('*', '')).toBe(true);
    expect(matchGlob('**', '')).toBe(true);
    expect(matchGlob('*a', '')).toBe(false);
  });

  it('handles several stars, adjacent or apart', () => {
    expect(matchGlob('*', 'anything:at/all')).toBe(true);
    expect(matchGlob('***', 'abc')).toBe(true);
    expect(matchGlob('a**b', 'ab')).toBe(true);
    expect(matchGlob('a**b', 'axxb')).toBe(true);
    expect(matchGlob('*a*b*', 'xxaxxbxx')).toBe(true);
    expect(matchGlob('*a*b*', 'xxbxxaxx')).toBe(false);
    expect(matchGlob('user:*:feed:*', 'user:alice:feed:home')).toBe(true);
    expect(matchGlob('user:*:feed:*', 'user:alice:home')).toBe(false);
    // Backtracking: the first "ab" is not the one that completes the match.
    expect(matchGlob('*ab*abc', 'xabyabxabc')).toBe(true);
    expect(matchGlob('*abc', 'ababc')).toBe(true);
    expect(matchGlob('*aab', 'aaab')).toBe(true);
  });

  it('treats every other character literally (no regex or ? semantics)', () => {
    expect(matchGlob('a.b', 'axb')).toBe(false);
    expect(matchGlob('a.b', 'a.b')).toBe(true);
    expect(matchGlob('a?b', 'axb')).toBe(false);
    expect(matchGlob('a+', 'aa')).toBe(false);
    expect(matchGlob('[ab]', 'a')).toBe(false);
  });

  it('stays fast on pathological patterns', () => {
    const subject = 'a'.repeat(200);
    const hostile = `${'*a'.repeat(50)}*b`;
    const started = performance.now();
    for (let i = 0; i < 20; i++) {
      expect(matchGlob(hostile, subject)).toBe(false);
      expect(matchGlob(`${'a*'.repeat(100)}b`, subject)).toBe(false);
    }
    // A naive recursive matcher takes astronomically long here; this one is O(pattern × subject).
    expect(performance.now() - started).toBeLessThan(1000);
    expect(matchGlob(hostile, `${subject}b`)).toBe(true);
  });
});

describe('matchesAny', () => {
  it('is true when any pattern matches and false for none or undefined', () => {
    expect(matchesAny(['news:*', 'dashboard'], 'dashboard')).toBe(true);
    expect(matchesAny(['news:*', 'dashboard'], 'news:x')).toBe(true);
    expect(matchesAny(['news:*', 'dashboard'], 'sport:x')).toBe(false);
    expect(matchesAny([], 'dashboard')).toBe(false);
    expect(matchesAny(undefined, 'dashboard')).toBe(false);
  });
});

describe('jobChannel', () => {
  it('prefixes job: and refuses ids that would not make a valid channel', () => {
    expect(jobChannel('job-123')).toBe('job:job-123');
    expect(jobChannel('')).toBeUndefined();
    expect(jobChannel('a b')).toBeUndefined();
    expect(jobChannel('x'.repeat(196))).toBe(`job:${'x'.repeat(196)}`);
    expect(jobChannel('x'.repeat(197))).toBeUndefined();
  });
});
