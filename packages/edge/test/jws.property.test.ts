import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AuthError } from '../src/errors.js';
import { verifyJwsSync, type ClaimRules, type VerifyKey } from '../src/jws.js';

/** Property-based checks of the synchronous token verifier (jws.ts). */

const SECRET = Buffer.from('property-test-secret-that-is-long-enough!!');
const KEY: VerifyKey = { kind: 'secret', secret: SECRET };
const RULES: ClaimRules = { algorithms: ['HS256'], clockToleranceS: 30 };

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function sign(header: unknown, payload: unknown, secret: Buffer = SECRET): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** Runs the verifier; anything it throws must be an AuthError. */
function outcome(token: string, rules: ClaimRules = RULES): { ok: true; claims: Record<string, unknown> } | { ok: false; reason: string } {
  try {
    return { ok: true, claims: verifyJwsSync(token, KEY, rules) };
  } catch (err) {
    expect(err).toBeInstanceOf(AuthError);
    return { ok: false, reason: (err as AuthError).reason };
  }
}

const now = () => Math.floor(Date.now() / 1000);
const claimsArb = fc.record({
  sub: fc.string({ minLength: 1, maxLength: 40 }),
  exp: fc.integer({ min: 120, max: 86_400 }).map((d) => now() + d),
  permissions: fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }),
  extra: fc.jsonValue({ maxDepth: 3 }),
});

describe('verifyJwsSync (properties)', () => {
  it('throws nothing but AuthError, whatever the token', () => {
    const tokens = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.tuple(fc.string(), fc.string(), fc.string()).map((parts) => parts.join('.')),
      fc.tuple(fc.jsonValue(), fc.jsonValue(), fc.string()).map(([h, p, s]) => `${b64(h)}.${b64(p)}.${b64(s)}`),
      fc.tuple(fc.record({ alg: fc.constantFrom('HS256', 'none', 'RS256', 'HS512', 'ES256'), typ: fc.constant('JWT'), crit: fc.option(fc.array(fc.string()), { nil: undefined }) }), fc.jsonValue()).map(([h, p]) => sign(h, p)),
    );
    fc.assert(fc.property(tokens, (t) => void outcome(t)), { numRuns: 3000 });
  });

  it('a well-signed token with `sub` and a future `exp` verifies to exactly its claims', () => {
    fc.assert(
      fc.property(claimsArb, (claims) => {
        expect(outcome(sign({ alg: 'HS256', typ: 'JWT' }, claims))).toEqual({ ok: true, claims: JSON.parse(JSON.stringify(claims)) });
      }),
    );
  });

  it('any change to the header or payload of a signed token is refused', () => {
    fc.assert(
      fc.property(claimsArb, fc.nat(), fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), (claims, at, ch) => {
        const token = sign({ alg: 'HS256', typ: 'JWT' }, claims);
        const signed = token.lastIndexOf('.');
        const i = at % signed;
        fc.pre(token[i] !== '.' && token[i] !== ch);
        const tampered = `${token.slice(0, i)}${ch}${token.slice(i + 1)}`;
        expect(outcome(tampered).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('another secret, `alg: none` or an algorithm not allowed is refused, whatever the claims', () => {
    fc.assert(
      fc.property(claimsArb, fc.uint8Array({ minLength: 32, maxLength: 64 }), (claims, other) => {
        fc.pre(!Buffer.from(other).equals(SECRET));
        expect(outcome(sign({ alg: 'HS256' }, claims, Buffer.from(other)))).toEqual({ ok: false, reason: 'bad_signature' });
        expect(outcome(`${b64({ alg: 'none' })}.${b64(claims)}.`)).toEqual({ ok: false, reason: 'bad_algorithm' });
        expect(outcome(sign({ alg: 'HS512' }, claims))).toEqual({ ok: false, reason: 'bad_algorithm' });
      }),
    );
  });

  it('an `exp` in the past beyond the tolerance is token_expired; missing `sub` or `exp` is bad_claims', () => {
    fc.assert(
      fc.property(claimsArb, fc.integer({ min: 31, max: 10_000_000 }), (claims, ago) => {
        expect(outcome(sign({ alg: 'HS256' }, { ...claims, exp: now() - ago }))).toEqual({ ok: false, reason: 'token_expired' });
        const { sub: _sub, ...noSub } = claims;
        const { exp: _exp, ...noExp } = claims;
        expect(outcome(sign({ alg: 'HS256' }, noSub))).toEqual({ ok: false, reason: 'bad_claims' });
        expect(outcome(sign({ alg: 'HS256' }, noExp))).toEqual({ ok: false, reason: 'bad_claims' });
      }),
    );
  });
});
