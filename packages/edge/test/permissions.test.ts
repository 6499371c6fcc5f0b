import { describe, expect, it } from 'vitest';
import type { Claims } from '../src/auth.js';
import { canPublish, canSubscribe } from '../src/permissions.js';

function claims(partial: Partial<Claims> = {}): Claims {
  return { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60, permissions: [], channels: [], publish: [], ...partial };
}

describe('canSubscribe', () => {
  it('refuses everything to a token without rights, except the user’s own channel', () => {
    const c = claims();
    expect(canSubscribe(c, 'user:alice')).toBe(true);
    expect(canSubscribe(c, 'user:bob')).toBe(false);
    expect(canSubscribe(c, 'user:alice2')).toBe(false);
    expect(canSubscribe(c, 'user:alic')).toBe(false);
    expect(canSubscribe(c, 'dashboard')).toBe(false);
    expect(canSubscribe(c, 'job:1')).toBe(false);
  });

  it('allows channels matching a pattern in "channels"', () => {
    const c = claims({ channels: ['news:*', 'dashboard'] });
    expect(canSubscribe(c, 'dashboard')).toBe(true);
    expect(canSubscribe(c, 'news:sport')).toBe(true);
    expect(canSubscribe(c, 'news:')).toBe(true);
    expect(canSubscribe(c, 'news')).toBe(false);
    expect(canSubscribe(c, 'dashboard2')).toBe(false);
    expect(canSubscribe(claims({ channels: ['*'] }), 'anything:at/all')).toBe(true);
  });

  it('allows C with the permission C:read, and everything with *:read', () => {
    const c = claims({ permissions: ['dashboard:read', 'news:today:read'] });
    expect(canSubscribe(c, 'dashboard')).toBe(true);
    expect(canSubscribe(c, 'news:today')).toBe(true);
    expect(canSubscribe(c, 'news:tomorrow')).toBe(false);
    expect(canSubscribe(c, 'dashboard:read')).toBe(false);
    expect(canSubscribe(claims({ permissions: ['*:read'] }), 'secret:plans')).toBe(true);
  });

  it('does not treat permissions as patterns or write rights as read rights', () => {
    expect(canSubscribe(claims({ permissions: ['news*:read'] }), 'news:x')).toBe(false);
    expect(canSubscribe(claims({ permissions: ['dashboard:write', '*:write'] }), 'dashboard')).toBe(false);
    expect(canSubscribe(claims({ permissions: ['dashboard'] }), 'dashboard')).toBe(false);
    expect(canSubscribe(claims({ publish: ['*'] }), 'dashboard')).toBe(false);
  });
});

describe('canPublish', () => {
  it('refuses everything to a token without rights, the user’s own channel included', () => {
    const c = claims();
    expect(canPublish(c, 'dashboard')).toBe(false);
    expect(canPublish(c, 'user:alice')).toBe(false);
  });

  it('allows channels matching a pattern in "publish"', () => {
    const c = claims({ publish: ['chat:*'] });
    expect(canPublish(c, 'chat:room1')).toBe(true);
    expect(canPublish(c, 'chatter')).toBe(false);
  });

  it('allows C with C:write, and everything with *:write', () => {
    expect(canPublish(claims({ permissions: ['dashboard:write'] }), 'dashboard')).toBe(true);
    expect(canPublish(claims({ permissions: ['dashboard:write'] }), 'other')).toBe(false);
    expect(canPublish(claims({ permissions: ['*:write'] }), 'anything')).toBe(true);
  });

  it('does not treat read rights or subscribe patterns as publish rights', () => {
    expect(canPublish(claims({ permissions: ['dashboard:read', '*:read'] }), 'dashboard')).toBe(false);
    expect(canPublish(claims({ channels: ['*'] }), 'dashboard')).toBe(false);
  });
});
