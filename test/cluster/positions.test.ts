import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChildClient, broadcast } from '../clients/child.js';
import { connect, hsToken, startEdge, TestClient, type EdgeProcess, type Frame } from '../harness/index.js';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '../harness/redis.js';
import { DEBIAN_PYTHON } from '../harness/system.js';

/**
 * v1.1 "Resume with the client's own positions" (PROTOCOL.md §9): a resume `auth` that names
 * `positions` replays each named channel from right after the client's own seq, so a raw
 * client gets every event exactly once, also after kill -9 of the node that held its session.
 */
const KEY = 'bk-positions';
const RESUME_PY = fileURLToPath(new URL('../clients/py/resume.py', import.meta.url));

const seqs = (frames: readonly Frame[] | readonly Record<string, unknown>[]) => frames.map((f) => f['seq']);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function takeEvents(client: TestClient, channel: string, count: number, timeoutMs = 10_000): Promise<Frame[]> {
  const out: Frame[] = [];
  for (let i = 0; i < count; i++) out.push(await client.next((f) => f.type === 'event' && f['channel'] === channel, timeoutMs));
  return out;
}

/** Waits until no further event of `channel` arrives within `quietMs`, then returns all its unread events. */
async function settledEvents(client: TestClient, channel: string, quietMs = 300): Promise<Frame[]> {
  // sleep-ok: a quiet window after the exact events arrived, to catch a duplicate that would follow them
  await new Promise((r) => setTimeout(r, quietMs));
  return client.unread().filter((f) => f.type === 'event' && f['channel'] === channel);
}

describe('resume with positions, single node in memory', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: KEY });
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('replays a named channel from the client’s seq, other channels from the recorded position', async () => {
    const token = await hsToken({ sub: 'pos-mem', channels: ['pm:*'] });
    const { client, hello } = await connect(edge.url, token);
    for (const channel of ['pm:named', 'pm:other']) expect(await client.request({ type: 'subscribe', channel })).toMatchObject({ success: true });
    for (let i = 1; i <= 5; i++) {
      await broadcast(edge.http, KEY, 'pm:named', 'tick', { i });
      await broadcast(edge.http, KEY, 'pm:other', 'tick', { i });
    }
    expect(seqs(await takeEvents(client, 'pm:named', 5))).toEqual(range(1, 5));
    expect(seqs(await takeEvents(client, 'pm:other', 5))).toEqual(range(1, 5));
    client.close();
    await client.closed;
    for (let i = 6; i <= 8; i++) {
      await broadcast(edge.http, KEY, 'pm:named', 'tick', { i });
      await broadcast(edge.http, KEY, 'pm:other', 'tick', { i });
    }
    // The server recorded 5 on both; the client says it only got up to 2 on one of them.
    const { client: again, hello: hello2 } = await connect(edge.url, token, { session_id: hello['session_id'], positions: { 'pm:named': 2 } });
    expect(hello2).toMatchObject({ type: 'auth_success', resumed: true });
    expect(seqs(await takeEvents(again, 'pm:named', 6))).toEqual(range(3, 8));
    expect(seqs(await takeEvents(again, 'pm:other', 3))).toEqual(range(6, 8));
    const results = again.frames.filter((f) => f.type === 'subscription_result');
    expect(results).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ channel: 'pm:named', success: true, seq: 8, recovered: true }),
        expect.objectContaining({ channel: 'pm:other', success: true, seq: 8, recovered: true }),
      ]),
    );
    expect(await settledEvents(again, 'pm:named')).toEqual([]);
    again.close();
  });

  it('ignores positions for channels that are not in the session, and without a session', async () => {
    const token = await hsToken({ sub: 'pos-mem2', channels: ['pm:*'] });
    const { client, hello } = await connect(edge.url, token, { positions: { 'pm:x': 1 } });
    expect(hello).toMatchObject({ type: 'auth_success', resumed: false });
    expect(await client.request({ type: 'subscribe', channel: 'pm:kept' })).toMatchObject({ success: true });
    client.close();
    await client.closed;
    const { client: again, hello: hello2 } = await connect(edge.url, token, { session_id: hello['session_id'], positions: { 'pm:not-mine': 0 } });
    expect(hello2).toMatchObject({ resumed: true });
    expect(await again.next('subscription_result')).toMatchObject({ channel: 'pm:kept', success: true });
    expect(again.frames.filter((f) => f.type === 'subscription_result').map((f) => f['channel'])).toEqual(['pm:kept']);
    again.close();
  });

  describe('bad positions', () => {
    const bad: [string, unknown][] = [
      ['an array', [1, 2]],
      ['a string', 'pm:a=1'],
      ['a negative seq', { 'pm:a': -1 }],
      ['a fractional seq', { 'pm:a': 1.5 }],
      ['a string seq', { 'pm:a': '3' }],
      ['an invalid channel', { 'bad channel': 1 }],
    ];
    it.each(bad)('first-frame auth with %s: auth_error naming positions, close 4001', async (_name, positions) => {
      const client = new TestClient(edge.url);
      await client.opened;
      client.send({ type: 'auth', token: await hsToken({ sub: 'pos-bad' }), session_id: 'x', positions });
      const frame = await client.next('auth_error');
      expect(frame).toMatchObject({ type: 'auth_error', code: 'unauthenticated', error: expect.stringContaining('positions') });
      expect((await client.closed).code).toBe(4001);
    });

    it('on a live connection (token refresh): error bad_frame, connection stays', async () => {
      const token = await hsToken({ sub: 'pos-bad2' });
      const { client } = await connect(edge.url, token);
      const reply = await client.request({ type: 'auth', token, positions: { 'pm:a': -3 }, ref: 'bp' });
      expect(reply).toMatchObject({ type: 'error', code: 'bad_frame', ref: 'bp', error: expect.stringContaining('positions') });
      expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
      client.close();
    });
  });
});

function killSuite(name: string, backend: () => Promise<{ env: Record<string, string>; stop(): Promise<void> }>) {
  describe(name, () => {
    let env: Record<string, string>;
    let stopBackend: () => Promise<void>;
    const started: EdgeProcess[] = [];
    const children: ChildClient[] = [];
    const nodes = async (...ids: string[]) => {
      const n = await Promise.all(ids.map((id) => startEdge({ ...env, WORKER_ID: id, BROADCAST_API_KEY: KEY, HEARTBEAT_MS: '300' })));
      started.push(...n);
      return n;
    };
    beforeAll(async () => {
      const b = await backend();
      env = b.env;
      stopBackend = b.stop;
    });
    afterEach(async () => {
      await Promise.all(children.splice(0).map((c) => c.kill()));
      await Promise.all(started.splice(0).map((e) => e.stop()));
    });
    afterAll(async () => {
      await stopBackend?.();
    });

    it('TS raw client: kill -9 right after it got its events; resume with positions on another node gets each seq once', async () => {
      const [a, b] = await nodes(`${name.length}pa`, `${name.length}pb`);
      const channel = `pk:${name.length}`;
      const token = await hsToken({ sub: 'pos-kill', channels: ['pk:*'] });
      const { client, hello } = await connect(a!.url, token);
      await client.request({ type: 'subscribe', channel });
      const got: Frame[] = [];
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 4; i++) await broadcast(b!.http, KEY, channel, 'tick', { round, i });
        got.push(...(await takeEvents(client, channel, 4)));
      }
      // No pause: the node dies before it can record where the client stood.
      a!.kill('SIGKILL');
      await client.closed;
      for (let i = 0; i < 5; i++) await broadcast(b!.http, KEY, channel, 'tick', { after: i });
      const last = got.at(-1)!['seq'] as number;
      const { client: again, hello: hello2 } = await connect(b!.url, token, { session_id: hello['session_id'], positions: { [channel]: last } });
      expect(hello2).toMatchObject({ resumed: true, node_id: `${name.length}pb` });
      got.push(...(await takeEvents(again, channel, 5)));
      await broadcast(b!.http, KEY, channel, 'tick', { live: true });
      got.push(...(await takeEvents(again, channel, 1)));
      got.push(...(await settledEvents(again, channel)));
      expect(seqs(got)).toEqual(range(1, 18));
      again.close();
    });

    it('Python websockets raw client: kill -9 of its node, resume with positions elsewhere, every seq exactly once and in order', async () => {
      const [a, b, c] = await nodes(`${name.length}qa`, `${name.length}qb`, `${name.length}qc`);
      const channel = `pk:py${name.length}`;
      const token = await hsToken({ sub: 'pos-py', channels: ['pk:*'] });
      const py = new ChildClient(DEBIAN_PYTHON, [RESUME_PY, token, channel, '20', a!.url, c!.url, '--timeout', '40'], {
        env: { ...process.env, PYTHONUNBUFFERED: '1' },
      });
      children.push(py);
      await py.waitForFrame('subscription_result', (f) => f['ref'] === 'py-sub', 15_000);
      for (let i = 1; i <= 8; i++) await broadcast(b!.http, KEY, channel, 'tick', { i });
      await py.waitForFrame('event', (f) => f['seq'] === 8, 15_000);
      a!.kill('SIGKILL');
      for (let i = 9; i <= 14; i++) await broadcast(b!.http, KEY, channel, 'tick', { i });
      await py.waitForFrame('auth_success', (f) => f['resumed'] === true, 20_000);
      for (let i = 15; i <= 20; i++) await broadcast(b!.http, KEY, channel, 'tick', { i });
      const { code } = await py.exit(30_000);
      expect(code, `${py.stderr}\n${py.lines.join('\n')}`).toBe(0);
      const frames = py.frames();
      expect(frames.some((f) => f['type'] === 'py.disconnected')).toBe(true);
      expect(frames.find((f) => f['type'] === 'auth_success' && f['resumed'] === true)).toMatchObject({ node_id: `${name.length}qc` });
      const events = frames.filter((f) => f['type'] === 'event' && f['channel'] === channel);
      expect(seqs(events)).toEqual(range(1, 20));
      expect(events.map((e) => (e['data'] as { i: number }).i)).toEqual(range(1, 20));
    });
  });
}

killSuite('kill -9 on one Redis', async () => {
  const redis: RedisServer = await startRedis();
  return { env: { REDIS_URL: redis.url }, stop: () => redis.stop() };
});

killSuite('kill -9 on a 3-master Redis Cluster', async () => {
  const cluster: RedisCluster = await startRedisCluster(3);
  return { env: { REDIS_CLUSTER_NODES: cluster.nodes.join(',') }, stop: () => cluster.stop() };
});
