import { matchesAny } from '@switchyard/protocol';
import type { Claims } from './auth.js';

/**
 * PROTOCOL.md §3. Job ownership needs a lookup and is decided by the caller; everything
 * else is a pure function of the token's claims.
 */
export function canSubscribe(claims: Claims, channel: string): boolean {
  return (
    channel === `user:${claims.sub}` ||
    matchesAny(claims.channels, channel) ||
    claims.permissions.includes(`${channel}:read`) ||
    claims.permissions.includes('*:read')
  );
}

export function canPublish(claims: Claims, channel: string): boolean {
  return matchesAny(claims.publish, channel) || claims.permissions.includes(`${channel}:write`) || claims.permissions.includes('*:write');
}
