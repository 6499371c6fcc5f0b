import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess, type Frame, type TestClient } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '../harness/redis.js';

/** v1.1 presence (PROTOCOL.md §9): `presence`, `join`/`leave`, `GET /presence/<channel>`. */
const KEY = 'bk-presence';
const PRESENCE_ENV = { PRESENCE_CHANNELS: 'room:*,big:*', PRESENCE_MAX_USERS: '3', BROADCAST_API_KEY: KEY };

function token(sub: string, info?: unknown, channels = ['room:*', 'big:*', 'plain:*']): Promise<string> {
  return hsToken({ sub, channels, ...(info !== undefined && { extra: { info } as Record<string, unknown> }) });
}

async function member(edge: EdgeProcess, sub: string, channel: string, info?: unknown): Promise<TestClient> {
  const { client } = await connect(edge.url, await token(sub, info));
  expect(await client.request({ type: 'subscribe', channel })).toMatchObject({ type: 'subscription_result', success: true });
  return client;
}

const isJoin = (channel: string, user: string) => (f: Frame) => f.type === 'join' && f['channel'] === channel && f['user_id'] === user;
const isLeave = (channel: string, user: string) => (f: Frame) => f.type === 'leave' && f['channel'] === channel && f['user_id'] === user;

async function httpPresence(edge: EdgeProcess, channel: string, auth?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${edge.http}/presence/${channel}`, auth === undefined ? {} : { headers: { authorization: `Bearer ${auth}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('presence on a single node in memory', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  const track = (c: TestClient) => (clients.push(c), c);
  beforeAll(async () => {
    edge = await startEdge(PRESENCE_ENV);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('join once per user, presence with counts and info, leave when the last connection goes', async () => {
    const alice = track(await member(edge, 'alice', 'room:1', { name: 'Alice' }));
    expect(await alice.next(isJoin('room:1', 'alice'))).toEqual({ type: 'join', channel: 'room:1', user_id: 'alice', info: { name: 'Alice' } });
    const bob = track(await member(edge, 'bob', 'room:1'));
    expect(await alice.next(isJoin('room:1', 'bob'))).toEqual({ type: 'join', channel: 'room:1', user_id: 'bob' });
    const alice2 = track(await member(edge, 'alice', 'room:1', { name: 'Alice' }));

    const result = await bob.request({ type: 'presence', channel: 'room:1', ref: 'p1' });
    expect(result).toEqual({
      type: 'presence_result',
      channel: 'room:1',
      count: 2,
      connections: 3,
      users: [
        { user_id: 'alice', connections: 2, info: { name: 'Alice' } },
        { user_id: 'bob', connections: 1 },
      ],
      truncated: false,
      ref: 'p1',
    });
    // The second connection of alice was no join; an unsubscribe of one of two is no leave.
    expect(await alice2.request({ type: 'unsubscribe', channel: 'room:1' })).toMatchObject({ type: 'unsubscribed' });
    expect(await bob.request({ type: 'presence', channel: 'room:1' })).toMatchObject({ count: 2, connections: 2 });
    alice.close();
    const leave = await bob.next(isLeave('room:1', 'alice'));
    expect(leave).toEqual({ type: 'leave', channel: 'room:1', user_id: 'alice' });
    expect(bob.frames.filter((f) => f.type === 'join' && f['user_id'] === 'alice')).toHaveLength(0); // alice joined before bob subscribed
    expect(alice.frames.filter(isJoin('room:1', 'alice'))).toHaveLength(1);
    expect(await bob.request({ type: 'presence', channel: 'room:1' })).toMatchObject({ count: 1, connections: 1, users: [{ user_id: 'bob', connections: 1 }] });
  });

  it('join and leave carry no seq and are not replayed', async () => {
    const watcher = track(await member(edge, 'watcher', 'room:seq'));
    const passer = track(await member(edge, 'passer', 'room:seq'));
    const join = await watcher.next(isJoin('room:seq', 'passer'));
    expect(join).not.toHaveProperty('seq');
    passer.close();
    expect(await watcher.next(isLeave('room:seq', 'passer'))).not.toHaveProperty('seq');
    const r = await fetch(`${edge.http}/broadcast`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'room:seq', data: 1 }) });
    expect(((await r.json()) as { seq: number }).seq).toBe(1);
    const late = track(await member(edge, 'late', 'room:seq'));
    expect(await late.request({ type: 'subscribe', channel: 'room:seq', since: 0 })).toMatchObject({ success: true, recovered: true });
    await late.next((f) => f.type === 'event');
    expect(late.frames.filter((f) => f.type === 'join' || f.type === 'leave').map((f) => f['user_id'])).toEqual(['late']);
  });

  it('presence is forbidden without the read right, not_found on a channel without presence, bad_channel on a bad name', async () => {
    const { client } = await connect(edge.url, await hsToken({ sub: 'outsider', channels: ['plain:*'] }));
    track(client);
    expect(await client.request({ type: 'presence', channel: 'room:1', ref: 'f' })).toEqual({ type: 'error', code: 'forbidden', error: expect.any(String), ref: 'f' });
    expect(await client.request({ type: 'presence', channel: 'plain:1', ref: 'n' })).toEqual({ type: 'error', code: 'not_found', error: expect.any(String), ref: 'n' });
    expect(await client.request({ type: 'presence', channel: 'bad channel', ref: 'b' })).toMatchObject({ type: 'error', code: 'bad_channel', ref: 'b' });
    expect(await client.request({ type: 'presence', ref: 'm' })).toMatchObject({ type: 'error', code: 'bad_frame', ref: 'm' });
  });

  it('truncates past PRESENCE_MAX_USERS and ignores an info claim over 1 KiB', async () => {
    for (const sub of ['u1', 'u2', 'u3', 'u4', 'u5']) track(await member(edge, sub, 'big:1', sub === 'u1' ? { blob: 'x'.repeat(1100) } : { n: sub }));
    const result = await clients[0]!.request({ type: 'presence', channel: 'big:1' });
    expect(result).toMatchObject({ type: 'presence_result', count: 5, connections: 5, truncated: true });
    const users = result['users'] as Record<string, unknown>[];
    expect(users.map((u) => u['user_id'])).toEqual(['u1', 'u2', 'u3']);
    expect(users[0]).toEqual({ user_id: 'u1', connections: 1 });
    expect(users[1]).toEqual({ user_id: 'u2', connections: 1, info: { n: 'u2' } });
  });

  it('GET /presence/<channel>: the same body with the broadcast key or a JWT that may read; 401, 403, 404, 400 otherwise', async () => {
    track(await member(edge, 'hanna', 'room:http', { name: 'H' }));
    const expected = { channel: 'room:http', count: 1, connections: 1, users: [{ user_id: 'hanna', connections: 1, info: { name: 'H' } }], truncated: false };
    expect(await httpPresence(edge, 'room:http', KEY)).toEqual({ status: 200, body: expected });
    expect(await httpPresence(edge, 'room:http', await token('reader'))).toEqual({ status: 200, body: expected });
    expect((await httpPresence(edge, 'room:http')).status).toBe(401);
    expect((await httpPresence(edge, 'room:http', 'not-the-key')).status).toBe(401);
    expect(await httpPresence(edge, 'room:http', await hsToken({ sub: 'x', channels: ['plain:*'] }))).toMatchObject({ status: 403, body: { code: 'forbidden' } });
    expect(await httpPresence(edge, 'plain:1', KEY)).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect(await httpPresence(edge, 'bad%20name', KEY)).toMatchObject({ status: 400, body: { code: 'bad_channel' } });
  });
});

function clusterSuite(name: string, backend: () => Promise<{ env: Record<string, string>; stop(): Promise<void> }>) {
  describe(name, () => {
    let env: Record<string, string>;
    let stopBackend: () => Promise<void>;
    const started: EdgeProcess[] = [];
    const clients: TestClient[] = [];
    const TTL_S = 2;
    beforeAll(async () => {
      const b = await backend();
      env = b.env;
      stopBackend = b.stop;
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) c.close();
      await Promise.all(started.splice(0).map((e) => e.stop()));
    });
    afterAll(async () => {
      await stopBackend?.();
    });

    it('presence and join/leave agree on every node; a killed node’s users leave within PRESENCE_TTL_S', async () => {
      const tag = name.length;
      const nodes = await Promise.all(
        ['a', 'b', 'c'].map((id) => startEdge({ ...env, ...PRESENCE_ENV, PRESENCE_MAX_USERS: '10', WORKER_ID: `${id}${tag}`, PRESENCE_TTL_S: String(TTL_S), HEARTBEAT_MS: '300' })),
      );
      started.push(...nodes);
      const [a, b, c] = nodes as [EdgeProcess, EdgeProcess, EdgeProcess];
      const channel = `room:k${tag}`;
      const onA = await member(a, 'ann', channel, { node: 'a' });
      const onB = await member(b, 'ben', channel);
      const onC = await member(c, 'cat', channel);
      const onC2 = await member(c, 'ann', channel, { node: 'c' });
      clients.push(onA, onB, onC, onC2);
      const doomed = await member(a, 'dan', channel);
      for (const watcher of [onA, onB, onC]) await watcher.next(isJoin(channel, 'dan'), 10_000);
      // Everyone already there saw the later arrivals join, once.
      await onA.next(isJoin(channel, 'ben'), 10_000);
      await onA.next(isJoin(channel, 'cat'), 10_000);
      await onB.next(isJoin(channel, 'cat'), 10_000);
      expect(onA.frames.filter(isJoin(channel, 'ann'))).toHaveLength(1);

      const answers = await Promise.all([onA, onB, onC].map((cl) => cl.request({ type: 'presence', channel })));
      for (const r of answers) {
        expect(r).toMatchObject({ type: 'presence_result', channel, count: 4, connections: 5, truncated: false });
        expect(r['users']).toEqual(answers[0]!['users']);
      }
      expect((answers[0]!['users'] as { user_id: string }[]).map((u) => u.user_id)).toEqual(['ann', 'ben', 'cat', 'dan']);
      expect(answers[0]!['users']).toContainEqual({ user_id: 'ann', connections: 2, info: expect.objectContaining({ node: expect.any(String) }) });
      for (const edge of nodes) expect((await httpPresence(edge, channel, KEY)).body).toMatchObject({ count: 4, connections: 5 });

      // An unsubscribe on one node is a leave on all.
      expect(await onB.request({ type: 'unsubscribe', channel })).toMatchObject({ type: 'unsubscribed' });
      for (const watcher of [onA, onC]) await watcher.next(isLeave(channel, 'ben'), 10_000);

      // kill -9: dan (only on a) leaves everywhere within PRESENCE_TTL_S; ann (also on c) stays.
      a.kill('SIGKILL');
      const killedAt = Date.now();
      await doomed.closed;
      await onC.next(isLeave(channel, 'dan'), TTL_S * 1000 + 10_000);
      const tookMs = Date.now() - killedAt;
      expect(tookMs).toBeLessThan(TTL_S * 1000 + 1500);
      expect(onC.frames.filter(isLeave(channel, 'ann'))).toHaveLength(0);
      for (const edge of [b, c]) {
        expect((await httpPresence(edge, channel, KEY)).body).toMatchObject({
          count: 2,
          connections: 2,
          users: [
            { user_id: 'ann', connections: 1, info: { node: 'c' } },
            { user_id: 'cat', connections: 1 },
          ],
        });
      }
    });

    it('truncation, forbidden and the HTTP query’s key on a cluster', async () => {
      const tag = name.length;
      const [a, b] = (await Promise.all([
        startEdge({ ...env, ...PRESENCE_ENV, PRESENCE_MAX_USERS: '10', WORKER_ID: `ta${tag}`, PRESENCE_TTL_S: String(TTL_S), HEARTBEAT_MS: '300' }),
        startEdge({ ...env, ...PRESENCE_ENV, PRESENCE_MAX_USERS: '2', WORKER_ID: `tb${tag}`, PRESENCE_TTL_S: String(TTL_S), HEARTBEAT_MS: '300' }),
      ])) as [EdgeProcess, EdgeProcess];
      started.push(a, b);
      const channel = `big:t${tag}`;
      for (const [edge, sub] of [[a, 't1'], [b, 't2'], [a, 't3'], [b, 't4'], [a, 't5']] as const) clients.push(await member(edge, sub, channel));
      await waitFor(async () => ((await httpPresence(a, channel, KEY)).body['count'] === 5 ? true : undefined), 10_000, 'five present');
      const small = await clients[1]!.request({ type: 'presence', channel });
      expect(small).toMatchObject({ type: 'presence_result', count: 5, connections: 5, truncated: true });
      expect(small['users']).toHaveLength(2);
      const viaHttp = await httpPresence(b, channel, KEY);
      expect(viaHttp).toMatchObject({ status: 200, body: { channel, count: 5, connections: 5, truncated: true } });
      expect(viaHttp.body['users']).toHaveLength(2);
      expect(viaHttp.body).not.toHaveProperty('type');
      expect(await httpPresence(a, channel, KEY)).toMatchObject({ status: 200, body: { count: 5, truncated: false } });
      expect((await httpPresence(a, channel)).status).toBe(401);
      expect((await httpPresence(b, channel, 'wrong')).status).toBe(401);
      const { client: outsider } = await connect(b.url, await hsToken({ sub: 'outsider', channels: ['plain:*'] }));
      clients.push(outsider);
      expect(await outsider.request({ type: 'presence', channel, ref: 'x' })).toMatchObject({ type: 'error', code: 'forbidden', ref: 'x' });
    });

    it('a node that stops heartbeating presence is given up, then restores its users when it comes back', async () => {
      const tag = name.length;
      const [a, b] = (await Promise.all(
        ['ra', 'rb'].map((id) => startEdge({ ...env, ...PRESENCE_ENV, PRESENCE_MAX_USERS: '10', WORKER_ID: `${id}${tag}`, PRESENCE_TTL_S: String(TTL_S), HEARTBEAT_MS: '300' })),
      )) as [EdgeProcess, EdgeProcess];
      started.push(a, b);
      const channel = `room:r${tag}`;
      const watcher = await member(b, 'wat', channel);
      const paused = await member(a, 'pau', channel);
      clients.push(watcher, paused);
      await watcher.next(isJoin(channel, 'pau'), 10_000);
      a.kill('SIGSTOP');
      try {
        await watcher.next(isLeave(channel, 'pau'), TTL_S * 1000 + 10_000);
      } finally {
        a.kill('SIGCONT');
      }
      // Back: its next heartbeat finds it was given up and announces its users again.
      expect(await watcher.next(isJoin(channel, 'pau'), 10_000)).toEqual({ type: 'join', channel, user_id: 'pau' });
      await waitFor(async () => ((await httpPresence(b, channel, KEY)).body['count'] === 2 ? true : undefined), 10_000, 'pau present again');
    });
  });
}

describe('presence heals after Redis lost its data', () => {
  let redis: RedisServer;
  const started: EdgeProcess[] = [];
  const clients: TestClient[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(started.splice(0).map((e) => e.stop()));
    await redis?.stop();
  });

  it('every node puts its users back after a Redis restart', async () => {
    const nodes = await Promise.all(
      ['ha', 'hb'].map((id) => startEdge({ REDIS_URL: redis.url, ...PRESENCE_ENV, PRESENCE_MAX_USERS: '10', WORKER_ID: id, PRESENCE_TTL_S: '2', HEARTBEAT_MS: '300' })),
    );
    started.push(...nodes);
    const [a, b] = nodes as [EdgeProcess, EdgeProcess];
    clients.push(await member(a, 'hx', 'room:heal', { n: 1 }), await member(b, 'hy', 'room:heal'), await member(b, 'hy', 'room:heal'));
    const full = { count: 2, connections: 3, users: [{ user_id: 'hx', connections: 1, info: { n: 1 } }, { user_id: 'hy', connections: 2 }] };
    await waitFor(async () => ((await httpPresence(b, 'room:heal', KEY)).body['count'] === 2 ? true : undefined), 10_000, 'both present');
    expect((await httpPresence(a, 'room:heal', KEY)).body).toMatchObject(full);
    await redis.restart(200);
    await waitFor(
      async () => {
        const r = await httpPresence(a, 'room:heal', KEY).catch(() => undefined);
        return r?.status === 200 && r.body['count'] === 2 && r.body['connections'] === 3 ? true : undefined;
      },
      20_000,
      'presence restored after the restart',
    );
    expect((await httpPresence(b, 'room:heal', KEY)).body).toMatchObject(full);
  });
});

clusterSuite('presence on three nodes and one Redis', async () => {
  const redis: RedisServer = await startRedis();
  return { env: { REDIS_URL: redis.url }, stop: () => redis.stop() };
});

clusterSuite('presence on three nodes and a 3-master Redis Cluster', async () => {
  const cluster: RedisCluster = await startRedisCluster(3);
  return { env: { REDIS_CLUSTER_NODES: cluster.nodes.join(',') }, stop: () => cluster.stop() };
});
