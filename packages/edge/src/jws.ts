import { constants, createHmac, timingSafeEqual, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AuthError } from './errors.js';

/**
 * Synchronous JWS (compact) verification with node:crypto, for keys that are already in
 * hand (HS256 secret, PEM key, a cached JWKS key). It exists because a WebSocket upgrade
 * that completes asynchronously trips a uWebSockets bug (uNetworking/uWebSockets#1928,
 * fixed upstream after the build this project can use): verifying inside the upgrade
 * handler keeps the upgrade synchronous. It mirrors jose's checks and error mapping
 * exactly (jose still fetches key sets and signs tokens); the auth test suite runs every
 * case through both the upgrade and the first-frame path.
 */

export type VerifyKey = { kind: 'secret'; secret: Buffer } | { kind: 'public'; key: KeyObject };

export interface ClaimRules {
  algorithms: readonly string[];
  clockToleranceS: number;
  issuer?: string;
  audience?: string;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodeJson(part: string, what: string): Record<string, unknown> {
  if (!B64URL.test(part)) throw new AuthError('token_malformed', `token rejected: ${what} is not base64url`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new AuthError('token_malformed', `token rejected: ${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AuthError('token_malformed', `token rejected: ${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** The protected header, parsed (for `kid` lookup before the key is chosen). */
export function readHeader(token: string): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new AuthError('token_malformed', 'token rejected: not a compact JWS');
  return decodeJson(parts[0]!, 'header');
}

function digestOf(alg: string): string {
  return `sha${alg.slice(2)}`;
}

function signatureValid(alg: string, input: Buffer, signature: Buffer, key: VerifyKey): boolean {
  if (alg.startsWith('HS')) {
    if (key.kind !== 'secret') return false;
    const mac = createHmac(digestOf(alg), key.secret).update(input).digest();
    return mac.length === signature.length && timingSafeEqual(mac, signature);
  }
  if (key.kind !== 'public') return false;
  const k = key.key;
  try {
    if (alg.startsWith('RS')) return cryptoVerify(digestOf(alg), input, k, signature);
    if (alg.startsWith('PS')) {
      return cryptoVerify(digestOf(alg), input, { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
    }
    if (alg.startsWith('ES')) return cryptoVerify(digestOf(alg), input, { key: k, dsaEncoding: 'ieee-p1363' }, signature);
    if (alg === 'EdDSA' || alg === 'Ed25519') return cryptoVerify(null, input, k, signature);
  } catch {
    return false;
  }
  return false;
}

function numericDate(claims: Record<string, unknown>, claim: string): number | undefined {
  const value = claims[claim];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new AuthError(claim === 'nbf' ? 'token_not_yet_valid' : 'bad_claims', `claim "${claim}" rejected: must be a number`);
  }
  return value;
}

/** Verifies signature and registered claims; returns the payload. Throws AuthError. */
export function verifyJwsSync(token: string, key: VerifyKey, rules: ClaimRules): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new AuthError('token_malformed', 'token rejected: not a compact JWS');
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJson(h, 'header');
  const alg = header['alg'];
  if (typeof alg !== 'string') throw new AuthError('token_malformed', 'token rejected: header has no "alg"');
  if (header['crit'] !== undefined) throw new AuthError('token_malformed', 'token rejected: unsupported "crit" header');
  if (!rules.algorithms.includes(alg)) throw new AuthError('bad_algorithm', 'token algorithm not allowed');
  if (!B64URL.test(s) || !B64URL.test(p)) throw new AuthError('token_malformed', 'token rejected: not base64url');
  if (!signatureValid(alg, Buffer.from(`${h}.${p}`), Buffer.from(s, 'base64url'), key)) {
    throw new AuthError('bad_signature', 'signature verification failed');
  }
  const claims = decodeJson(p, 'payload');
  const required = ['exp', 'sub'];
  if (rules.audience !== undefined) required.push('aud');
  if (rules.issuer !== undefined) required.push('iss');
  for (const claim of required) {
    if (!Object.hasOwn(claims, claim)) throw new AuthError('bad_claims', `claim "${claim}" rejected: missing required "${claim}" claim`);
  }
  if (rules.issuer !== undefined && claims['iss'] !== rules.issuer) throw new AuthError('bad_claims', 'claim "iss" rejected: unexpected "iss" claim value');
  if (rules.audience !== undefined) {
    const aud = claims['aud'];
    const ok = typeof aud === 'string' ? aud === rules.audience : Array.isArray(aud) && aud.includes(rules.audience);
    if (!ok) throw new AuthError('bad_claims', 'claim "aud" rejected: unexpected "aud" claim value');
  }
  const now = Math.floor(Date.now() / 1000);
  numericDate(claims, 'iat');
  const nbf = numericDate(claims, 'nbf');
  if (nbf !== undefined && nbf > now + rules.clockToleranceS) throw new AuthError('token_not_yet_valid', 'token not yet valid (nbf)');
  const exp = numericDate(claims, 'exp');
  if (exp !== undefined && exp <= now - rules.clockToleranceS) throw new AuthError('token_expired', 'token expired');
  return claims;
}
