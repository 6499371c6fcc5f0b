import { RedisBroker, type BrokerEvent } from '@switchyard/broker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/ports.js';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '../harness/redis.js';

function collect(broker: RedisBroker): { events: BrokerEvent[]; resets: string[] } {
  const out = { events: [] as BrokerEvent[], resets: [] as string[] };
  broker.setListener((e) => out.events.push(e));
  broker.onReset((channel) => out.resets.push(channel));
  return out;
}

describe('RedisBroker on one redis-server', () => {
  let redis: RedisServer;
  const brokers: RedisBroker[] = [];
  const make = async (opts: { historySize?: number } = {}) => {
    const b = new RedisBroker({ url: redis.url, historySize: opts.historySize ?? 100, historyTtlS: 60, healthIntervalMs: 200 });
    brokers.push(b);
    await b.ready();
    return b;
  };
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.close()));
    await redis?.stop();
  });

  it('assigns seqs atomically across nodes and delivers the pre-built frame to subscribed nodes only', async () => {
    const a = await make();
    const b = await make();
    const got = collect(b);
    collect(a);
    await b.subscribe('room:1');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).publish({ channel: 'room:1', event: 'e', dataJson: `{"i":${i}}` })));
    expect(results.map((r) => r.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await waitFor(() => got.events.length === 20 || undefined, 5000, '20 events');
    expect(got.events.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const parsed = JSON.parse(got.events[0]!.frame) as Record<string, unknown>;
    expect(parsed).toMatchObject({ type: 'event', channel: 'room:1', seq: 1, event: 'e' });
    await a.publish({ channel: 'room:other', event: 'e', dataJson: 'null' });
    // A barrier through the same subscriber connection: once it is here, room:other would be too.
    await a.publish({ channel: 'room:1', event: 'barrier', dataJson: 'null' });
    await waitFor(() => got.events.length === 21 || undefined, 5000, 'the barrier event');
    expect(got.events.every((e) => e.channel === 'room:1')).toBe(true);
  });

  it('serves history after since, and says recovered:false once trimmed', async () => {
    const a = await make({ historySize: 5 });
    for (let i = 0; i < 8; i++) await a.publish({ channel: 'h:1', event: 'e', dataJson: String(i) });
    const recent = await a.history('h:1', 5);
    expect(recent.recovered).toBe(true);
    expect(recent.events.map((e) => e.seq)).toEqual([6, 7, 8]);
    expect(JSON.parse(recent.events[0]!.frame)).toMatchObject({ seq: 6, data: 5 });
    const old = await a.history('h:1', 1);
    expect(old.recovered).toBe(false);
    expect(old.events.map((e) => e.seq)).toEqual([4, 5, 6, 7, 8]);
    expect((await a.position('h:1')).seq).toBe(8);
    expect((await a.history('h:1', 8)).recovered).toBe(true);
    const fresh = await a.position('never:published');
    expect(fresh.seq).toBe(0);
    expect((await a.position('never:published')).epoch).toBe(fresh.epoch);
  });

  it('after Redis restarts: reports the reset epoch, then catches up with every event of the new epoch once, in order', async () => {
    const pub = await make();
    const node = await make();
    const got = collect(node);
    await node.subscribe('r:1');
    await pub.publish({ channel: 'r:1', event: 'e', dataJson: '1' });
    await waitFor(() => got.events.length === 1 || undefined, 5000, 'first event');
    await redis.restart(300);
    // Redis came back empty: the channel's epoch is new and the node is told.
    await waitFor(async () => {
      try {
        await pub.publish({ channel: 'r:1', event: 'e', dataJson: '2' });
        return true;
      } catch {
        return undefined;
      }
    }, 15_000, 'publish after restart');
    // Published as soon as Redis answers, these usually race the node's resubscription, so some
    // reach it by the history catch-up rather than live; either way each comes once, in order.
    for (const data of ['3', '4']) await pub.publish({ channel: 'r:1', event: 'e', dataJson: data });
    await waitFor(() => got.resets.includes('r:1') || undefined, 15_000, 'reset notice');
    await waitFor(() => got.events.length >= 4 || undefined, 15_000, 'the three events after restart');
    const afterRestart = got.events.slice(1);
    expect(afterRestart.map((e) => JSON.parse(e.frame) as Record<string, unknown>).map((f) => [f['seq'], f['data']])).toEqual([
      [1, 2],
      [2, 3],
      [3, 4],
    ]);
    expect(afterRestart.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect((await node.position('r:1')).seq).toBe(3);
  });
});

describe('RedisBroker on a 3-master Redis Cluster (sharded pub/sub)', () => {
  let cluster: RedisCluster;
  const brokers: RedisBroker[] = [];
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  });
  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.close()));
    await cluster?.stop();
  });

  it('spreads channels over every shard and delivers each in order', async () => {
    const a = new RedisBroker({ clusterNodes: cluster.nodes, historySize: 50, historyTtlS: 60 });
    const b = new RedisBroker({ clusterNodes: cluster.nodes, historySize: 50, historyTtlS: 60 });
    brokers.push(a, b);
    await a.ready();
    await b.ready();
    const got = collect(b);
    collect(a);
    const channels = Array.from({ length: 12 }, (_, i) => `shard:${i}`);
    const masters = new Set(channels.map((c) => cluster.masterFor(`sy:{${c}}`)));
    expect(masters.size).toBe(3);
    for (const c of channels) await b.subscribe(c);
    for (let round = 0; round < 5; round++) for (const c of channels) await a.publish({ channel: c, event: 'e', dataJson: String(round) });
    await waitFor(() => got.events.length === 60 || undefined, 10_000, '60 events');
    for (const c of channels) expect(got.events.filter((e) => e.channel === c).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    const page = await b.history('shard:3', 2);
    expect(page.events.map((e) => e.seq)).toEqual([3, 4, 5]);
  });
});
