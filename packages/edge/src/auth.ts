import { createPublicKey, type KeyObject } from 'node:crypto';
import { readHeader, verifyJwsSync, type ClaimRules, type VerifyKey } from './jws.js';
import { existsSync, readFileSync } from 'node:fs';
import { SignJWT, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { EdgeConfig } from './config.js';
import { AuthError } from './errors.js';

/** PROTOCOL.md §2: leeway for clock skew between issuer and node. */
export const CLOCK_TOLERANCE_S = 30;
const MAX_CLAIM_ITEMS = 1000;
const JWKS_CACHE_MAX_AGE_MS = 10 * 60 * 1000;
const JWKS_TIMEOUT_MS = 5000;

const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const ASYMMETRIC_ALGS = [...RSA_ALGS, 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export interface Claims {
  readonly sub: string;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
  readonly permissions: readonly string[];
  readonly channels: readonly string[];
  readonly publish: readonly string[];
  /** The `info` claim (a JSON object of at most MAX_INFO_BYTES) as JSON text, for presence; absent when larger or not an object. */
  readonly infoJson?: string;
}

/** Largest `info` claim kept for presence (PROTOCOL.md §9); a larger one is ignored. */
export const MAX_INFO_BYTES = 1024;

export interface TokenVerifier {
  verify(token: string): Promise<Claims>;
  /** Claims now, an AuthError now, or undefined when a key set must be fetched first. */
  verifySync(token: string): Claims | undefined;
}

type KeyConfig = Pick<EdgeConfig, 'jwtSecret' | 'jwtPublicKey' | 'jwksUrl' | 'jwtIssuer' | 'jwtAudience' | 'jwksCooldownMs'>;

/**
 * Builds the verifier for whichever key the node was configured with (exactly one).
 *
 * `verifySync` answers at once whenever the key is in hand — always for JWT_SECRET and
 * JWT_PUBLIC_KEY, and for JWKS when the token's key is in the fresh cached set — so the
 * WebSocket upgrade can stay synchronous (see jws.ts for why). It returns undefined only
 * when a key set must be fetched; `verify` then lets jose fetch it (cooldown, timeouts).
 */
export function createVerifier(config: KeyConfig): TokenVerifier {
  const rules: ClaimRules = {
    algorithms: [],
    clockToleranceS: CLOCK_TOLERANCE_S,
    ...(config.jwtIssuer !== undefined && { issuer: config.jwtIssuer }),
    ...(config.jwtAudience !== undefined && { audience: config.jwtAudience }),
  };
  let staticKey: VerifyKey | undefined;
  let remote: RemoteKeySet | undefined;
  if (config.jwtSecret !== undefined) {
    staticKey = { kind: 'secret', secret: Buffer.from(config.jwtSecret) };
    // Only HS256: a token signed with anything else, or `none`, is refused before its signature is looked at.
    rules.algorithms = ['HS256'];
  } else if (config.jwtPublicKey !== undefined) {
    const publicKey = loadPublicKey(config.jwtPublicKey);
    staticKey = { kind: 'public', key: publicKey };
    rules.algorithms = algorithmsFor(publicKey);
  } else if (config.jwksUrl !== undefined) {
    remote = createRemoteJWKSet(new URL(config.jwksUrl), {
      cooldownDuration: config.jwksCooldownMs,
      cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
      timeoutDuration: JWKS_TIMEOUT_MS,
    });
    rules.algorithms = ASYMMETRIC_ALGS;
  } else {
    throw new Error('createVerifier needs a key');
  }
  const joseOptions = {
    algorithms: [...rules.algorithms],
    clockTolerance: CLOCK_TOLERANCE_S,
    requiredClaims: ['exp', 'sub'],
    ...(rules.issuer !== undefined && { issuer: rules.issuer }),
    ...(rules.audience !== undefined && { audience: rules.audience }),
  };
  const jwkKeys = new WeakMap<object, KeyObject | null>();

  /** The cached set's one key for this token, or undefined when jose must look (fetch, or several candidates). */
  function cachedKey(token: string): VerifyKey | undefined {
    if (remote === undefined || !remote.fresh) return undefined;
    const set = remote.jwks();
    if (set === undefined) return undefined;
    const header = readHeader(token);
    const alg = header['alg'];
    if (typeof alg !== 'string' || !rules.algorithms.includes(alg)) throw new AuthError('bad_algorithm', 'token algorithm not allowed');
    const kid = header['kid'];
    const candidates = set.keys.filter(
      (jwk) => (kid === undefined || jwk.kid === kid) && (jwk.use === undefined || jwk.use === 'sig') && (jwk.alg === undefined || jwk.alg === alg),
    );
    if (candidates.length !== 1) return undefined;
    const jwk = candidates[0]!;
    let keyObject = jwkKeys.get(jwk);
    if (keyObject === undefined) {
      try {
        keyObject = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
      } catch {
        keyObject = null;
      }
      jwkKeys.set(jwk, keyObject);
    }
    return keyObject === null ? undefined : { kind: 'public', key: keyObject };
  }

  function verifySync(token: string): Claims | undefined {
    if (token.length === 0) throw new AuthError('token_missing', 'no token');
    const key = staticKey ?? cachedKey(token);
    if (key === undefined) return undefined;
    return readClaims(verifyJwsSync(token, key, rules));
  }

  return {
    verifySync,
    async verify(token: string): Promise<Claims> {
      const claims = verifySync(token);
      if (claims !== undefined) return claims;
      let payload: JWTPayload;
      try {
        payload = (await jwtVerify(token, keySetGetter(remote!), joseOptions)).payload;
      } catch (err) {
        throw toAuthError(err);
      }
      return readClaims(payload);
    },
  };
}

type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>;

/**
 * The remote set as jose's key getter, with a set that could not be had (an HTTP error answer,
 * a refused connection) reported as `key_unavailable`: jose throws a bare JOSEError for a non-200
 * answer, which would otherwise read as a malformed token.
 */
function keySetGetter(remote: RemoteKeySet): (...args: Parameters<RemoteKeySet>) => ReturnType<RemoteKeySet> {
  return async (...args) => {
    try {
      return await remote(...args);
    } catch (err) {
      if (err instanceof joseErrors.JOSEError && err.constructor !== joseErrors.JOSEError) throw err;
      throw new AuthError('key_unavailable', `key set unavailable: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  };
}

function loadPublicKey(value: string): KeyObject {
  let pem = value.includes('-----BEGIN') ? value : existsSync(value) ? readFileSync(value, 'utf8') : value;
  // Environment variables often carry PEMs with literal "\n".
  pem = pem.replace(/\\n/g, '\n');
  try {
    const key = createPublicKey(pem);
    algorithmsFor(key);
    return key;
  } catch (err) {
    throw new AuthError('key_unavailable', `JWT_PUBLIC_KEY is not a usable PEM public key: ${(err as Error).message}`, { cause: err });
  }
}

function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return RSA_ALGS;
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1' || curve === 'P-256') return ['ES256'];
      if (curve === 'secp384r1' || curve === 'P-384') return ['ES384'];
      if (curve === 'secp521r1' || curve === 'P-521') return ['ES512'];
      throw new Error(`unsupported EC curve ${curve}`);
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      throw new Error(`unsupported key type ${key.asymmetricKeyType}`);
  }
}

function stringArray(payload: JWTPayload, claim: string): readonly string[] {
  const value = payload[claim];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > MAX_CLAIM_ITEMS || !value.every((v) => typeof v === 'string')) {
    throw new AuthError('bad_claims', `claim "${claim}" must be an array of strings`);
  }
  return value as string[];
}

function readClaims(payload: JWTPayload): Claims {
  const { sub, exp } = payload;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 200) {
    throw new AuthError('bad_claims', 'claim "sub" must be a non-empty string');
  }
  if (typeof exp !== 'number') throw new AuthError('bad_claims', 'claim "exp" must be a number');
  return {
    sub,
    exp,
    permissions: stringArray(payload, 'permissions'),
    channels: stringArray(payload, 'channels'),
    publish: stringArray(payload, 'publish'),
    ...infoClaim(payload),
  };
}

function infoClaim(payload: JWTPayload): { infoJson?: string } {
  const info = payload['info'];
  if (typeof info !== 'object' || info === null || Array.isArray(info)) return {};
  const json = JSON.stringify(info);
  return Buffer.byteLength(json) <= MAX_INFO_BYTES ? { infoJson: json } : {};
}

function toAuthError(err: unknown): AuthError {
  if (err instanceof AuthError) return err;
  if (err instanceof joseErrors.JWTExpired) return new AuthError('token_expired', 'token expired', { cause: err });
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return new AuthError('token_not_yet_valid', 'token not yet valid (nbf)', { cause: err });
    return new AuthError('bad_claims', `claim "${err.claim}" rejected: ${err.reason}`, { cause: err });
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new AuthError('bad_algorithm', 'token algorithm not allowed', { cause: err });
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new AuthError('bad_signature', 'signature verification failed', { cause: err });
  if (err instanceof joseErrors.JWKSNoMatchingKey) return new AuthError('unknown_key', 'no key in the key set matches the token', { cause: err });
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) {
    return new AuthError('key_unavailable', 'key set unavailable', { cause: err });
  }
  if (err instanceof joseErrors.JOSEError) return new AuthError('token_malformed', `token rejected: ${err.code}`, { cause: err });
  return new AuthError('key_unavailable', `token could not be verified: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

export interface MintOptions {
  sub: string;
  permissions?: readonly string[];
  channels?: readonly string[];
  publish?: readonly string[];
  ttlS: number;
  issuer?: string;
  audience?: string;
}

/** Signs an HS256 token: for `switchyard token`, `switchyard dev` and `POST /auth/token`. */
export async function mintToken(secret: string, options: MintOptions): Promise<{ token: string; expiresAt: number }> {
  const now = Math.floor(Date.now() / 1000);
  const expiresAt = now + options.ttlS;
  const claims: JWTPayload = {};
  if (options.permissions !== undefined) claims['permissions'] = [...options.permissions];
  if (options.channels !== undefined) claims['channels'] = [...options.channels];
  if (options.publish !== undefined) claims['publish'] = [...options.publish];
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(options.sub).setIssuedAt(now).setExpirationTime(expiresAt);
  if (options.issuer !== undefined) jwt = jwt.setIssuer(options.issuer);
  if (options.audience !== undefined) jwt = jwt.setAudience(options.audience);
  return { token: await jwt.sign(new TextEncoder().encode(secret)), expiresAt };
}
