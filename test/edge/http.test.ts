import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, TestClient, type EdgeProcess, rawUpgrade } from '../harness/index.js';

/** PROTOCOL.md §6: the HTTP endpoints on the WebSocket port, and the headers on every reply. */

const WORKER_ID = 'http-test-node';
const BROADCAST_KEY = 'bk-http';
const ADMIN_KEY = 'admin-http';

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: () => Record<string, unknown>;
}

async function call(edge: EdgeProcess, method: string, path: string, options: { bearer?: string; body?: string | object } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (options.bearer !== undefined) headers['authorization'] = `Bearer ${options.bearer}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${edge.http}${path}`, {
    method,
    headers,
    ...(options.body !== undefined && { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

/**
 * An error answer: its status, and the body docs/protocol.md gives errors,
 * `{"error":"<human text>","code":"<stable code>"}` — except the codes whose body PROTOCOL.md §9
 * spells out exactly, `{"error":"bad_json"}` and `{"error":"rate_limited"}`.
 */
function expectErrorBody(res: Reply, status: number, code: string, what = ''): void {
  expect(res.status, what).toBe(status);
  expect(res.headers.get('content-type'), what).toMatch(/application\/json/);
  const body = res.json();
  if (code === 'bad_json' || code === 'rate_limited') {
    expect(body, what).toEqual({ error: code });
    return;
  }
  expect(body, what).toMatchObject({ code, error: expect.any(String) });
  expect((body['error'] as string).length, what).toBeGreaterThan(0);
}

function expectWsHeaders(headers: Headers | IncomingHttpHeaders, localConnections?: number): void {
  const get = (name: string) => (headers instanceof Headers ? headers.get(name) : (headers[name] as string | undefined));
  expect(get('x-websocket-worker-id')).toBe(WORKER_ID);
  expect(get('x-websocket-local-connections')).toMatch(/^\d+$/);
  expect(get('x-websocket-total-sessions')).toMatch(/^\d+$/);
  expect(get('x-websocket-total-workers')).toBe('1');
  if (localConnections !== undefined) expect(get('x-websocket-local-connections')).toBe(String(localConnections));
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25)); // sleep-ok: poll interval of a bounded wait on the condition
  }
  return check();
}

describe('HTTP endpoints', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    edge = await startEdge({ WORKER_ID, BROADCAST_API_KEY: BROADCAST_KEY, ADMIN_API_KEY: ADMIN_KEY });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it('GET /health: 200 and the body of §6', async () => {
    const res = await call(edge, 'GET', '/health');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = res.json();
    expect(['healthy', 'degraded', 'unhealthy']).toContain(body['status']);
    expect(body['status']).toBe('healthy');
    expect(body['websocket']).toEqual(
      expect.objectContaining({
        worker_id: WORKER_ID,
        local_connections: expect.any(Number),
        total_sessions: expect.any(Number),
        total_workers: 1,
        session_store_healthy: true,
        message_broker_healthy: true,
      }),
    );
    expect(Object.keys(body['websocket'] as object)).toEqual(
      expect.arrayContaining(['worker_id', 'local_connections', 'total_sessions', 'total_workers', 'session_store_healthy', 'message_broker_healthy']),
    );
    const redis = body['redis'] as Record<string, unknown>;
    expect(redis).toHaveProperty('status');
    expect(typeof redis['status']).toBe('string');
    expect(redis).toHaveProperty('latency_ms');
    const kafka = body['kafka'] as Record<string, unknown>;
    expect(typeof kafka['status']).toBe('string');
    expectWsHeaders(res.headers);
  });

  it('/health and the headers count the live connections', async () => {
    const before = (await call(edge, 'GET', '/health')).json();
    const base = (before['websocket'] as { local_connections: number }).local_connections;
    const { client: a } = await connect(edge.url, await hsToken({ sub: 'h1' }));
    const { client: b } = await connect(edge.url, await hsToken({ sub: 'h2' }));
    clients.push(a, b);
    const during = await call(edge, 'GET', '/health');
    expect((during.json()['websocket'] as { local_connections: number }).local_connections).toBe(base + 2);
    expectWsHeaders(during.headers, base + 2);
    expect(Number(during.headers.get('x-websocket-total-sessions'))).toBeGreaterThanOrEqual(2);
    a.close();
    b.close();
    await Promise.all([a.closed, b.closed]);
    expect(await waitFor(async () => (await call(edge, 'GET', '/health')).headers.get('x-websocket-local-connections') === String(base))).toBe(true);
  });

  it('GET /ready: 200 while serving', async () => {
    const res = await call(edge, 'GET', '/ready');
    expect(res.status).toBe(200);
    expectWsHeaders(res.headers);
  });

  it('GET /metrics: Prometheus text with the switchyard metrics and the process defaults', async () => {
    // Some traffic first so the counters have samples.
    const { client } = await connect(edge.url, await hsToken({ sub: 'm1', channels: ['metrics'] }));
    clients.push(client);
    await client.request({ type: 'subscribe', channel: 'metrics' });
    await call(edge, 'POST', '/broadcast', { bearer: BROADCAST_KEY, body: { channel: 'metrics', data: 1 } });
    await client.next('event');
    client.close();
    await client.closed;
    // The close is handled asynchronously on the server.
    await waitFor(async () => /switchyard_session_duration_seconds_count [1-9]/.test((await call(edge, 'GET', '/metrics')).text));

    const res = await call(edge, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expectWsHeaders(res.headers);
    const text = res.text;
    expect(text).toMatch(/^# TYPE switchyard_connections gauge$/m);
    expect(text).toMatch(new RegExp(`^switchyard_connections\\{worker_id="${WORKER_ID}"\\} \\d+$`, 'm'));
    expect(text).toMatch(/^# TYPE switchyard_messages_total counter$/m);
    expect(text).toMatch(/^switchyard_messages_total\{(?=[^}]*type="[^"]+")(?=[^}]*direction="(in|out)")[^}]*\} \d+$/m);
    expect(text).toMatch(/^switchyard_messages_total\{[^}]*direction="in"[^}]*\} [1-9]/m);
    expect(text).toMatch(/^switchyard_messages_total\{[^}]*direction="out"[^}]*\} [1-9]/m);
    expect(text).toMatch(/^# TYPE switchyard_session_duration_seconds histogram$/m);
    expect(text).toMatch(/^switchyard_session_duration_seconds_bucket\{le="\+Inf"\} [1-9]/m);
    expect(text).toMatch(/^switchyard_session_duration_seconds_count [1-9]/m);
    expect(text).toMatch(/^# TYPE switchyard_delivery_latency_seconds histogram$/m);
    expect(text).toMatch(/^switchyard_delivery_latency_seconds_count [1-9]/m);
    expect(text).toMatch(/^# TYPE switchyard_jobs_total counter$/m);
    // Default process metrics.
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^process_resident_memory_bytes /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });

  it('GET /stats: JSON of connections, sessions, channels, subscriptions, messages in and out', async () => {
    const { client } = await connect(edge.url, await hsToken({ sub: 's1', channels: ['st:*'] }));
    clients.push(client);
    await client.request({ type: 'subscribe', channel: 'st:1' });
    await client.request({ type: 'subscribe', channel: 'st:2' });
    const res = await call(edge, 'GET', '/stats');
    expect(res.status).toBe(200);
    expectWsHeaders(res.headers);
    const body = res.json();
    for (const key of ['connections', 'sessions', 'channels', 'subscriptions', 'messages_in', 'messages_out']) {
      expect(body[key], key).toEqual(expect.any(Number));
    }
    expect(body['connections']).toBeGreaterThanOrEqual(1);
    expect(body['sessions']).toBeGreaterThanOrEqual(1);
    expect(body['subscriptions']).toBeGreaterThanOrEqual(2);
    expect(body['channels']).toBeGreaterThanOrEqual(2);
    const inBefore = body['messages_in'] as number;
    const outBefore = body['messages_out'] as number;
    await client.request({ type: 'ping' });
    const after = (await call(edge, 'GET', '/stats')).json();
    expect(after['messages_in']).toBeGreaterThan(inBefore);
    expect(after['messages_out']).toBeGreaterThan(outBefore);
    // Every reply counts, in /stats and in switchyard_messages_total.
    const metrics = (await call(edge, 'GET', '/metrics')).text;
    expect(metrics).toMatch(/^switchyard_messages_total\{(?=[^}]*type="ping")(?=[^}]*direction="in")[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^switchyard_messages_total\{(?=[^}]*type="pong")(?=[^}]*direction="out")[^}]*\} [1-9]/m);
    client.close();
  });

  describe('POST /broadcast', () => {
    it('202 {channel, seq} with BROADCAST_API_KEY; event is optional', async () => {
      const { client } = await connect(edge.url, await hsToken({ sub: 'b1', channels: ['bc'] }));
      clients.push(client);
      await client.request({ type: 'subscribe', channel: 'bc' });
      const res = await call(edge, 'POST', '/broadcast', { bearer: BROADCAST_KEY, body: { channel: 'bc', event: 'hello', data: { a: 1 } } });
      expect(res.status).toBe(202);
      expect(res.json()).toEqual({ channel: 'bc', seq: 1 });
      expectWsHeaders(res.headers);
      expect(await client.next('event')).toMatchObject({ channel: 'bc', seq: 1, event: 'hello', data: { a: 1 } });
      const res2 = await call(edge, 'POST', '/broadcast', { bearer: BROADCAST_KEY, body: { channel: 'bc', data: null } });
      expect(res2.status).toBe(202);
      expect(res2.json()).toEqual({ channel: 'bc', seq: 2 });
      expect(await client.next('event')).toMatchObject({ channel: 'bc', seq: 2, event: expect.any(String), data: null });
    });

    it('401 without a bearer or with a wrong one', async () => {
      const none = await call(edge, 'POST', '/broadcast', { body: { channel: 'bc', data: 1 } });
      expectErrorBody(none, 401, 'unauthenticated');
      expectWsHeaders(none.headers);
      const wrong = await call(edge, 'POST', '/broadcast', { bearer: 'nope', body: { channel: 'bc', data: 1 } });
      // Neither the key nor a JWT: the token's own auth reason.
      expectErrorBody(wrong, 401, 'token_malformed');
      expectWsHeaders(wrong.headers);
    });

    it('403 for a JWT without the publish right, 202 with it', async () => {
      const reader = await hsToken({ sub: 'r', channels: ['bcj'], permissions: ['bcj:read'] });
      const res = await call(edge, 'POST', '/broadcast', { bearer: reader, body: { channel: 'bcj', data: 1 } });
      expect(res.status).toBe(403);
      expectWsHeaders(res.headers);
      const writer = await hsToken({ sub: 'w', publish: ['bcj'] });
      const ok = await call(edge, 'POST', '/broadcast', { bearer: writer, body: { channel: 'bcj', data: 1 } });
      expect(ok.status).toBe(202);
      expect(ok.json()).toEqual({ channel: 'bcj', seq: 1 });
    });

    it('400 for a bad body or a bad channel', async () => {
      const bad: [string | object, string][] = [
        ['not json', 'bad_json'],
        ['[1,2]', 'bad_frame'],
        ['"str"', 'bad_frame'],
        ['', 'bad_json'],
        [{ data: 1 }, 'bad_channel'],
        [{ channel: 'bad channel', data: 1 }, 'bad_channel'],
        [{ channel: 'a'.repeat(201), data: 1 }, 'bad_channel'],
        [{ channel: 42, data: 1 }, 'bad_channel'],
        [{ channel: 'ok', event: 5, data: 1 }, 'bad_frame'],
        [{ channel: 'ok', event: '', data: 1 }, 'bad_frame'],
      ];
      for (const [body, code] of bad) {
        const res = await call(edge, 'POST', '/broadcast', { bearer: BROADCAST_KEY, body });
        expectErrorBody(res, 400, code, JSON.stringify(body));
        expectWsHeaders(res.headers);
      }
      // None of them published anything.
      const res = await call(edge, 'POST', '/broadcast', { bearer: BROADCAST_KEY, body: { channel: 'ok', data: 1 } });
      expect(res.json()).toEqual({ channel: 'ok', seq: 1 });
    });

    it('413 with the headers for a body over the limit', async () => {
      const res = await call(edge, 'POST', '/broadcast', { bearer: BROADCAST_KEY, body: { channel: 'big', data: 'x'.repeat(200_000) } });
      expectErrorBody(res, 413, 'too_large');
      expectWsHeaders(res.headers);
      // The server is fine afterwards.
      expect((await call(edge, 'POST', '/broadcast', { bearer: BROADCAST_KEY, body: { channel: 'big', data: 1 } })).json()).toEqual({ channel: 'big', seq: 1 });
    });

    it('400 for a POST with no body at all', async () => {
      const res = await fetch(`${edge.http}/broadcast`, { method: 'POST', headers: { authorization: `Bearer ${BROADCAST_KEY}` } });
      const text = await res.text();
      expectErrorBody({ status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> }, 400, 'bad_json');
      expectWsHeaders(res.headers);
    });
  });

  describe('POST /auth/token with ADMIN_API_KEY', () => {
    it('401 without the admin key or with a wrong one', async () => {
      const none = await call(edge, 'POST', '/auth/token', { body: { user_id: 'u' } });
      expectErrorBody(none, 401, 'unauthenticated');
      expectWsHeaders(none.headers);
      expectErrorBody(await call(edge, 'POST', '/auth/token', { bearer: 'wrong', body: { user_id: 'u' } }), 401, 'unauthenticated');
      // The broadcast key is not the admin key.
      expectErrorBody(await call(edge, 'POST', '/auth/token', { bearer: BROADCAST_KEY, body: { user_id: 'u' } }), 401, 'unauthenticated');
    });

    it('200 {token, expires_at} with it; the token authenticates and carries its claims', async () => {
      const res = await call(edge, 'POST', '/auth/token', {
        bearer: ADMIN_KEY,
        body: { user_id: 'minted', permissions: ['pm:read'], channels: ['pc:*'], publish: ['pp:*'], ttl_s: 120 },
      });
      expect(res.status).toBe(200);
      expectWsHeaders(res.headers);
      const body = res.json();
      expect(body).toMatchObject({ token: expect.any(String), expires_at: expect.any(String) });
      const expiresAt = Date.parse(body['expires_at'] as string);
      expect(expiresAt).toBeGreaterThan(Date.now() + 60_000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 125_000);

      const { client, hello } = await connect(edge.url, body['token'] as string);
      clients.push(client);
      expect(hello).toMatchObject({ type: 'auth_success', user_id: 'minted' });
      expect(await client.request({ type: 'subscribe', channel: 'pm' })).toMatchObject({ success: true });
      expect(await client.request({ type: 'subscribe', channel: 'pc:1' })).toMatchObject({ success: true });
      expect(await client.request({ type: 'subscribe', channel: 'other' })).toMatchObject({ success: false, error: 'forbidden' });
      expect(await client.request({ type: 'publish', channel: 'pp:1', data: 1 })).toMatchObject({ type: 'ack', seq: 1 });
      expect(await client.request({ type: 'publish', channel: 'pc:1', data: 1 })).toMatchObject({ type: 'error', code: 'forbidden' });
      // It is a real JWT for this node: usable as a bearer at upgrade and for /broadcast.
      const upgraded = new TestClient(`${edge.url}?token=${body['token'] as string}`);
      clients.push(upgraded);
      expect(await upgraded.next()).toMatchObject({ type: 'auth_success', user_id: 'minted' });
      expect((await call(edge, 'POST', '/broadcast', { bearer: body['token'] as string, body: { channel: 'pp:2', data: 1 } })).status).toBe(202);
    });

    it('400 for a bad body', async () => {
      const bad: (string | object)[] = [
        '[]',
        {},
        { user_id: '' },
        { user_id: 5 },
        { user_id: 'u', permissions: 'all' },
        { user_id: 'u', channels: [1] },
        { user_id: 'u', publish: {} },
        { user_id: 'u', ttl_s: 0 },
        { user_id: 'u', ttl_s: 'long' },
        { user_id: 'u', ttl_s: 1.5 },
      ];
      expectErrorBody(await call(edge, 'POST', '/auth/token', { bearer: ADMIN_KEY, body: 'not json' }), 400, 'bad_json');
      for (const body of bad) {
        const res = await call(edge, 'POST', '/auth/token', { bearer: ADMIN_KEY, body });
        expectErrorBody(res, 400, 'bad_frame', JSON.stringify(body));
        expectWsHeaders(res.headers);
      }
    });
  });

  describe('X-WebSocket-* headers on every response', () => {
    it('on 404s, whatever the method', async () => {
      for (const [method, path] of [
        ['GET', '/nope'],
        ['POST', '/nope'],
        ['DELETE', '/health'],
        ['GET', '/broadcast'],
        ['PUT', '/auth/token'],
      ] as const) {
        const res = await call(edge, method, path);
        expectErrorBody(res, 404, 'not_found', `${method} ${path}`);
        expectWsHeaders(res.headers);
      }
    });

    it('on a 401 upgrade with a bad token, and on a plain GET of /ws', async () => {
      const bad = await rawUpgrade(edge.url, { authorization: 'Bearer not.a.jwt' });
      expect(bad.status).toBe(401);
      expectWsHeaders(bad.headers);
      const expired = await rawUpgrade(`${edge.url}?token=${await hsToken({ sub: 'x', expiresIn: -3600 })}`);
      expect(expired.status).toBe(401);
      expectWsHeaders(expired.headers);
      const good = await rawUpgrade(`${edge.url}?token=${await hsToken({ sub: 'x' })}`);
      expect(good.status).toBe(101);
    });
  });
});

describe('POST /auth/token with DEV_TOKENS=true', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    edge = await startEdge({ WORKER_ID, DEV_TOKENS: 'true', ADMIN_API_KEY: undefined });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it('anyone may mint a token, and it works', async () => {
    const res = await call(edge, 'POST', '/auth/token', { body: { user_id: 'dev-user', permissions: ['devch:read'] } });
    expect(res.status).toBe(200);
    expectWsHeaders(res.headers);
    const token = res.json()['token'] as string;
    const { client, hello } = await connect(edge.url, token);
    clients.push(client);
    expect(hello).toMatchObject({ type: 'auth_success', user_id: 'dev-user' });
    expect(await client.request({ type: 'subscribe', channel: 'devch' })).toMatchObject({ success: true });
    expect(await client.request({ type: 'subscribe', channel: 'other' })).toMatchObject({ success: false, error: 'forbidden' });
    expect((await call(edge, 'POST', '/auth/token', { body: { permissions: [] } })).status).toBe(400);
  });
});

describe('POST /auth/token without ADMIN_API_KEY or DEV_TOKENS', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ WORKER_ID, DEV_TOKENS: undefined, ADMIN_API_KEY: undefined });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('is always 401, whatever bearer is presented', async () => {
    for (const bearer of [undefined, '', 'anything', 'undefined']) {
      const res = await call(edge, 'POST', '/auth/token', { ...(bearer !== undefined && { bearer }), body: { user_id: 'u' } });
      expectErrorBody(res, 401, 'unauthenticated', String(bearer));
      expectWsHeaders(res.headers);
    }
  });
});
