import { describe, expect, it } from 'vitest';
import { refreshDelay, tokenExpiry } from '../src/token.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const jwt = (claims: unknown) => `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.signature`;

describe('tokenExpiry', () => {
  it('reads exp from the payload, including base64url characters and UTF-8', () => {
    expect(tokenExpiry(jwt({ sub: 'ålice→?>>', exp: 1_900_000_000 }))).toBe(1_900_000_000);
    expect(tokenExpiry(jwt({ sub: '~~~???', exp: 1234.5 }))).toBe(1234.5);
  });

  it('is undefined for tokens without a numeric exp or that are not JWTs', () => {
    for (const token of ['', 'abc', 'a.b.c', `x.${b64({ sub: 'a' })}.y`, `x.${b64({ exp: '123' })}.y`, `x.${b64([1])}.y`, 'x..y']) {
      expect(tokenExpiry(token), token).toBeUndefined();
    }
  });
});

describe('refreshDelay', () => {
  const now = 1_000_000_000_000;
  it('refreshes 30 s before a long-lived token expires', () => {
    expect(refreshDelay(now / 1000 + 3600, now)).toBe(3600_000 - 30_000);
  });
  it('keeps a quarter of a short lifetime in hand', () => {
    expect(refreshDelay(now / 1000 + 4, now)).toBe(3000);
    expect(refreshDelay(now / 1000 + 60, now, 30_000)).toBe(45_000);
  });
  it('is due at once for an expired token', () => {
    expect(refreshDelay(now / 1000 - 10, now)).toBe(0);
    expect(refreshDelay(now / 1000, now)).toBe(0);
  });
});
