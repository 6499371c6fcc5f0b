import { describe, expect, it } from 'vitest';
import { Admission, normalizeAddress, trustedProxyList } from '../src/admission.js';

const limits = { maxPendingAuth: 2, maxTotalConnections: 2, maxConnectionsPerIp: 3 };

describe('Admission', () => {
  it('counts pending and authenticated apart: pending sockets never take a user’s place', () => {
    const a = new Admission(limits);
    a.opened('1.1.1.1', false);
    a.opened('1.1.1.2', false);
    expect(a.check('1.1.1.3', false)).toMatchObject({ status: 503, code: 'too_many_connections' });
    expect(a.check('1.1.1.3', true)).toBeUndefined();
    a.opened('1.1.1.3', true);
    expect(a.authenticate()).toBe(true);
    expect(a.pending).toBe(1);
    expect(a.authenticated).toBe(2);
    // Full of authenticated connections: the next pending one cannot authenticate.
    expect(a.authenticate()).toBe(false);
    expect(a.pending).toBe(1);
    expect(a.check('9.9.9.9', true)).toMatchObject({ status: 503 });
    a.closed('1.1.1.3', true);
    expect(a.check('9.9.9.9', true)).toBeUndefined();
  });

  it('limits connections per address with 429, and gives the slot back on close', () => {
    const a = new Admission({ ...limits, maxPendingAuth: 100, maxTotalConnections: 100 });
    for (let i = 0; i < 3; i++) a.opened('10.0.0.1', i % 2 === 0);
    expect(a.check('10.0.0.1', false)).toMatchObject({ status: 429 });
    expect(a.check('10.0.0.2', false)).toBeUndefined();
    a.closed('10.0.0.1', false);
    expect(a.check('10.0.0.1', false)).toBeUndefined();
  });

  it('reads X-Forwarded-For only from trusted proxies, from the right, skipping trusted hops', () => {
    const a = new Admission({ ...limits, trustedProxies: ['10.0.0.0/8', '::1'] });
    expect(a.clientAddress('203.0.113.9', '1.2.3.4')).toBe('203.0.113.9');
    expect(a.clientAddress('10.1.2.3', '1.2.3.4')).toBe('1.2.3.4');
    expect(a.clientAddress('10.1.2.3', '6.6.6.6, 1.2.3.4, 10.9.9.9')).toBe('1.2.3.4');
    expect(a.clientAddress('::ffff:10.1.2.3', ' 1.2.3.4 ')).toBe('1.2.3.4');
    expect(a.clientAddress('::1', '2001:db8::7')).toBe('2001:db8::7');
    expect(a.clientAddress('10.1.2.3', 'not-an-ip, 1.2.3.4')).toBe('1.2.3.4');
    expect(a.clientAddress('10.1.2.3', '1.2.3.4, garbage')).toBe('10.1.2.3');
    expect(a.clientAddress('10.1.2.3', '')).toBe('10.1.2.3');
    expect(new Admission(limits).clientAddress('10.1.2.3', '1.2.3.4')).toBe('10.1.2.3');
  });

  it('refuses a bad TRUSTED_PROXIES entry by name', () => {
    expect(() => trustedProxyList(['10.0.0.0/33'])).toThrow(/TRUSTED_PROXIES/);
    expect(() => trustedProxyList(['proxy.local'])).toThrow(/TRUSTED_PROXIES/);
    expect(() => trustedProxyList(['10.0.0.0/8', '2001:db8::/32', '127.0.0.1'])).not.toThrow();
    expect(normalizeAddress('::FFFF:127.0.0.1')).toBe('127.0.0.1');
  });
});
