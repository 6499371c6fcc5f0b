import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess, type TestClient } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';
import { DEMO_PIPELINE, getJob, postJob } from '../jobs/helpers.js';

/**
 * Issue 11's findings, each against a real edge (in memory): a token refresh ends the
 * subscriptions it no longer allows; `POST /broadcast` with a user's JWT spends that user's
 * budget and checks the caller before the body; distinct coalesce keys and replays count
 * against MAX_BACKPRESSURE_BYTES (4010, not unbounded memory or 1006); HTTP hygiene.
 */

const KEY = 'bk-hardening';

async function post(edge: EdgeProcess, path: string, body: string, authorization?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${edge.http}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization !== undefined && { authorization: `Bearer ${authorization}` }), ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: res.headers };
}

async function broadcast(edge: EdgeProcess, channel: string, data: unknown, extra: Record<string, unknown> = {}): Promise<number> {
  const res = await post(edge, '/broadcast', JSON.stringify({ channel, event: 'e', data, ...extra }), KEY);
  expect(res.status).toBe(202);
  return res.body['seq'] as number;
}

function nested(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

describe('a token refresh that removes rights ends subscriptions', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: KEY });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('the lost channel ends with unsubscribed/forbidden, gets nothing more, and a resume does not bring it back', async () => {
    const before = await hsToken({ sub: 'refresher', channels: ['secret', 'open'] });
    const { client, hello } = await connect(edge.url, before);
    for (const channel of ['secret', 'open']) expect(await client.request({ type: 'subscribe', channel })).toMatchObject({ success: true });
    await broadcast(edge, 'secret', { n: 1 });
    expect(await client.next((f) => f.type === 'event' && f['channel'] === 'secret')).toMatchObject({ data: { n: 1 } });

    const after = await hsToken({ sub: 'refresher', channels: ['open'] });
    expect(await client.request({ type: 'auth', token: after })).toMatchObject({ type: 'auth_success' });
    expect(await client.next('unsubscribed')).toEqual({ type: 'unsubscribed', channel: 'secret', reason: 'forbidden' });

    await broadcast(edge, 'secret', { n: 2 });
    const openSeq = await broadcast(edge, 'open', { n: 3 });
    // `open` is delivered after `secret` was published: had `secret` been delivered, it came first.
    await client.next((f) => f.type === 'event' && f['channel'] === 'open' && f['seq'] === openSeq);
    expect(client.frames.filter((f) => f.type === 'event' && f['channel'] === 'secret').map((f) => f['data'])).toEqual([{ n: 1 }]);
    // The kept channel was not touched.
    expect(client.frames.filter((f) => f.type === 'unsubscribed')).toHaveLength(1);

    client.close();
    await client.closed;
    // Resumed with a token that could read `secret` again, the session no longer holds it.
    const { client: back, hello: resumed } = await connect(edge.url, before, { session_id: hello['session_id'] });
    expect(resumed).toMatchObject({ resumed: true });
    expect(await back.next('subscription_result')).toMatchObject({ channel: 'open', success: true });
    await broadcast(edge, 'secret', { n: 4 });
    const last = await broadcast(edge, 'open', { n: 5 });
    await back.next((f) => f.type === 'event' && f['seq'] === last && f['channel'] === 'open');
    expect(back.frames.filter((f) => f['channel'] === 'secret')).toEqual([]);
    back.close();
  });
});

describe('POST /broadcast with a user JWT', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: KEY, USER_RATE_LIMIT_PER_S: '5' });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('spends the per-user budget: past it, 429 {"error":"rate_limited"}; the API key is not limited', async () => {
    const token = await hsToken({ sub: 'caster', publish: ['news'] });
    const body = JSON.stringify({ channel: 'news', data: { hi: 1 } });
    const statuses = await Promise.all(Array.from({ length: 20 }, () => post(edge, '/broadcast', body, token)));
    const limited = statuses.filter((r) => r.status === 429);
    // 20 within about one second against a budget of 5 a second: at most 10 (two windows) pass.
    expect(statuses.filter((r) => r.status === 202).length).toBeLessThanOrEqual(10);
    expect(limited.length).toBeGreaterThanOrEqual(10);
    expect(limited[0]!.body).toEqual({ error: 'rate_limited' });
    const keyed = await Promise.all(Array.from({ length: 20 }, () => post(edge, '/broadcast', body, KEY)));
    expect(keyed.map((r) => r.status)).toEqual(Array.from({ length: 20 }, () => 202));
  });

  it('a caller without a valid key or token learns nothing about the body: 401 before any body check', async () => {
    for (const bad of ['{"channel":"bad channel!"}', 'not json', nested(200)]) {
      expect((await post(edge, '/broadcast', bad, 'wrong-key')).status).toBe(401);
      expect((await post(edge, '/broadcast', bad)).status).toBe(401);
    }
    expect((await post(edge, '/broadcast', '{"channel":"bad channel!"}', KEY)).status).toBe(400);
  });
});

describe('HTTP hygiene', () => {
  let edge: EdgeProcess;
  let open: EdgeProcess;
  const APP = 'https://app.example';
  beforeAll(async () => {
    [edge, open] = await Promise.all([
      startEdge({ BROADCAST_API_KEY: KEY, ALLOWED_ORIGINS: `${APP},https://other.example`, DEV_TOKENS: 'true' }),
      startEdge({ BROADCAST_API_KEY: KEY, DEV_TOKENS: 'true' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([edge?.stop(), open?.stop()]);
  });

  it('a preflight from an allowed origin is 204 with the CORS headers; answers carry Allow-Origin and Vary', async () => {
    for (const path of ['/jobs', '/broadcast', '/auth/token', '/health']) {
      const res = await fetch(`${edge.http}${path}`, {
        method: 'OPTIONS',
        headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      });
      expect(res.status, path).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(APP);
      expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
      expect(res.headers.get('access-control-allow-headers')).toBe('Authorization, Content-Type');
      expect(res.headers.get('vary')).toMatch(/Origin/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    const health = await fetch(`${edge.http}/health`, { headers: { origin: APP } });
    expect(health.headers.get('access-control-allow-origin')).toBe(APP);
    expect(health.headers.get('vary')).toMatch(/Origin/);
  });

  it('other origins, and any origin while ALLOWED_ORIGINS is unset, get no CORS headers', async () => {
    for (const [node, origin] of [[edge, 'https://evil.example'], [open, APP]] as const) {
      const pre = await fetch(`${node.http}/jobs`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
      expect(pre.headers.get('access-control-allow-origin')).toBeNull();
      expect(pre.headers.get('access-control-allow-methods')).toBeNull();
      const res = await fetch(`${node.http}/health`, { headers: { origin } });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it('every answer is nosniff; /auth/token and /jobs answers are no-store', async () => {
    const answers = [
      await fetch(`${open.http}/health`),
      await fetch(`${open.http}/metrics`),
      await fetch(`${open.http}/nowhere`),
      (await post(open, '/broadcast', '{}')).headers,
    ];
    for (const a of answers) expect((a instanceof Headers ? a : a.headers).get('x-content-type-options')).toBe('nosniff');
    const minted = await post(open, '/auth/token', JSON.stringify({ user_id: 'u1' }));
    expect(minted.status).toBe(200);
    expect(minted.headers.get('cache-control')).toBe('no-store');
    const job = await fetch(`${open.http}/jobs/some-job`, { headers: { authorization: `Bearer ${minted.body['token'] as string}` } });
    expect(job.headers.get('cache-control')).toBe('no-store');
    expect((await fetch(`${open.http}/health`)).headers.get('cache-control')).toBeNull();
  });

  it('a frame or body nested deeper than 64 is bad_json (400), never unavailable or 500; 64 is fine', async () => {
    const body = (data: string) => `{"channel":"deep","data":${data}}`;
    expect(await post(open, '/broadcast', body(nested(5000)), KEY)).toEqual(expect.objectContaining({ status: 400, body: { error: 'bad_json' } }));
    expect((await post(open, '/broadcast', body(nested(63)), KEY)).status).toBe(202);
    expect(await post(open, '/auth/token', `{"user_id":"u","x":${nested(100)}}`)).toEqual(expect.objectContaining({ status: 400, body: { error: 'bad_json' } }));

    const { client } = await connect(open.url, await hsToken({ sub: 'deep', permissions: ['*:write'] }));
    client.send(`{"type":"publish","channel":"deep","ref":"d1","data":${nested(5000)}}`);
    expect(await client.next('error')).toMatchObject({ code: 'bad_json' });
    // Brackets inside strings are not nesting.
    expect(await client.request({ type: 'publish', channel: 'deep', data: '['.repeat(5000) })).toMatchObject({ type: 'ack' });
    expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    client.close();
  });
});

describe('one byte bound per client (MAX_BACKPRESSURE_BYTES)', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: KEY, MAX_BACKPRESSURE_BYTES: '262144', REPLAY_STALL_MS: '1500', RATE_LIMIT_PER_S: '200', RATE_LIMIT_BURST: '400' });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  const stalled = async (channel: string): Promise<TestClient> => {
    const { client } = await connect(edge.url, await hsToken({ sub: `slow-${channel}`, channels: [channel] }));
    expect(await client.request({ type: 'subscribe', channel })).toMatchObject({ success: true });
    return client;
  };

  it('distinct coalesce keys to a client that reads nothing: closed 4010, not held without bound', async () => {
    const client = await stalled('keys');
    client.ws.pause();
    const data = 'x'.repeat(30_000);
    let published = 0;
    let closed: { code: number } | undefined;
    void client.closed.then((c) => (closed = c));
    // 600 × 30 KB = 18 MB if nothing bounded it; a bound of 256 KiB closes it long before.
    while (closed === undefined && published < 600) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => broadcast(edge, 'keys', data, { coalesce: `k${published + i}` })));
      published += 10;
    }
    client.ws.resume();
    expect((await client.closed).code).toBe(4010);
  });

  it('a replay larger than the bound to a client that reads nothing: 4010 (not 1006), session resumable', async () => {
    const channel = 'long';
    const data = 'y'.repeat(60_000);
    // 48 MB: more than loopback's socket buffers (tcp_rmem up to 32 MB) can take on the node's behalf.
    for (let i = 0; i < 800; i += 10) await Promise.all(Array.from({ length: 10 }, () => broadcast(edge, channel, data)));
    const reader = await hsToken({ sub: 'replayer', channels: [channel] });
    const { client: r, hello: rHello } = await connect(edge.url, reader);
    r.ws.pause();
    r.send({ type: 'subscribe', channel, since: 0, ref: 'replay' });
    // The node lets go of it (a paused client sees the close frame only once it reads again).
    await waitFor(async () => ((await (await fetch(`${edge.http}/stats`)).json()) as { connections: number }).connections === 0 || undefined, 20_000, 'the replaying client closed');
    r.ws.resume();
    expect((await r.closed).code).toBe(4010);
    const { client: back, hello: again } = await connect(edge.url, reader, { session_id: rHello['session_id'] });
    expect(again).toMatchObject({ type: 'auth_success', resumed: true });
    back.close();
  });
});

describe('job ids on the HTTP API', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ PIPELINE_EXECUTABLE: DEMO_PIPELINE, GPU_DEVICES: 'none', REDIS_URL: undefined, KAFKA_SERVERS: undefined });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('an id outside the safe alphabet is 400 on POST, GET and DELETE; a safe one is accepted', async () => {
    const token = await hsToken({ sub: 'ids' });
    for (const id of ['../x', 'a/../../b', '.hidden', 'a..b', '-rf']) {
      expect((await postJob(edge.http, token, { job_id: id, params: { stages: 1, stage_ms: 1 } })).status, id).toBe(400);
      for (const method of ['GET', 'DELETE']) expect((await getJob(edge.http, token, id, method)).status, `${method} ${id}`).toBe(400);
    }
    expect(await postJob(edge.http, token, { job_id: 'safe-id_1.2:3', params: { stages: 1, stage_ms: 1 } })).toMatchObject({ status: 202, body: { job_id: 'safe-id_1.2:3' } });
  });
});
