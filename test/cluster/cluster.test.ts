import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, TestClient, type EdgeProcess, type Frame } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';
import { waitForRecordedSeq, type RedisCli } from '../harness/positions.js';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '../harness/redis.js';

const KEY = 'bk-cluster';
const HEARTBEAT_MS = 300;

async function broadcast(edge: EdgeProcess, channel: string, data: unknown, event = 'tick'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${edge.http}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, event, data }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function health(edge: EdgeProcess): Promise<Record<string, any>> {
  const res = await fetch(`${edge.http}/health`);
  return (await res.json()) as Record<string, any>;
}

function startNodes(env: Record<string, string>, ids: string[]): Promise<EdgeProcess[]> {
  return Promise.all(ids.map((id) => startEdge({ ...env, WORKER_ID: id, BROADCAST_API_KEY: KEY, HEARTBEAT_MS: String(HEARTBEAT_MS) })));
}

/** Takes events of a channel until `count` have arrived, in arrival order. */
async function takeEvents(client: TestClient, channel: string, count: number, timeoutMs = 10_000): Promise<Frame[]> {
  const out: Frame[] = [];
  for (let i = 0; i < count; i++) out.push(await client.next((f) => f.type === 'event' && f['channel'] === channel, timeoutMs));
  return out;
}

const seqs = (frames: Frame[]) => frames.map((f) => f['seq']);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

interface Backend extends RedisCli {
  env: Record<string, string>;
  stop(): Promise<void>;
  /** Kills the whole store, keeps it down `downMs`, and starts it again empty. */
  restart(downMs: number): Promise<void>;
}

function clusterSuite(name: string, backend: () => Promise<Backend>) {
  describe(name, () => {
    let store: Backend;
    let stopBackend: () => Promise<void>;
    let restartBackend: (downMs: number) => Promise<void>;
    let env: Record<string, string>;
    const started: EdgeProcess[] = [];
    const nodes = async (...ids: string[]) => {
      const n = await startNodes(env, ids);
      started.push(...n);
      return n;
    };

    beforeAll(async () => {
      const b = await backend();
      store = b;
      env = b.env;
      stopBackend = b.stop;
      restartBackend = b.restart;
    });
    afterEach(async () => {
      await Promise.all(started.splice(0).map((e) => e.stop()));
    });
    afterAll(async () => {
      await stopBackend?.();
    });

    it('delivers across nodes, with one seq sequence per channel, and counts every worker', async () => {
      const [a, b, c] = await nodes('a1', 'b1', 'c1');
      const { client: onA } = await connect(a!.url, await hsToken({ sub: 'u1', channels: ['room:*'], publish: ['room:*'] }));
      const { client: onC } = await connect(c!.url, await hsToken({ sub: 'u2', channels: ['room:*'], publish: ['room:*'] }));
      const channels = Array.from({ length: 6 }, (_, i) => `room:${name.length}-${i}`);
      for (const ch of channels) {
        expect(await onA.request({ type: 'subscribe', channel: ch })).toMatchObject({ success: true, seq: 0 });
        expect(await onC.request({ type: 'subscribe', channel: ch })).toMatchObject({ success: true });
      }
      for (const ch of channels) {
        expect((await broadcast(b!, ch, { from: 'b' })).status).toBe(202);
        expect(await onC.request({ type: 'publish', channel: ch, event: 'chat', data: { from: 'c' } })).toMatchObject({ type: 'ack', seq: 2 });
      }
      for (const ch of channels) {
        const got = await takeEvents(onA, ch, 2);
        expect(seqs(got)).toEqual([1, 2]);
        expect(got[1]).toMatchObject({ event: 'chat', data: { from: 'c' } });
      }
      await waitFor(async () => ((await health(b!)).websocket.total_workers === 3 ? true : undefined), 5000, 'three workers');
      await waitFor(async () => {
        const res = await fetch(`${a!.http}/health`);
        return res.headers.get('x-websocket-total-workers') === '3' && Number(res.headers.get('x-websocket-total-sessions')) >= 2 ? true : undefined;
      }, 5000, 'cluster-wide figures in the headers');
      expect((await health(a!)).redis.status).toBe('ok');
      onA.close();
      onC.close();
    });

    it('resumes a session on another node after kill -9, every event once and in order', async () => {
      const [a, b] = await nodes('a2', 'b2');
      const token = await hsToken({ sub: 'resumer', channels: ['feed:*'] });
      const { client, hello } = await connect(a!.url, token);
      const channel = `feed:${name.length}`;
      await client.request({ type: 'subscribe', channel });
      for (let i = 1; i <= 5; i++) await broadcast(b!, channel, { i });
      expect(seqs(await takeEvents(client, channel, 5))).toEqual(range(1, 5));
      // The node records where it stood in batches: see that batch land before killing it.
      expect(await waitForRecordedSeq(store, 'a2', channel, 5)).toBe(5);
      a!.kill('SIGKILL');
      await client.closed;
      for (let i = 6; i <= 10; i++) await broadcast(b!, channel, { i });

      const { client: again, hello: hello2 } = await connect(b!.url, token, { session_id: hello['session_id'] });
      expect(hello2).toMatchObject({ type: 'auth_success', resumed: true, session_id: hello['session_id'], node_id: 'b2' });
      const result = await again.next('subscription_result');
      expect(result).toMatchObject({ channel, success: true, recovered: true });
      expect(seqs(await takeEvents(again, channel, 5))).toEqual(range(6, 10));
      await broadcast(b!, channel, { i: 11 });
      // Event 12 is a barrier through the same path: once it is here, any duplicate or stray
      // replay of 1..11 would have arrived before it.
      await broadcast(b!, channel, { i: 12 });
      expect(seqs(await takeEvents(again, channel, 2))).toEqual([11, 12]);
      expect(again.unread().filter((f) => f.type === 'event')).toEqual([]);
      expect(seqs(again.frames.filter((f) => f.type === 'event'))).toEqual(range(6, 12));
      // The killed node drops out within three heartbeats.
      await waitFor(async () => ((await health(b!)).websocket.total_workers === 1 ? true : undefined), HEARTBEAT_MS * 3 + 3000, 'dead node dropped');
      again.close();
    });

    it('replays since across nodes and says recovered:false past the retained history', async () => {
      const [a, b] = await startNodes({ ...env, HISTORY_SIZE: '4' }, ['a3', 'b3']);
      started.push(a!, b!);
      const channel = `hist:${name.length}`;
      for (let i = 1; i <= 10; i++) await broadcast(a!, channel, { i });
      const { client } = await connect(b!.url, await hsToken({ sub: 'h', channels: ['hist:*'] }));
      expect(await client.request({ type: 'subscribe', channel, since: 7 })).toMatchObject({ success: true, seq: 10, recovered: true });
      expect(seqs(await takeEvents(client, channel, 3))).toEqual([8, 9, 10]);
      const { client: late } = await connect(b!.url, await hsToken({ sub: 'h2', channels: ['hist:*'] }));
      expect(await late.request({ type: 'subscribe', channel, since: 2 })).toMatchObject({ success: true, seq: 10, recovered: false });
      expect(seqs(await takeEvents(late, channel, 4))).toEqual([7, 8, 9, 10]);
      client.close();
      late.close();
    });

    it('sends a direct message to every connection of a user on two other nodes', async () => {
      const [a, b, c] = await nodes('a4', 'b4', 'c4');
      const { client: alice } = await connect(a!.url, await hsToken({ sub: 'alice' }));
      const { client: bob1, hello: bob1Hello } = await connect(b!.url, await hsToken({ sub: 'bob' }));
      const { client: bob2, hello: bob2Hello } = await connect(c!.url, await hsToken({ sub: 'bob' }));
      // Both of bob's connections are in the cluster-wide per-user registry before anyone looks him up.
      await waitFor(() => {
        const held = store.cli('hkeys', 'sy:user:{bob}');
        return [bob1Hello, bob2Hello].every((h) => held.includes(String(h['connection_id']))) || undefined;
      }, 10_000, "bob's two connections registered");
      expect(await alice.request({ type: 'direct', to: 'user:bob', data: { hi: 1 } })).toMatchObject({ type: 'ack' });
      for (const bob of [bob1, bob2]) expect(await bob.next('direct')).toMatchObject({ user_id: 'alice', data: { hi: 1 } });
      expect(await alice.request({ type: 'direct', to: bob2Hello['connection_id'], data: { only: 2 } })).toMatchObject({ type: 'ack' });
      expect(await bob2.next('direct')).toMatchObject({ data: { only: 2 } });
      expect(await alice.request({ type: 'direct', to: 'user:nobody', data: 1 })).toMatchObject({ type: 'error', code: 'not_found' });
      expect(await alice.request({ type: 'direct', to: 'c_doesnotexist', data: 1 })).toMatchObject({ type: 'error', code: 'not_found' });
      for (const c of [alice, bob1, bob2]) c.close();
    });

    it('holds MAX_CONNECTIONS_PER_USER across nodes, and the limit heals when a node dies', async () => {
      const [a, b] = await startNodes({ ...env, MAX_CONNECTIONS_PER_USER: '2' }, ['a7', 'b7']);
      started.push(a!, b!);
      const token = await hsToken({ sub: `limited-${name.length}` });
      const first = await connect(a!.url, token);
      const second = await connect(a!.url, token);
      expect([first.hello.type, second.hello.type]).toEqual(['auth_success', 'auth_success']);
      const refused = await connect(b!.url, token);
      expect(refused.hello).toMatchObject({ type: 'auth_error', error: 'too_many_connections' });
      expect((await refused.client.closed)).toEqual({ code: 4009, reason: 'too_many_connections' });
      a!.kill('SIGKILL');
      await a!.exited;
      // Once the registry has dropped node a, its connections stop counting.
      const healed = await waitFor(async () => {
        const attempt = await connect(b!.url, token);
        if (attempt.hello.type === 'auth_success') return attempt.client;
        attempt.client.close();
        return undefined;
      }, HEARTBEAT_MS * 3 + 5000, 'admission after node a died');
      healed.close();
    });

    it('holds the per-user publish budget across nodes', async () => {
      const [a, b] = await startNodes({ ...env, USER_RATE_LIMIT_PER_S: '3' }, ['a8', 'b8']);
      started.push(a!, b!);
      const user = `chatty-${name.length}`;
      const token = await hsToken({ sub: user, publish: ['talk:*'] });
      const { client: onA } = await connect(a!.url, token);
      const { client: onB } = await connect(b!.url, token);
      const replies = await Promise.all(
        Array.from({ length: 16 }, (_, i) => (i % 2 ? onA : onB).request({ type: 'publish', channel: 'talk:1', data: i })),
      );
      const limited = replies.filter((r) => r.type === 'error' && r['code'] === 'rate_limited');
      // Each node counts locally and shares its counts every 50 ms, so within one window the two
      // nodes may each grant up to the budget (3) before they learn of the other; the burst can
      // straddle two windows. So at most 2 nodes × 2 windows × 3 = 12 of 16 pass.
      expect(limited.length).toBeGreaterThanOrEqual(4);
      expect(replies.filter((r) => r.type === 'ack').length).toBeLessThanOrEqual(12);
      // Sharing, deterministically: within one window, A spends the whole budget; once A's count
      // is in Redis and B has synced once (its one publish may overshoot, as documented), B
      // refuses on what A used and A on its own count. The scenario must fit in one wall-clock
      // second (the window); one that straddles a boundary proves nothing and is run again.
      const second = () => Math.floor(Date.now() / 1000);
      const windowTotal = (s: number) => Number(store.cli('get', `sy:rl:{${user}}:${s}`).trim() || '0');
      const publish = (c: TestClient) => c.request({ type: 'publish', channel: 'talk:1', data: 'late' });
      let checked = false;
      let used = second();
      for (let attempt = 0; attempt < 20 && !checked; attempt++) {
        await waitFor(() => (second() > used && Date.now() % 1000 < 200) || undefined, 3000, 'the start of a fresh window');
        const s = second();
        used = s;
        const fromA = [await publish(onA), await publish(onA), await publish(onA)];
        if (second() !== s) continue;
        expect(fromA.map((r) => r.type)).toEqual(['ack', 'ack', 'ack']);
        const synced = async (total: number) => {
          while (second() === s) if (windowTotal(s) >= total) return true;
          return false;
        };
        if (!(await synced(3))) continue;
        const overshoot = await publish(onB);
        if (!(await synced(overshoot.type === 'ack' ? 4 : 3))) continue;
        const refused = [await publish(onB), await publish(onA)];
        if (second() !== s) continue;
        expect(refused).toEqual([expect.objectContaining({ type: 'error', code: 'rate_limited' }), expect.objectContaining({ type: 'error', code: 'rate_limited' })]);
        checked = true;
      }
      expect(checked, 'the sharing scenario fitted in one window in 20 tries').toBe(true);
      expect(onA.ws.readyState).toBe(onA.ws.OPEN);
      onA.close();
      onB.close();
    });

    it('survives a Redis restart: degraded meanwhile, local delivery goes on, then recovered:false and live again', async () => {
      const [a, b] = await nodes('a5', 'b5');
      const channel = 'restart:1';
      const { client } = await connect(a!.url, await hsToken({ sub: 'r', channels: ['restart:*'], publish: ['restart:*'] }));
      await client.request({ type: 'subscribe', channel });
      await broadcast(b!, channel, { before: true });
      expect(seqs(await takeEvents(client, channel, 1))).toEqual([1]);
      await restartBackend(1500).then(() => undefined);
      // Redis is back (empty). The node resubscribes; the reset is announced; new events flow.
      // Each node finds Redis again in its own time (on a Redis Cluster, a node whose first look
      // finds cluster_state:fail backs off for seconds). A publish on a node still without Redis
      // is answered 202 degraded (seq null) and reaches that node's own clients only, so it
      // would never reach a client on the other node: wait for both, and for a stored publish.
      for (const node of [a!, b!]) await waitFor(async () => ((await health(node)).status === 'healthy' ? true : undefined), 15_000, 'healthy again');
      await waitFor(async () => {
        const res = await broadcast(b!, channel, { after: true });
        return res.status === 202 && typeof res.body['seq'] === 'number' ? true : undefined;
      }, 15_000, 'a stored publish after the restart');
      const after = await client.next((f) => f.type === 'event' && (f['data'] as Record<string, unknown>)['after'] === true, 15_000);
      expect(after['seq']).toBe(1);
      expect(client.frames.some((f) => f.type === 'subscription_result' && f['channel'] === channel && f['recovered'] === false)).toBe(true);
      client.close();
    });

    it('reports degraded while Redis is down, turns not-ready past the grace, answers a replay unavailable, keeps local delivery working', async () => {
      const [a] = await startNodes({ ...env, READY_REDIS_GRACE_MS: '500' }, ['a6']);
      started.push(a!);
      expect((await fetch(`${a!.http}/ready`)).status).toBe(200);
      const { client } = await connect(a!.url, await hsToken({ sub: 'd', channels: ['down:*'], publish: ['down:*'] }));
      await client.request({ type: 'subscribe', channel: 'down:1' });
      expect(await client.request({ type: 'subscribe', channel: 'down:2' })).toMatchObject({ success: true });
      const killed = restartBackend(8000);
      await waitFor(async () => {
        const h = await health(a!);
        return h.status === 'degraded' && h.redis.status === 'down' ? true : undefined;
      }, 10_000, 'degraded');
      await waitFor(async () => {
        const res = await fetch(`${a!.http}/ready`);
        const body = (await res.json()) as { reasons?: string[] };
        return res.status === 503 && body.reasons?.some((r) => r.includes('redis')) ? true : undefined;
      }, 10_000, '/ready 503 while Redis is away');
      expect((await health(a!)).not_ready).toEqual([expect.stringContaining('redis unreachable')]);
      // A replay needs the store: asked for one, the node says it cannot (unavailable); the
      // connection and its other subscriptions stay.
      expect(await client.request({ type: 'subscribe', channel: 'down:2', since: 0 }, 15_000)).toMatchObject({
        type: 'subscription_result',
        channel: 'down:2',
        success: false,
        error: 'unavailable',
      });
      const ack = await client.request({ type: 'publish', channel: 'down:1', event: 'local', data: { x: 1 } });
      expect(ack).toMatchObject({ type: 'ack', degraded: true });
      expect(await client.next((f) => f.type === 'event' && f['event'] === 'local')).toMatchObject({ channel: 'down:1', data: { x: 1 } });
      // The refused replay did not end the live subscription it was asked on: down:2 still delivers.
      expect(client.frames.filter((f) => f.type === 'unsubscribed')).toEqual([]);
      await client.request({ type: 'publish', channel: 'down:2', event: 'still', data: { x: 2 } });
      expect(await client.next((f) => f.type === 'event' && f['event'] === 'still')).toMatchObject({ channel: 'down:2', data: { x: 2 } });
      // A new channel cannot be joined without the store: answered unavailable, not left waiting for Redis.
      expect(await client.request({ type: 'subscribe', channel: 'down:3' }, 15_000)).toMatchObject({
        type: 'subscription_result',
        channel: 'down:3',
        success: false,
        error: 'unavailable',
      });
      await killed;
      await waitFor(async () => ((await health(a!)).status === 'healthy' ? true : undefined), 15_000, 'healthy again');
      await waitFor(async () => ((await fetch(`${a!.http}/ready`)).status === 200 ? true : undefined), 5000, 'ready again');
      expect(await client.request({ type: 'subscribe', channel: 'down:2', since: 0 }, 15_000)).toMatchObject({ channel: 'down:2', success: true });
      client.close();
    });
  });
}

clusterSuite('three nodes on one Redis', async () => {
  const redis: RedisServer = await startRedis();
  return { env: { REDIS_URL: redis.url }, stop: () => redis.stop(), restart: (ms) => redis.restart(ms), cli: (...args) => redis.cli(...args) };
});

clusterSuite('three nodes on a 3-master Redis Cluster', async () => {
  const cluster: RedisCluster = await startRedisCluster(3);
  return { env: { REDIS_CLUSTER_NODES: cluster.nodes.join(',') }, stop: () => cluster.stop(), restart: (ms) => cluster.restart(ms), cli: (...args) => cluster.cli(...args) };
});
