import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryRegistry, MemorySessionStore, type SessionRecord, type WorkerInfo, type WorkerRegistry } from '../src/index.js';

/** Through the interface the edge uses. */
const registry = (): WorkerRegistry => new MemoryRegistry('solo');
const info = (connections: number): WorkerInfo => ({ id: 'solo', connections, startedAt: 0, draining: false });

describe('MemoryRegistry: connections counted per user', () => {
  it('admits up to the limit per user, refuses the next, and each user has a budget of their own', async () => {
    const r = registry();
    expect(await r.admitConnection('a1', 'alice', 2)).toBe(true);
    expect(await r.admitConnection('a2', 'alice', 2)).toBe(true);
    expect(await r.admitConnection('a3', 'alice', 2)).toBe(false);
    expect(await r.admitConnection('b1', 'bob', 2)).toBe(true);
    // A refused connection is not recorded.
    expect(await r.locateConnection('a3')).toBeUndefined();
    expect(await r.locateConnection('a1')).toBe('solo');
    expect(await r.nodesOfUser('alice')).toEqual(['solo']);
    expect(await r.nodesOfUser('carol')).toEqual([]);
  });

  it('a removed connection frees its slot; removing it again, or an unknown one, changes nothing', async () => {
    const r = registry();
    await r.admitConnection('a1', 'alice', 2);
    await r.admitConnection('a2', 'alice', 2);
    r.removeConnection('a1', 'alice');
    r.removeConnection('a1', 'alice');
    r.removeConnection('nobody', 'alice');
    expect(await r.locateConnection('a1')).toBeUndefined();
    // One slot was freed, not two: the count did not go below what is held.
    expect(await r.admitConnection('a3', 'alice', 2)).toBe(true);
    expect(await r.admitConnection('a4', 'alice', 2)).toBe(false);
  });

  it('forgets a user whose last connection is gone, and admits them again from zero', async () => {
    const r = registry();
    await r.admitConnection('a1', 'alice', 1);
    r.removeConnection('a1', 'alice');
    expect(await r.nodesOfUser('alice')).toEqual([]);
    expect(await r.admitConnection('a2', 'alice', 1)).toBe(true);
    expect(await r.admitConnection('a3', 'alice', 1)).toBe(false);
  });

  it('a limit of 0 admits nobody', async () => {
    const r = registry();
    expect(await r.admitConnection('a1', 'alice', 0)).toBe(false);
    expect(await r.nodesOfUser('alice')).toEqual([]);
  });

  it('keeps exact counts over many connections of many users', async () => {
    const r = registry();
    for (let u = 0; u < 50; u++) for (let c = 0; c < 3; c++) expect(await r.admitConnection(`u${u}-c${c}`, `u${u}`, 3)).toBe(true);
    for (let u = 0; u < 50; u++) expect(await r.admitConnection(`u${u}-extra`, `u${u}`, 3)).toBe(false);
    for (let u = 0; u < 50; u += 2) r.removeConnection(`u${u}-c1`, `u${u}`);
    for (let u = 0; u < 50; u++) expect(await r.admitConnection(`u${u}-again`, `u${u}`, 3)).toBe(u % 2 === 0);
  });

  it('close forgets every connection', async () => {
    const r = registry();
    await r.admitConnection('a1', 'alice', 1);
    await r.close();
    expect(await r.locateConnection('a1')).toBeUndefined();
    expect(await r.admitConnection('a2', 'alice', 1)).toBe(true);
  });

  it('is the whole cluster: itself alive, one worker, its own figures', async () => {
    const r = registry();
    expect(r.workers()).toEqual([]);
    await r.start(() => info(7));
    expect(r.totalWorkers()).toBe(1);
    expect(r.totalConnections()).toBe(7);
    expect(r.workers()).toEqual([info(7)]);
    expect(r.isAlive('solo')).toBe(true);
    expect(r.isAlive('other')).toBe(false);
    expect(await r.checkAlive('other')).toBe(false);
    r.notePosition('ch', { seq: 3, epoch: 'e' });
    expect(await r.positionsOf('solo')).toEqual({});
  });
});

describe('MemoryRegistry: the per-user publish budget', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('grants perS tokens within one second and refuses the rest; the next second starts afresh', async () => {
    vi.useFakeTimers({ now: new Date('2026-11-29T12:00:00.100Z') });
    const r = registry();
    const take = async (n: number, user = 'alice') => {
      const out: boolean[] = [];
      for (let i = 0; i < n; i++) out.push(await r.takeUserToken(user, 3));
      return out;
    };
    expect(await take(5)).toEqual([true, true, true, false, false]);
    expect(await take(1, 'bob')).toEqual([true]);
    vi.setSystemTime(new Date('2026-11-29T12:00:00.999Z'));
    expect(await take(1)).toEqual([false]);
    vi.setSystemTime(new Date('2026-11-29T12:00:01.000Z'));
    expect(await take(4)).toEqual([true, true, true, false]);
  });

  it('a budget of 0 refuses even the first', async () => {
    const r = registry();
    expect(await r.takeUserToken('alice', 0)).toBe(false);
  });
});

describe('MemorySessionStore', () => {
  const record = (id: string): SessionRecord => ({ id, userId: 'alice', subscriptions: { 'room:1': { seq: 4, epoch: 'e1' } }, node: 'solo', live: true });
  const stores: MemorySessionStore[] = [];
  const make = (ttlS: number) => {
    const s = new MemorySessionStore(ttlS);
    stores.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    vi.useRealTimers();
  });

  it('saves, loads, counts and deletes', async () => {
    const s = make(60);
    await s.save(record('s1'));
    await s.save(record('s2'));
    expect(s.count()).toBe(2);
    expect(await s.load('s1')).toEqual(record('s1'));
    await s.delete('s1');
    expect(await s.load('s1')).toBeUndefined();
    expect(s.count()).toBe(1);
    expect(await s.load('never')).toBeUndefined();
  });

  it('hands out copies: changing what was saved or loaded does not change the stored record', async () => {
    const s = make(60);
    const mine = record('s1');
    await s.save(mine);
    mine.subscriptions['room:1']!.seq = 99;
    mine.subscriptions['room:2'] = { seq: 1, epoch: 'x' };
    const loaded = (await s.load('s1'))!;
    expect(loaded.subscriptions).toEqual({ 'room:1': { seq: 4, epoch: 'e1' } });
    loaded.subscriptions['room:1']!.seq = 50;
    expect((await s.load('s1'))!.subscriptions['room:1']!.seq).toBe(4);
  });

  it('a record outlives its last save by the TTL, no longer; a save restarts the TTL', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const s = make(10);
    await s.save(record('s1'));
    vi.setSystemTime(1_000_000 + 9_999);
    expect(await s.load('s1')).toBeDefined();
    await s.save(record('s1'));
    vi.setSystemTime(1_000_000 + 9_999 + 9_999);
    expect(await s.load('s1')).toBeDefined();
    vi.setSystemTime(1_000_000 + 9_999 + 10_000);
    expect(await s.load('s1')).toBeUndefined();
    expect(s.count()).toBe(0);
  });

  it('sweeps expired records it is never asked about, so count() stays true', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const s = make(1);
    await s.save(record('s1'));
    expect(s.count()).toBe(1);
    // The sweeper runs every 30 s.
    await vi.advanceTimersByTimeAsync(30_000);
    expect(s.count()).toBe(0);
  });
});
