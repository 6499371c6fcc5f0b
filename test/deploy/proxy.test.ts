/**
 * The shipped proxy templates (nginx/, haproxy/), rendered with real ports and run with the
 * real Debian nginx and HAProxy in front of three real edges on one real Redis: WebSocket
 * upgrade (plain and TLS), sticky consistent hashing on the session id (falling back to the
 * client address), a node killed and a node drained taken out with their clients resuming
 * through the proxy with every event once and in order, and the per-address limits.
 */
import { Agent } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hsToken, startEdge, TestClient, UpgradeRefused, type EdgeProcess, type Frame } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';
import { waitForRecordedSeq } from '../harness/positions.js';
import { httpGet, startProxy, type ProxyKind, type ProxyProcess } from '../harness/proxy.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

const KEY = 'bk-proxy-tests';
const MAX_CONN_PER_IP = 8;

/** Per kind: test-sized limits and check intervals over the templates' production defaults. */
const VALUES: Record<ProxyKind, Record<string, string>> = {
  nginx: { MAX_CONN_PER_IP: String(MAX_CONN_PER_IP), REQ_RATE_PER_IP: '20r/s', REQ_BURST_PER_IP: '40' },
  haproxy: { MAX_CONN_PER_IP: String(MAX_CONN_PER_IP), MAX_REQ_PER_IP_10S: '100', CHECK_INTER: '400ms', CHECK_FASTINTER: '100ms', CHECK_DOWNINTER: '300ms' },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seqs = (frames: Frame[]) => frames.map((f) => f['seq']);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function broadcast(edge: EdgeProcess, channel: string, data: unknown): Promise<void> {
  const res = await fetch(`${edge.http}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, event: 'tick', data }),
  });
  expect(res.status).toBe(202);
}

async function takeEvents(client: TestClient, channel: string, count: number): Promise<Frame[]> {
  const out: Frame[] = [];
  for (let i = 0; i < count; i++) out.push(await client.next((f) => f.type === 'event' && f['channel'] === channel, 10_000));
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms))]);
}

describe.each(['nginx', 'haproxy'] as const)('%s in front of three edges on one Redis', (kind) => {
  let redis: RedisServer;
  let proxy: ProxyProcess;
  const edges: EdgeProcess[] = [];
  const ids = ['a', 'b', 'c'].map((x) => `${kind}-${x}`);
  const edgeById = (id: string) => edges[ids.indexOf(id)]!;
  const live = new Set<TestClient>();
  /** Sessions made by the stickiness test: their id and the node their `sid` hashes to. */
  const sessions: { sid: string; token: string; node: string }[] = [];
  let killed: string | undefined;

  /** Connects (through `url`), with `?sid=` and `session_id` when resuming, and authenticates. */
  async function open(url: string, token: string, opts: { sid?: string; localAddress?: string; ca?: string } = {}) {
    const target = opts.sid === undefined ? url : `${url}?sid=${encodeURIComponent(opts.sid)}`;
    const client = new TestClient(target, { ...(opts.localAddress && { localAddress: opts.localAddress }), ...(opts.ca && { ca: opts.ca }) });
    live.add(client);
    try {
      await client.opened;
    } catch (err) {
      client.ws.terminate();
      throw err;
    }
    client.send({ type: 'auth', token, ...(opts.sid !== undefined && { session_id: opts.sid }) });
    const hello = await client.next((f) => f.type === 'auth_success' || f.type === 'auth_error');
    return { client, hello };
  }

  /** What a client SDK does after losing its node: retry (bounded) until a node takes the session. */
  async function reconnect(token: string, sid: string) {
    const deadline = Date.now() + 15_000;
    let last: unknown;
    for (let attempt = 1; attempt <= 50 && Date.now() < deadline; attempt++) {
      try {
        const r = await open(proxy.url, token, { sid });
        if (r.hello.type === 'auth_success') return r;
        last = r.hello;
        r.client.ws.terminate();
      } catch (err) {
        last = err;
      }
      await sleep(200); // sleep-ok: a client's back-off between reconnect attempts, not a wait for a condition
    }
    throw new Error(`no node took session ${sid} through ${kind}: ${String(last instanceof Error ? last.message : JSON.stringify(last))}`);
  }

  async function close(client: TestClient): Promise<void> {
    client.close();
    await withTimeout(client.closed, 5000, 'client close');
    live.delete(client);
  }

  beforeAll(async () => {
    redis = await startRedis();
    edges.push(
      ...(await Promise.all(
        ids.map((id) =>
          startEdge({ REDIS_URL: redis.url, WORKER_ID: id, BROADCAST_API_KEY: KEY, HEARTBEAT_MS: '300', DRAIN_TIMEOUT_MS: '4000' }, { timeoutMs: 30_000 }),
        ),
      )),
    );
    proxy = await startProxy(kind, { upstreams: edges.map((e) => e.port), names: ids, tls: true, values: VALUES[kind] });
  });

  afterEach(() => {
    for (const c of live) c.ws.terminate();
    live.clear();
  });

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all(edges.map((e) => e.stop()));
    await redis?.stop();
  });

  it('upgrades WebSockets through the proxy, over plain HTTP and TLS, and passes HTTP through', async () => {
    const token = await hsToken({ sub: `${kind}-up`, channels: ['up:*'], publish: ['up:*'] });
    const { client, hello } = await open(proxy.url, token);
    expect(hello).toMatchObject({ type: 'auth_success', user_id: `${kind}-up`, resumed: false });
    expect(ids).toContain(hello['node_id']);
    expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    // Both directions of the tunnel: a publish goes up, its event comes back down.
    expect(await client.request({ type: 'subscribe', channel: 'up:1' })).toMatchObject({ success: true });
    expect(await client.request({ type: 'publish', channel: 'up:1', event: 'hi', data: { n: 1 } })).toMatchObject({ type: 'ack', seq: 1 });
    expect(await client.next('event')).toMatchObject({ channel: 'up:1', seq: 1, data: { n: 1 } });
    await close(client);

    // Authentication at the upgrade (?token=) reaches the edge unchanged.
    const byQuery = new TestClient(`${proxy.url}?token=${encodeURIComponent(token)}`);
    live.add(byQuery);
    await byQuery.opened;
    expect(await byQuery.next()).toMatchObject({ type: 'auth_success', user_id: `${kind}-up` });
    await close(byQuery);

    // TLS terminated at the proxy: wss with the test CA works; without trusting it, it does not.
    const secure = await open(proxy.wssUrl!, token, { ca: proxy.cert!.certPem });
    expect(secure.hello).toMatchObject({ type: 'auth_success' });
    expect(await secure.client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    await close(secure.client);
    const untrusted = new TestClient(proxy.wssUrl!);
    live.add(untrusted);
    await expect(untrusted.opened).rejects.toThrow(/self[- ]signed|certificate/i);

    // Plain HTTP: the edge's answer and headers come through; /metrics stays private.
    const ready = await httpGet(`${proxy.http}/ready`);
    expect(ready.status).toBe(200);
    expect(ids).toContain(ready.headers['x-websocket-worker-id']);
    expect(ready.headers['x-websocket-total-workers']).toMatch(/^\d+$/);
    expect((await httpGet(`${proxy.http}/metrics`)).status).toBe(403);
  });

  it('keeps a session on one node across reconnects, and spreads sessions and addresses', async () => {
    const byAddress: string[] = [];
    for (let i = 0; i < 12; i++) {
      const token = await hsToken({ sub: `${kind}-s${i}`, channels: ['feed:*'] });
      const ip = `127.0.0.${20 + i}`;
      // No sid yet: the client address is the key, so the same address lands on the same node.
      const first = await open(proxy.url, token, { localAddress: ip });
      expect(first.hello).toMatchObject({ type: 'auth_success', resumed: false });
      await close(first.client);
      const second = await open(proxy.url, token, { localAddress: ip });
      expect(second.hello['node_id']).toBe(first.hello['node_id']);
      await close(second.client);
      byAddress.push(first.hello['node_id'] as string);

      // With ?sid= the session id is the key: every reconnect, from any address, lands on one node.
      const sid = first.hello['session_id'] as string;
      const nodes: string[] = [];
      for (let k = 0; k < 3; k++) {
        const again = await open(proxy.url, token, { sid, localAddress: `127.0.0.${100 + 3 * i + k}` });
        expect(again.hello).toMatchObject({ type: 'auth_success', resumed: true, session_id: sid });
        nodes.push(again.hello['node_id'] as string);
        await close(again.client);
      }
      expect(new Set(nodes).size, `session ${i} visited ${nodes.join(', ')}`).toBe(1);
      sessions.push({ sid, token, node: nodes[0]! });
    }
    const bySid = sessions.map((s) => s.node);
    expect(new Set(bySid).size, `sessions landed on ${bySid.join(', ')}`).toBeGreaterThanOrEqual(2);
    expect(new Set(byAddress).size, `addresses landed on ${byAddress.join(', ')}`).toBeGreaterThanOrEqual(2);
  });

  it('takes a killed node out: its client resumes through the proxy with every event once, in order', async () => {
    expect(sessions.length).toBeGreaterThan(0);
    const counts = new Map<string, number>();
    for (const s of sessions) counts.set(s.node, (counts.get(s.node) ?? 0) + 1);
    const victimId = [...counts.entries()].sort((x, y) => y[1] - x[1])[0]![0];
    const victim = edgeById(victimId);
    const other = edges.find((e) => e !== victim)!;
    const session = sessions.find((s) => s.node === victimId)!;
    const channel = `feed:${kind}-kill`;

    const { client, hello } = await open(proxy.url, session.token, { sid: session.sid });
    expect(hello).toMatchObject({ type: 'auth_success', node_id: victimId, session_id: session.sid });
    expect(await client.request({ type: 'subscribe', channel })).toMatchObject({ success: true, seq: 0 });
    for (let i = 1; i <= 5; i++) await broadcast(other, channel, { i });
    expect(seqs(await takeEvents(client, channel, 5))).toEqual(range(1, 5));
    // The node records how far the session got in batches: see that batch land before killing it.
    expect(await waitForRecordedSeq(redis, victimId, channel, 5)).toBe(5);

    victim.kill('SIGKILL');
    killed = victimId;
    await withTimeout(client.closed, 10_000, 'the connection to the killed node to drop');
    live.delete(client);
    for (let i = 6; i <= 10; i++) await broadcast(other, channel, { i });

    const back = await reconnect(session.token, session.sid);
    expect(back.hello).toMatchObject({ type: 'auth_success', resumed: true, session_id: session.sid });
    expect(back.hello['node_id']).not.toBe(victimId);
    expect(await back.client.next('subscription_result')).toMatchObject({ channel, success: true, recovered: true });
    expect(seqs(await takeEvents(back.client, channel, 5))).toEqual(range(6, 10));
    await broadcast(other, channel, { i: 11 });
    // Event 12 is a barrier through the same path: a duplicate or stray replay would be before it.
    await broadcast(other, channel, { i: 12 });
    expect(seqs(await takeEvents(back.client, channel, 2))).toEqual([11, 12]);
    expect(seqs(back.client.frames.filter((f) => f.type === 'event'))).toEqual(range(6, 12));
    await close(back.client);

    if (kind === 'haproxy') {
      await waitFor(async () => ((await proxy.servers())[victimId]?.status.startsWith('DOWN') ? true : undefined), 10_000, 'HAProxy marking the killed node DOWN');
    }

    // Consistent hashing: sessions of the live nodes stay where they were; the dead node's
    // move to a live node, and stay there.
    for (const s of sessions) {
      const { client: c1, hello: h1 } = await open(proxy.url, s.token, { sid: s.sid });
      expect(h1).toMatchObject({ type: 'auth_success', session_id: s.sid });
      await close(c1);
      if (s.node !== victimId) {
        expect(h1['node_id'], `session on ${s.node} moved`).toBe(s.node);
      } else {
        expect(h1['node_id']).not.toBe(victimId);
        const { client: c2, hello: h2 } = await open(proxy.url, s.token, { sid: s.sid });
        expect(h2['node_id']).toBe(h1['node_id']);
        await close(c2);
      }
    }
  });

  it('takes a drained node out: its client gets reconnect + 1012 and resumes through the proxy with nothing lost', async () => {
    expect(killed).toBeDefined();
    const session = sessions.find((s) => s.node !== killed);
    expect(session, 'a session on a live node').toBeDefined();
    const drainId = session!.node;
    const drained = edgeById(drainId);
    const other = edges.find((e) => e !== drained && ids[edges.indexOf(e)] !== killed)!;
    const otherId = ids[edges.indexOf(other)];
    const channel = `feed:${kind}-drain`;

    const { client, hello } = await open(proxy.url, session!.token, { sid: session!.sid });
    expect(hello).toMatchObject({ type: 'auth_success', node_id: drainId });
    expect(await client.request({ type: 'subscribe', channel })).toMatchObject({ success: true, seq: 0 });
    for (let i = 1; i <= 5; i++) await broadcast(other, channel, { i });
    expect(seqs(await takeEvents(client, channel, 5))).toEqual(range(1, 5));
    expect(await waitForRecordedSeq(redis, drainId, channel, 5)).toBe(5);

    drained.kill('SIGTERM');
    const notice = await client.next('reconnect', 5000);
    expect(notice).toMatchObject({ reason: 'draining', after_ms: expect.any(Number) });
    expect((await withTimeout(client.closed, 5000, 'close after reconnect'))).toEqual({ code: 1012, reason: 'draining' });
    live.delete(client);
    for (let i = 6; i <= 10; i++) await broadcast(other, channel, { i });

    if (kind === 'haproxy') {
      // The active check on /ready sees the drain's 503 (not a refused connection) and takes it out.
      const down = new RegExp(`switchyard_edges/${drainId} is DOWN, reason: Layer7 wrong status, code: 503`);
      await waitFor(() => (proxy.lines.some((l) => down.test(l)) ? true : undefined), 10_000, `HAProxy log: ${down.source}`);
    }
    await sleep(notice['after_ms'] as number); // sleep-ok: the contract's reconnect after_ms, honoured as a client would
    const back = await reconnect(session!.token, session!.sid);
    expect(back.hello).toMatchObject({ type: 'auth_success', resumed: true, session_id: session!.sid, node_id: otherId });
    expect(await back.client.next('subscription_result')).toMatchObject({ channel, success: true, recovered: true });
    expect(seqs(await takeEvents(back.client, channel, 5))).toEqual(range(6, 10));
    await broadcast(other, channel, { i: 11 });
    // Event 12 is a barrier through the same path: a duplicate or stray replay would be before it.
    await broadcast(other, channel, { i: 12 });
    expect(seqs(await takeEvents(back.client, channel, 2))).toEqual([11, 12]);
    expect(seqs(back.client.frames.filter((f) => f.type === 'event'))).toEqual(range(6, 12));
    await close(back.client);
    expect(await withTimeout(drained.exited, 10_000, 'the drained node to exit')).toMatchObject({ code: 0 });
  });

  it('limits concurrent connections and request rate per client address', async () => {
    // Concurrent connections: the limit's worth from one address opens, one more does not.
    const held: TestClient[] = [];
    for (let i = 0; i < MAX_CONN_PER_IP; i++) {
      const c = new TestClient(proxy.url, { localAddress: '127.0.0.201' });
      live.add(c);
      await c.opened;
      held.push(c);
    }
    const extra = new TestClient(proxy.url, { localAddress: '127.0.0.201' });
    live.add(extra);
    const refused = await extra.opened.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused, 'one connection over the per-address limit').toBeDefined();
    // nginx answers 429; HAProxy drops the connection before reading the request.
    if (kind === 'nginx') expect((refused as UpgradeRefused).status).toBe(429);
    // Another address is not affected, and closing frees the first address's slots.
    const neighbour = new TestClient(proxy.url, { localAddress: '127.0.0.202' });
    live.add(neighbour);
    await neighbour.opened;
    for (const c of held) c.close();
    await Promise.all(held.map((c) => withTimeout(c.closed, 5000, 'held close')));
    await waitFor(
      async () => {
        const c = new TestClient(proxy.url, { localAddress: '127.0.0.201' });
        live.add(c);
        const ok = await c.opened.then(
          () => true,
          () => undefined,
        );
        c.ws.terminate();
        return ok;
      },
      5000,
      'a connection from the first address after closing the others',
    );

    // Request rate: a burst over a few keep-alive connections from one address gets 429s.
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    try {
      const statuses = await Promise.all(Array.from({ length: 200 }, () => httpGet(`${proxy.http}/ready`, { localAddress: '127.0.0.203', agent }).then((r) => r.status)));
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    } finally {
      agent.destroy();
    }
    expect((await httpGet(`${proxy.http}/ready`, { localAddress: '127.0.0.204' })).status).toBe(200);
  });
});
