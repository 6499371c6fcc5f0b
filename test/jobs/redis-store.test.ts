import { RedisBroker } from '@switchyard/broker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisJobControl, RedisJobStore, jobKey } from '../../packages/jobs/src/index.js';
import { announcingStoreContract, jobStoreContract } from '../../packages/jobs/test/store-contract.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '../harness/redis.js';

/** The same contract as the memory store, on a real Redis: Lua transitions, TTLs, the control channel. */
describe('RedisJobStore on a real Redis', () => {
  let redis: RedisServer;
  let broker: RedisBroker;
  let client: RedisBroker['client'];

  beforeAll(async () => {
    redis = await startRedis();
    broker = new RedisBroker({ url: redis.url });
    await broker.ready();
    client = broker.client;
  });
  afterAll(async () => {
    await broker?.close();
    await redis?.stop();
  });

  jobStoreContract(() => new RedisJobStore(client, { ttlS: 120 }));
  announcingStoreContract(() => ({
    store: new RedisJobStore(client, { ttlS: 120, broker }),
    frames: async (jobId) => (await broker.history(`job:${jobId}`, 0)).events.map((e) => e.frame),
  }));

  it('keeps the status in the hash job:<id> with JOB_STATUS_TTL_S, renewed on every change', async () => {
    const store = new RedisJobStore(client, { ttlS: 120 });
    await store.create({ job_id: 'ttl-1' }, 'alice');
    expect(jobKey('ttl-1')).toBe('job:ttl-1');
    expect(await client.hget('job:ttl-1', 'owner')).toBe('alice');
    await client.expire('job:ttl-1', 5);
    await store.progress('ttl-1', { progress: 0.1 });
    const ttl = await client.ttl('job:ttl-1');
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
    // Progress for a job that is gone does not bring a half record back.
    await store.progress('gone-1', { progress: 0.5 });
    expect(await client.exists('job:gone-1')).toBe(0);
  });

  it('carries cancels to every listener over pub/sub', async () => {
    const a = new RedisJobControl(client);
    const b = new RedisJobControl(client);
    const got: string[] = [];
    a.onCancel((id) => got.push(`a:${id}`));
    b.onCancel((id) => got.push(`b:${id}`));
    await Promise.all([a.ready(), b.ready()]);
    await client.publish('sy#jobs:control', 'not json');
    await client.publish('sy#jobs:control', JSON.stringify({ v: 99, type: 'cancel', job_id: 'future' }));
    await a.requestCancel('job-9');
    await waitFor(() => (got.length === 2 ? true : undefined), 5000, 'both listeners');
    expect(got.sort()).toEqual(['a:job-9', 'b:job-9']);
    await Promise.all([a.close(), b.close()]);
  });
});

/**
 * On a Redis Cluster each transition script touches the job hash `job:<id>` and its channel's
 * keys `sy:{job:<id>}:*`: one hash slot, so they run as one atomic script on one shard.
 */
describe('RedisJobStore on a real Redis Cluster', () => {
  let cluster: RedisCluster;
  let broker: RedisBroker;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    broker = new RedisBroker({ clusterNodes: cluster.nodes });
    await broker.ready();
  }, 60_000);
  afterAll(async () => {
    await broker?.close();
    await cluster?.stop();
  });

  it('lists recent jobs from every master (the console)', async () => {
    const store = new RedisJobStore(broker.client, { ttlS: 120, broker });
    const ids = Array.from({ length: 12 }, (_, i) => `cluster-recent-${Date.now().toString(36)}-${i}`);
    for (const id of ids) await store.create({ job_id: id }, 'alice');
    // Twelve keys land on more than one of the three masters.
    expect(new Set(ids.map((id) => cluster.masterFor(`job:${id}`))).size).toBeGreaterThan(1);
    const listed = (await store.recent(500)).map((r) => r.job_id);
    expect(listed).toEqual(expect.arrayContaining(ids));
  });

  announcingStoreContract(() => ({
    store: new RedisJobStore(broker.client, { ttlS: 120, broker }),
    frames: async (jobId) => (await broker.history(`job:${jobId}`, 0)).events.map((e) => e.frame),
  }));
});
