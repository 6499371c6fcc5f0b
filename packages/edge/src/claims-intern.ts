import type { Claims } from './auth.js';

/** Distinct claim lists kept; past it the table starts over (it only saves memory, never decides anything). */
const MAX_LISTS = 10_000;
/** Longer lists are rare and kept as they are. */
const MAX_INTERNED_LENGTH = 64;

const lists = new Map<string, readonly string[]>();
const EMPTY: readonly string[] = Object.freeze([]);

function intern(list: readonly string[]): readonly string[] {
  if (list.length === 0) return EMPTY;
  if (list.length > MAX_INTERNED_LENGTH) return list;
  // NUL cannot occur in a channel pattern or permission, so the key is unambiguous.
  const key = list.join('\u0000');
  let shared = lists.get(key);
  if (shared === undefined) {
    if (lists.size >= MAX_LISTS) lists.clear();
    shared = Object.freeze([...list]);
    lists.set(key, shared);
  }
  return shared;
}

/**
 * The claims a connection keeps, with its permission lists shared: thousands of users with
 * the same role hold one frozen copy of `permissions`, `channels` and `publish`, not one each.
 */
export function internClaims(claims: Claims): Claims {
  const permissions = intern(claims.permissions);
  const channels = intern(claims.channels);
  const publish = intern(claims.publish);
  if (permissions === claims.permissions && channels === claims.channels && publish === claims.publish) return claims;
  return { ...claims, permissions, channels, publish };
}
