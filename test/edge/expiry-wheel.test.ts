import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { internClaims } from '../../packages/edge/src/claims-intern.js';
import { Connection } from '../../packages/edge/src/connection.js';
import { ExpiryWheel } from '../../packages/edge/src/expiry-wheel.js';

/** Unit tests of the per-connection memory savings: the shared expiry wheel, shared claim lists, the lazy join map. */

interface Item {
  name: string;
  expirySecond: number;
}

const item = (name: string): Item => ({ name, expirySecond: 0 });

describe('ExpiryWheel', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2030-01-01T00:00:00.000Z'));
  });
  afterEach(() => vi.useRealTimers());
  const nowS = () => Math.floor(Date.now() / 1000);

  it('hands each item out once its second has begun, never before, in second order', () => {
    const fired: string[] = [];
    const wheel = new ExpiryWheel<Item>((it) => fired.push(it.name), 250);
    const [a, b, c] = [item('a'), item('b'), item('c')];
    wheel.arm(b, nowS() + 2);
    wheel.arm(a, nowS() + 1);
    wheel.arm(c, nowS() + 2);
    expect(wheel.size).toBe(3);
    vi.advanceTimersByTime(999);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(250);
    expect(fired).toEqual(['a']);
    expect(a.expirySecond).toBe(0);
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual(['a', 'b', 'c']);
    expect(wheel.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0); // the tick stops when nothing is armed
  });

  it('an expiry already past fires at the next tick; re-arming moves an item; disarm removes it', () => {
    const fired: string[] = [];
    const wheel = new ExpiryWheel<Item>((it) => fired.push(it.name), 250);
    const [past, moved, gone] = [item('past'), item('moved'), item('gone')];
    wheel.arm(past, nowS() - 100);
    wheel.arm(moved, nowS() + 1);
    wheel.arm(moved, nowS() + 5);
    wheel.arm(gone, nowS() + 1);
    wheel.disarm(gone);
    wheel.disarm(gone); // twice is harmless
    expect(wheel.size).toBe(2);
    vi.advanceTimersByTime(250);
    expect(fired).toEqual(['past']);
    vi.advanceTimersByTime(4000);
    expect(fired).toEqual(['past']);
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual(['past', 'moved']);
  });

  it('after stop(), what is still armed fires when the wheel is armed again, even if its second went by', () => {
    const fired: string[] = [];
    const wheel = new ExpiryWheel<Item>((it) => fired.push(it.name), 250);
    const [early, late] = [item('early'), item('late')];
    wheel.arm(early, nowS() + 1);
    wheel.stop();
    vi.advanceTimersByTime(5000);
    expect(fired).toEqual([]);
    wheel.arm(late, nowS() + 1);
    vi.advanceTimersByTime(250);
    expect(fired).toEqual(['early']);
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual(['early', 'late']);
  });
});

describe('per-connection record', () => {
  it('connections with the same claim lists share one frozen copy; other fields are kept', () => {
    const a = internClaims({ sub: 'a', exp: 1, permissions: ['x:read', 'y:write'], channels: [], publish: ['p:*'], infoJson: '{"n":1}' });
    const b = internClaims({ sub: 'b', exp: 2, permissions: ['x:read', 'y:write'], channels: [], publish: ['p:*'] });
    expect(a.permissions).toBe(b.permissions);
    expect(a.publish).toBe(b.publish);
    expect(Object.isFrozen(a.permissions)).toBe(true);
    expect(a).toEqual({ sub: 'a', exp: 1, permissions: ['x:read', 'y:write'], channels: [], publish: ['p:*'], infoJson: '{"n":1}' });
    expect(b.sub).toBe('b');
    const c = internClaims({ sub: 'c', exp: 3, permissions: ['x:read'], channels: [], publish: [] });
    expect(c.permissions).not.toBe(a.permissions);
    const conn = new Connection('127.0.0.1', 10);
    conn.claims = { sub: 'd', exp: 4, permissions: ['x:read', 'y:write'], channels: [], publish: ['p:*'] };
    expect(conn.claims!.permissions).toBe(a.permissions);
    conn.claims = undefined;
    expect(conn.claims).toBeUndefined();
  });

  it('an idle connection holds no join map of its own; adding goes through joinMap(), and an emptied one is let go', () => {
    const conn = new Connection('127.0.0.1', 10);
    const other = new Connection('127.0.0.1', 10);
    expect(conn.joining.size).toBe(0);
    expect(conn.joining).toBe(other.joining);
    expect(() => conn.joining.set('c', { buffer: [], bufferBytes: 0, overflowed: false })).toThrow(/joinMap/);
    conn.joinMap().set('c', { buffer: [], bufferBytes: 0, overflowed: false });
    expect(conn.joining.get('c')).toBeDefined();
    expect(other.joining.size).toBe(0);
    conn.joining.delete('c');
    expect(conn.joining).toBe(other.joining);
    expect(conn.joining.size).toBe(0);
  });
});
