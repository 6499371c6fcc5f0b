import { RedisBroker } from '@switchyard/broker';
import { RedisRegistry, type WorkerInfo } from '@switchyard/sessions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

/**
 * The cluster-wide per-user connection count of RedisRegistry, on a real redis-server: two
 * registries stand for two nodes. Admission is one atomic check-and-insert, entries of nodes
 * that are gone do not count, and a removed connection frees its slot.
 */
describe('RedisRegistry: connections counted per user across nodes', () => {
  let redis: RedisServer;
  const brokers: RedisBroker[] = [];
  const registries: RedisRegistry[] = [];
  const node = async (id: string) => {
    const broker = new RedisBroker({ url: redis.url, historySize: 10, historyTtlS: 60, healthIntervalMs: 200 });
    brokers.push(broker);
    await broker.ready();
    const registry = new RedisRegistry(broker.client, { workerId: id, heartbeatMs: 200, retainS: 60 });
    registries.push(registry);
    await registry.start((): WorkerInfo => ({ id, connections: 0, startedAt: Date.now(), draining: false }));
    return registry;
  };
  const held = (user: string) => redis.cli('hgetall', `sy:user:{${user}}`).trim().split('\n').filter((l) => l !== '').length / 2;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(registries.map((r) => r.close()));
    await Promise.all(brokers.map((b) => b.close()));
    await redis?.stop();
  });

  it('admits exactly the limit when two nodes admit the same user at once', async () => {
    const [a, b] = [await node('n1'), await node('n2')];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).admitConnection(`race-${i}`, 'racer', 3)));
    expect(results.filter(Boolean)).toHaveLength(3);
    expect(held('racer')).toBe(3);
    expect((await a.nodesOfUser('racer')).sort()).toEqual(expect.arrayContaining([expect.stringMatching(/^n[12]$/)]));
    const admitted = results.flatMap((ok, i) => (ok ? [`race-${i}`] : []));
    for (const id of admitted) expect(await b.locateConnection(id)).toMatch(/^n[12]$/);
  });

  it('a removed connection frees its slot, cluster-wide', async () => {
    const [a, b] = [await node('n3'), await node('n4')];
    expect(await a.admitConnection('c1', 'leaver', 2)).toBe(true);
    expect(await b.admitConnection('c2', 'leaver', 2)).toBe(true);
    expect(await a.admitConnection('c3', 'leaver', 2)).toBe(false);
    a.removeConnection('c1', 'leaver');
    // The removal is written in the background: wait for it in Redis, then the slot is free.
    await waitFor(() => held('leaver') === 1 || undefined, 5000, 'c1 removed from the user hash');
    expect(await a.locateConnection('c1')).toBeUndefined();
    expect(await b.admitConnection('c4', 'leaver', 2)).toBe(true);
    expect(await b.admitConnection('c5', 'leaver', 2)).toBe(false);
  });

  it('connections recorded for a node that is not alive do not count, so the limit heals', async () => {
    const a = await node('n5');
    // What a node that died without cleaning up leaves behind.
    redis.cli('hset', 'sy:user:{ghosted}', 'g1', 'dead-node', 'g2', 'dead-node');
    expect(await a.admitConnection('live-1', 'ghosted', 2)).toBe(true);
    expect(await a.admitConnection('live-2', 'ghosted', 2)).toBe(true);
    expect(await a.admitConnection('live-3', 'ghosted', 2)).toBe(false);
    expect(await a.nodesOfUser('ghosted')).toEqual(['n5']);
  });

  it('a node that leaves (drain) stops counting at once', async () => {
    const [a, b] = [await node('n6'), await node('n7')];
    expect(await b.admitConnection('d1', 'drained', 1)).toBe(true);
    expect(await a.admitConnection('d2', 'drained', 1)).toBe(false);
    await b.leave();
    expect(await a.checkAlive('n7')).toBe(false);
    expect(await a.admitConnection('d3', 'drained', 1)).toBe(true);
  });
});
