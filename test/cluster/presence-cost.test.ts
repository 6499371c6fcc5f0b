import { RedisBroker, RedisPresence } from '@switchyard/broker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../harness/redis.js';

/**
 * What one presence join costs in Redis, in a channel of 10 and of 10,000 members: round trips,
 * commands run (INFO commandstats, which counts the calls inside scripts too) and time. The
 * figures go to BENCHMARKS.md ("Presence"); what is asserted is that the work does not grow
 * with the channel. Run alone: `pnpm exec vitest run test/cluster/presence-cost.test.ts`.
 */
const MEMBERS = 10_000;
const SAMPLES = 300;

function commandStats(redis: RedisServer): Map<string, number> {
  const stats = new Map<string, number>();
  for (const line of redis.cli('info', 'commandstats').split('\n')) {
    const m = /^cmdstat_([a-z|]+):calls=(\d+)/.exec(line.trim());
    if (m !== null) stats.set(m[1]!, Number(m[2]));
  }
  return stats;
}

/** Microseconds Redis spent in scripts (EVALSHA), all calls so far. */
function scriptUsec(redis: RedisServer): { calls: number; usec: number } {
  const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(redis.cli('info', 'commandstats'));
  return { calls: Number(m?.[1] ?? 0), usec: Number(m?.[2] ?? 0) };
}

function delta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [cmd, n] of after) {
    const d = n - (before.get(cmd) ?? 0);
    if (d > 0 && cmd !== 'info') out[cmd] = d;
  }
  return out;
}

describe('presence join cost', () => {
  let redis: RedisServer;
  let broker: RedisBroker;
  let store: RedisPresence;

  beforeAll(async () => {
    redis = await startRedis();
    // The edge's own wiring: the broker's command connection and its channel naming.
    broker = new RedisBroker({ url: redis.url, nodeId: 'bench-node' });
    await broker.ready(10_000);
    store = new RedisPresence({ client: broker.client, target: (channel) => broker.publishTarget(channel), nodeId: 'bench-node', ttlMs: 30_000, heartbeatMs: 7500 });
  });
  afterAll(async () => {
    await broker?.close();
    await redis?.stop();
  });

  async function fill(channel: string, members: number): Promise<void> {
    for (let i = 0; i < members; i += 1000) {
      await Promise.all(Array.from({ length: Math.min(1000, members - i) }, (_, k) => store.join(channel, `m${i + k}`, '{"n":1}', 1, i + k === 0)));
    }
  }

  /** One join of a new user (the case that publishes `join`) and its leave, measured. */
  async function measure(channel: string): Promise<{ commandsPerJoin: Record<string, number>; joinMeanMs: number; leaveMeanMs: number; redisUsPerCall: number }> {
    const before = commandStats(redis);
    expect(await store.join(channel, 'probe', '{"name":"probe"}', 1, false)).toBe('joined');
    const commandsPerJoin = delta(before, commandStats(redis));
    expect(await store.leave(channel, 'probe')).toBe('left');
    let joinMs = 0;
    let leaveMs = 0;
    const scripts = scriptUsec(redis);
    for (let i = 0; i < SAMPLES; i++) {
      let t = performance.now();
      await store.join(channel, `probe${i}`, '{"name":"probe"}', 1, false);
      joinMs += performance.now() - t;
      t = performance.now();
      await store.leave(channel, `probe${i}`);
      leaveMs += performance.now() - t;
    }
    const after = scriptUsec(redis);
    const redisUsPerCall = (after.usec - scripts.usec) / Math.max(1, after.calls - scripts.calls);
    return { commandsPerJoin, joinMeanMs: +(joinMs / SAMPLES).toFixed(3), leaveMeanMs: +(leaveMs / SAMPLES).toFixed(3), redisUsPerCall: +redisUsPerCall.toFixed(1) };
  }

  it('a join is one round trip and the same Redis commands at 10 and at 10,000 members', async () => {
    await fill('room:small', 10);
    await fill('room:big', MEMBERS);
    expect((await store.get('room:big', 1000)).count).toBe(MEMBERS);
    const small = await measure('room:small');
    const big = await measure('room:big');
    const load = (await import('node:os')).loadavg()[0]!.toFixed(2);
    console.log(JSON.stringify({ presenceJoinCost: { members10: small, members10k: big, loadAverage1m: load } }));
    // One script call per join (one round trip), whatever the size of the channel.
    expect(big.commandsPerJoin['evalsha'] ?? big.commandsPerJoin['eval']).toBe(1);
    expect(big.commandsPerJoin).toEqual(small.commandsPerJoin);
    // A query past PRESENCE_MAX_USERS stops reading once it has enough.
    const t = performance.now();
    const page = await store.get('room:big', 1000);
    console.log(JSON.stringify({ presenceQuery10k: { ms: +(performance.now() - t).toFixed(2), users: page.users.length } }));
    expect(page).toMatchObject({ count: MEMBERS, connections: MEMBERS, truncated: true });
    expect(page.users).toHaveLength(1000);
  });
});
