import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess, type TestClient } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

/**
 * Issue 11, "done when": the two cheapest ways to make a node hold memory for nothing, repeated
 * for HOSTILE_S seconds (30 by default) against an edge on Redis at the default byte bound:
 *   1. `subscribe since:0` + `unsubscribe` pairs on a long history, from a client reading nothing
 *      (before: each pair loaded the whole history; 20 pairs took a node from 125 to 374 MB);
 *   2. events each under its own `coalesce` key to a client reading nothing (before: never closed).
 * Each hostile client must be closed 4010, and the node's RSS must stay within 50 MB of its start.
 */

const KEY = 'bk-hostile';
const HOSTILE_MS = Number(process.env['HOSTILE_S'] ?? 30) * 1000;
const RSS_SLACK = 50 * 1024 * 1024;
const EVENT = 'h'.repeat(60_000);

function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

async function broadcast(edge: EdgeProcess, channel: string, extra: Record<string, unknown> = {}): Promise<void> {
  const res = await fetch(`${edge.http}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, data: EVENT, ...extra }),
  });
  expect(res.status).toBe(202);
}

async function connections(edge: EdgeProcess): Promise<number> {
  return ((await (await fetch(`${edge.http}/stats`)).json()) as { connections: number }).connections;
}

describe('hostile clients on Redis', () => {
  let redis: RedisServer;
  let edge: EdgeProcess;
  beforeAll(async () => {
    redis = await startRedis();
    edge = await startEdge({ REDIS_URL: redis.url, BROADCAST_API_KEY: KEY, REPLAY_STALL_MS: '2000', WORKER_ID: 'hostile-1' });
    for (let i = 0; i < 150; i += 10) await Promise.all(Array.from({ length: 10 }, () => broadcast(edge, 'history')));
  }, 120_000);
  afterAll(async () => {
    await edge?.stop();
    await redis?.stop();
  });

  /** Waits until the node has dropped the (paused) client, then reads its close code. */
  async function closeCode(client: TestClient, act: () => Promise<void>): Promise<number> {
    let dropped = false;
    const acting = (async () => {
      while (!dropped) await act();
    })();
    await waitFor(async () => ((await connections(edge)) === 0 ? true : undefined), 60_000, 'the node drops the hostile client');
    dropped = true;
    await acting;
    client.ws.resume();
    return (await client.closed).code;
  }

  it(
    'replay/unsubscribe pairs and distinct coalesce keys, for 30 s: each client closed 4010, RSS within 50 MB of start',
    async () => {
      const start = rssOf(edge.proc.pid!);
      let peak = start;
      const sampler = setInterval(() => (peak = Math.max(peak, rssOf(edge.proc.pid!))), 100);
      const codes: { round: number; code: number }[] = [];
      const token = await hsToken({ sub: 'hostile', channels: ['history', 'keys'] });
      const deadline = Date.now() + HOSTILE_MS;
      try {
        for (let round = 0; Date.now() < deadline; round++) {
          const { client } = await connect(edge.url, token);
          client.ws.pause();
          client.send({ type: 'subscribe', channel: 'keys' });
          // Pattern 1 for a few seconds, at 40 frames a second (inside the default 50/s, burst 100).
          // An abandoned replay now reads no history at all, so it alone costs the node nothing
          // it could close the client for.
          for (let s = 0; s < 4; s++) {
            for (let i = 0; i < 20; i++) {
              client.send({ type: 'subscribe', channel: 'history', since: 0 });
              client.send({ type: 'unsubscribe', channel: 'history' });
            }
            // sleep-ok: the hostile pattern's own pacing (bursts per second), not a wait for a condition
            await new Promise((r) => setTimeout(r, 1000));
          }
          // Pattern 2 until the node drops the client.
          let n = 0;
          const code = await closeCode(client, () => Promise.all(Array.from({ length: 5 }, () => broadcast(edge, 'keys', { coalesce: `k${round}-${n++}` }))).then(() => undefined));
          codes.push({ round, code });
        }
      } finally {
        clearInterval(sampler);
      }
      expect(codes.length).toBeGreaterThan(1);
      expect(codes.filter((c) => c.code !== 4010)).toEqual([]);
      expect(peak - start, `RSS went from ${start >> 20} MB to ${peak >> 20} MB`).toBeLessThan(RSS_SLACK);
    },
    HOSTILE_MS + 180_000,
  );
});

describe('the node position hash on Redis', () => {
  let redis: RedisServer;
  let edge: EdgeProcess;
  beforeAll(async () => {
    redis = await startRedis();
    edge = await startEdge({ REDIS_URL: redis.url, BROADCAST_API_KEY: KEY, WORKER_ID: 'pos-1' });
  }, 60_000);
  afterAll(async () => {
    await edge?.stop();
    await redis?.stop();
  });

  const fields = (): number => {
    const key = redis.cli('--scan', '--pattern', '*node:pos-1:pos').trim();
    return key === '' ? 0 : Number(redis.cli('HLEN', key).trim());
  };

  it('keeps a field only for the channels the node still holds', async () => {
    const channels = Array.from({ length: 12 }, (_, i) => `pos:${i}`);
    const { client } = await connect(edge.url, await hsToken({ sub: 'pos', channels: ['pos:*'] }));
    for (const channel of channels) expect(await client.request({ type: 'subscribe', channel })).toMatchObject({ success: true });
    for (const channel of channels) {
      const res = await fetch(`${edge.http}/broadcast`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: JSON.stringify({ channel, data: 1 }) });
      expect(res.status).toBe(202);
    }
    await waitFor(() => (fields() === 12 ? true : undefined), 15_000, 'a field per held channel');
    for (const channel of channels.slice(4)) await client.request({ type: 'unsubscribe', channel });
    await waitFor(() => (fields() === 4 ? true : undefined), 15_000, 'fields of released channels removed');
    client.close();
    await waitFor(() => (fields() === 0 ? true : undefined), 15_000, 'no field once the node holds no channel');
  });
});
