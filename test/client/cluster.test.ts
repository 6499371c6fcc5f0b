import { SwitchyardClient, type ConnectionState } from '@switchyard/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hsToken, startEdge, type EdgeProcess } from '../harness/index.js';
import { sleep, uniqueSub } from '../harness/keys.js';
import { waitForRecordedSeq } from '../harness/positions.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { BROADCAST_KEY, broadcast, range, record } from './helpers.js';

type Connected = Extract<ConnectionState, { status: 'connected' }>;

describe('@switchyard/client on a 3-node cluster (real Redis)', { timeout: 60_000 }, () => {
  let redis: RedisServer;
  const started: EdgeProcess[] = [];
  const clients: SwitchyardClient[] = [];
  const nodes = async (env: Record<string, string>, ...ids: string[]) => {
    const n = await Promise.all(
      // Three node processes starting at once on a busy 2-core machine: allow them time.
      ids.map((id) => startEdge({ REDIS_URL: redis.url, WORKER_ID: id, BROADCAST_API_KEY: BROADCAST_KEY, HEARTBEAT_MS: '300', DRAIN_TIMEOUT_MS: '4000', ...env }, { timeoutMs: 30_000 })),
    );
    started.push(...n);
    return n;
  };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(started.splice(0).map((e) => e.stop()));
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('kill -9 of its node: reconnects to another node and the app sees every event once, in order', async () => {
    const [a, b, c] = await nodes({}, 'k-a', 'k-b', 'k-c');
    const sub = uniqueSub('kill');
    const client = new SwitchyardClient({
      url: [a!.url, b!.url, c!.url],
      token: () => hsToken({ sub, channels: ['feed:*'] }),
      reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
    });
    clients.push(client);
    const rec = record(client);
    const first = (await client.waitForConnection()) as Connected;
    expect(first.nodeId).toBe('k-a');
    await client.subscribe('feed:kill');

    // A steady stream through node c, bounded in count; node a dies a third of the way in.
    const TOTAL = 90;
    const publisher = (async () => {
      for (let i = 1; i <= TOTAL; i++) {
        const r = await broadcast(c!, 'feed:kill', { i });
        expect(r.status).toBe(202);
        if (i === 30) a!.kill('SIGKILL');
        await sleep(15); // sleep-ok: paces the publisher into a steady stream; nothing waits on it
      }
    })();
    await publisher;
    const events = await rec.waitForEvents('feed:kill', TOTAL, 20_000);
    // Nothing extra trickles in afterwards: one more event is a barrier through the same path,
    // so any duplicate or stray replay would have reached the app before it.
    expect(events.map((e) => (e.data as { i: number }).i)).toEqual(range(1, TOTAL));
    expect((await broadcast(c!, 'feed:kill', { i: TOTAL + 1 })).status).toBe(202);
    await rec.waitForEvents('feed:kill', TOTAL + 1);
    expect(rec.seqs('feed:kill')).toEqual(range(1, TOTAL + 1));
    const now = client.state as Connected;
    expect(now.status).toBe('connected');
    expect(['k-b', 'k-c']).toContain(now.nodeId);
    expect(now.sessionId).toBe(first.sessionId);
    expect(now.resumed).toBe(true);
    expect(rec.states.some((s) => s.status === 'reconnecting' && s.closeCode === 1006)).toBe(true);
    expect(rec.gaps).toEqual([]);
  });

  it('drain (reconnect frame + 1012): comes back at once on another node, not after a backoff', async () => {
    const [a, b] = await nodes({}, 'd-a', 'd-b');
    const sub = uniqueSub('drain');
    const client = new SwitchyardClient({
      url: [a!.url, b!.url],
      token: () => hsToken({ sub, channels: ['feed:*'] }),
      // Any backoff would wait a minute: only the drain path can be quick.
      reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000, delay: () => 60_000 },
    });
    clients.push(client);
    const rec = record(client);
    await client.waitForConnection();
    await client.subscribe('feed:drain');
    for (let i = 1; i <= 5; i++) await broadcast(b!, 'feed:drain', { i });
    await rec.waitForEvents('feed:drain', 5);
    const from = rec.states.length;
    a!.kill('SIGTERM');
    const reconnecting = await rec.waitForState((s) => s.status === 'reconnecting', from);
    // DRAIN_TIMEOUT_MS 4000: the server's after_ms is at most 1000.
    expect(reconnecting).toMatchObject({ closeCode: 1012, attempt: 0 });
    expect((reconnecting as { delayMs: number }).delayMs).toBeLessThanOrEqual(1000);
    for (let i = 6; i <= 10; i++) await broadcast(b!, 'feed:drain', { i });
    const back = (await rec.waitForState((s) => s.status === 'connected', from, 10_000)) as Connected;
    expect(back).toMatchObject({ nodeId: 'd-b', resumed: true });
    await rec.waitForEvents('feed:drain', 10);
    expect(rec.seqs('feed:drain')).toEqual(range(1, 10));
    expect((await a!.exited).code).toBe(0);
  });

  it('reports a gap when the missed events are no longer retained, then goes on in order', async () => {
    const [a, b] = await nodes({ HISTORY_SIZE: '5' }, 'g-a', 'g-b');
    const sub = uniqueSub('gap');
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    let asked = 0;
    const client = new SwitchyardClient({
      // The first connection goes to a; later ones wait until the test lets them through, to b.
      url: async () => {
        if (asked++ === 0) return a!.url;
        await held;
        return b!.url;
      },
      token: () => hsToken({ sub, channels: ['feed:*'] }),
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    clients.push(client);
    const rec = record(client);
    await client.subscribe('feed:gap');
    for (let i = 1; i <= 3; i++) await broadcast(b!, 'feed:gap', { i });
    await rec.waitForEvents('feed:gap', 3);
    // The node records positions in batches: see a's batch land before killing it.
    expect(await waitForRecordedSeq(redis, 'g-a', 'feed:gap', 3)).toBe(3);
    a!.kill('SIGKILL');
    await rec.waitForState((s) => s.status === 'connecting' && s.attempt > 0);
    for (let i = 4; i <= 20; i++) await broadcast(b!, 'feed:gap', { i });
    release();
    await rec.waitForState((s) => s.status === 'connected' && s.nodeId === 'g-b');
    // The retained five arrive with the restored subscription; only then is 21 live (published
    // earlier, it would be one of the retained five instead).
    await rec.waitForEvents('feed:gap', 3 + 5);
    await broadcast(b!, 'feed:gap', { i: 21 });
    const events = await rec.waitForEvents('feed:gap', 3 + 6);
    expect(rec.gaps).toEqual([{ kind: 'gap', channel: 'feed:gap', lastSeq: 3, seq: 20, epoch: expect.any(String) }]);
    // The last 5 retained (16..20), then live 21; each once, in order.
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 16, 17, 18, 19, 20, 21]);
  });
});
