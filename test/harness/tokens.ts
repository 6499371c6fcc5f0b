import { SignJWT, type JWTPayload } from 'jose';
import { TEST_SECRET } from './edge.js';

export interface TokenOptions {
  sub?: string;
  permissions?: string[];
  channels?: string[];
  publish?: string[];
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  notBefore?: number;
  issuer?: string;
  audience?: string;
  secret?: string;
  extra?: JWTPayload;
}

/** An HS256 token for the test secret (or another one). */
export async function hsToken(options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: JWTPayload = { ...options.extra };
  if (options.permissions) claims['permissions'] = options.permissions;
  if (options.channels) claims['channels'] = options.channels;
  if (options.publish) claims['publish'] = options.publish;
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(now).setExpirationTime(now + (options.expiresIn ?? 300));
  if (options.sub !== '') jwt = jwt.setSubject(options.sub ?? 'alice');
  if (options.notBefore !== undefined) jwt = jwt.setNotBefore(now + options.notBefore);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret ?? TEST_SECRET));
}
