import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect, hsToken, startEdge, TestClient, UpgradeRefused, type EdgeProcess, type Frame, rawUpgrade } from '../harness/index.js';

/**
 * PROTOCOL.md §5 limits, each against its own edge with the limit turned down: frame size,
 * rate, connections per user and per node, origins, slow consumers, and keepalive.
 */

const BROADCAST_KEY = 'bk-limits';
const WS_HEADERS = ['x-websocket-worker-id', 'x-websocket-local-connections', 'x-websocket-total-sessions', 'x-websocket-total-workers'];

async function broadcast(edge: EdgeProcess, channel: string, data: unknown): Promise<number> {
  const res = await fetch(`${edge.http}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BROADCAST_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, event: 'e', data }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { seq: number }).seq;
}

function expectWsHeaders(headers: IncomingHttpHeaders): void {
  for (const h of WS_HEADERS) expect(headers[h], h).toEqual(expect.any(String));
  expect(Number.isInteger(Number(headers['x-websocket-local-connections']))).toBe(true);
}

async function stats(edge: EdgeProcess): Promise<Record<string, number>> {
  return (await (await fetch(`${edge.http}/stats`)).json()) as Record<string, number>;
}

/** Polls until `check` is true, at most `timeoutMs`. */
async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 5000, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, stepMs)); // sleep-ok: poll interval of a bounded wait on the condition
  }
  return check();
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))]);
}

describe('frame size and rate limits', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  let n = 0;
  const open = async () => {
    const { client } = await connect(edge.url, await hsToken({ sub: `size${++n}`, permissions: ['*:read', '*:write'] }));
    clients.push(client);
    return client;
  };
  let bystander: TestClient;

  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: BROADCAST_KEY, MAX_MESSAGE_BYTES: '1024', RATE_LIMIT_PER_S: '2', RATE_LIMIT_BURST: '10' });
    bystander = await open();
    expect(await bystander.request({ type: 'subscribe', channel: 'watch' })).toMatchObject({ success: true });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  const bystanderStillServed = async () => {
    const seq = await broadcast(edge, 'watch', { ok: true });
    expect(await bystander.next((f) => f.type === 'event' && f['seq'] === seq)).toMatchObject({ channel: 'watch', data: { ok: true } });
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
  };

  it('a frame of exactly MAX_MESSAGE_BYTES is accepted', async () => {
    const client = await open();
    const frame = { type: 'publish', channel: 'big', event: 'e', ref: 'exact', data: '' };
    frame.data = 'x'.repeat(1024 - Buffer.byteLength(JSON.stringify(frame)));
    expect(Buffer.byteLength(JSON.stringify(frame))).toBe(1024);
    client.send(frame);
    expect(await client.next((f) => f['ref'] === 'exact')).toMatchObject({ type: 'ack', seq: 1 });
  });

  it('a text frame over MAX_MESSAGE_BYTES → error too_large, then close 1009', async () => {
    const client = await open();
    const frame = { type: 'publish', channel: 'big', event: 'e', data: 'x'.repeat(1100) };
    client.send(frame);
    expect(await client.next('error')).toMatchObject({ type: 'error', code: 'too_large', error: expect.any(String) });
    expect((await client.closed)).toEqual({ code: 1009, reason: 'too_large' });
    await bystanderStillServed();
  });

  it('a binary frame over MAX_MESSAGE_BYTES → error too_large, then close 1009', async () => {
    const client = await open();
    client.ws.send(Buffer.alloc(2048, 1), { binary: true });
    expect(await client.next('error')).toMatchObject({ type: 'error', code: 'too_large' });
    expect((await client.closed)).toEqual({ code: 1009, reason: 'too_large' });
  });

  it('a much larger frame (512 KiB) gets too_large and 1009 too', async () => {
    // Frames past uWS's own maxPayloadLength (max(4 × MAX_MESSAGE_BYTES, 1 MiB)) are cut with 1006 by uWS itself.
    const client = await open();
    client.send({ type: 'publish', channel: 'big', event: 'e', data: 'y'.repeat(512 * 1024) });
    expect(await client.next('error')).toMatchObject({ type: 'error', code: 'too_large' });
    expect((await within(client.closed, 5000, 'close'))).toEqual({ code: 1009, reason: 'too_large' });
    await bystanderStillServed();
  });

  it('past RATE_LIMIT_BURST frames → error rate_limited, close 4008; others unaffected', async () => {
    const client = await open();
    for (let i = 0; i < 30; i++) client.send({ type: 'ping', ref: i });
    expect(await client.next('error')).toMatchObject({ type: 'error', code: 'rate_limited' });
    expect((await client.closed)).toEqual({ code: 4008, reason: 'rate_limited' });
    const pongs = client.frames.filter((f) => f.type === 'pong').length;
    // The auth frame took one token of the burst of 10; a little refill is possible.
    expect(pongs).toBeGreaterThanOrEqual(8);
    expect(pongs).toBeLessThan(30);
    await bystanderStillServed();
  });

  it('a client that keeps under the rate is never limited', async () => {
    const client = await open();
    // 2 per second sustained after a burst of 10: 8 frames now, then 3 spaced out.
    for (let i = 0; i < 8; i++) expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 500)); // sleep-ok: paces the client under the rate limit, which is what is tested
      expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    }
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('MAX_CONNECTIONS_PER_USER', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    edge = await startEdge({ MAX_CONNECTIONS_PER_USER: '2' });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it('the third auth of one user → auth_error too_many_connections, close 4009; other users unaffected', async () => {
    const token = await hsToken({ sub: 'alice' });
    const a1 = await connect(edge.url, token);
    const a2 = await connect(edge.url, token);
    clients.push(a1.client, a2.client);
    expect(a1.hello).toMatchObject({ type: 'auth_success' });
    expect(a2.hello).toMatchObject({ type: 'auth_success' });

    const a3 = await connect(edge.url, token);
    clients.push(a3.client);
    expect(a3.hello).toMatchObject({ type: 'auth_error', error: 'too_many_connections' });
    expect((await a3.client.closed)).toEqual({ code: 4009, reason: 'too_many_connections' });

    // At upgrade (query token) the same: the socket opens, auth_error comes first, then 4009.
    const a4 = new TestClient(`${edge.url}?token=${token}`);
    clients.push(a4);
    expect(await a4.next()).toMatchObject({ type: 'auth_error', error: 'too_many_connections' });
    expect((await a4.closed)).toEqual({ code: 4009, reason: 'too_many_connections' });

    // The first two are untouched, another user is unaffected.
    expect(await a1.client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    expect(await a2.client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    const b = await connect(edge.url, await hsToken({ sub: 'bob' }));
    clients.push(b.client);
    expect(b.hello).toMatchObject({ type: 'auth_success' });

    // Once one of alice's connections is gone there is room again.
    a1.client.close();
    await a1.client.closed;
    let again: Frame | undefined;
    await waitFor(async () => {
      const c = await connect(edge.url, token);
      clients.push(c.client);
      again = c.hello;
      return c.hello.type === 'auth_success';
    }, 3000, 50);
    expect(again).toMatchObject({ type: 'auth_success', user_id: 'alice' });
  });
});

describe('MAX_TOTAL_CONNECTIONS', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    edge = await startEdge({ MAX_TOTAL_CONNECTIONS: '3' });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it('the upgrade past the limit gets HTTP 503 with the X-WebSocket-* headers; HTTP keeps working', async () => {
    const token = await hsToken({ sub: 'many', permissions: ['*:read'] });
    for (let i = 0; i < 2; i++) {
      const { client, hello } = await connect(edge.url, token);
      clients.push(client);
      expect(hello.type).toBe('auth_success');
    }
    // PROTOCOL.md §9: only authenticated connections count (unauthenticated ones: MAX_PENDING_AUTH).
    const third = (await connect(edge.url, token)).client;
    clients.push(third);

    const refused = await rawUpgrade(edge.url);
    expect(refused.status).toBe(503);
    expectWsHeaders(refused.headers);
    expect(refused.headers['x-websocket-local-connections']).toBe('3');
    expect(refused.body).toMatchObject({ code: 'too_many_connections' });

    const fourth = new TestClient(`${edge.url}?token=${token}`);
    clients.push(fourth);
    await expect(fourth.opened).rejects.toBeInstanceOf(UpgradeRefused);
    await expect(fourth.opened).rejects.toMatchObject({ status: 503 });

    // The connected ones are served, and so is HTTP.
    expect(await clients[0]!.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    expect((await fetch(`${edge.http}/health`)).status).toBe(200);

    // After one leaves, the next upgrade works.
    third.close();
    await third.closed;
    expect(await waitFor(async () => (await stats(edge))['connections'] === 2, 3000)).toBe(true);
    const fifth = await connect(edge.url, token);
    clients.push(fifth.client);
    expect(fifth.hello.type).toBe('auth_success');
  });
});

describe('ALLOWED_ORIGINS', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    edge = await startEdge({ ALLOWED_ORIGINS: 'https://good.example,https://also.example' });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it('an upgrade from an origin not listed gets 403 with the X-WebSocket-* headers', async () => {
    const refused = await rawUpgrade(edge.url, { origin: 'https://evil.example' });
    expect(refused.status).toBe(403);
    expectWsHeaders(refused.headers);
    // Near misses are refused as well.
    for (const origin of ['http://good.example', 'https://good.example.evil.example', 'https://GOOD.example.', 'null']) {
      expect((await rawUpgrade(edge.url, { origin })).status, origin).toBe(403);
    }
    const client = new TestClient(`${edge.url}?token=${await hsToken({ sub: 'o' })}`, { origin: 'https://evil.example' });
    clients.push(client);
    await expect(client.opened).rejects.toMatchObject({ status: 403 });
  });

  it('the listed origins may connect', async () => {
    for (const origin of ['https://good.example', 'https://also.example']) {
      expect((await rawUpgrade(edge.url, { origin })).status, origin).toBe(101);
      const client = new TestClient(`${edge.url}?token=${await hsToken({ sub: 'o' })}`, { origin });
      clients.push(client);
      expect(await client.next()).toMatchObject({ type: 'auth_success' });
    }
  });
});

describe('slow consumers', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: BROADCAST_KEY, MAX_BACKPRESSURE_BYTES: '65536', BACKPRESSURE_CHECK_MS: '10', HISTORY_SIZE: '10000' });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it('a client that stops reading is closed 4010; a reading subscriber gets every event', async () => {
    const token = await hsToken({ sub: 'slow', channels: ['flood'] });
    const { client: fast } = await connect(edge.url, token);
    clients.push(fast);
    expect(await fast.request({ type: 'subscribe', channel: 'flood' })).toMatchObject({ success: true, seq: 0 });

    // A raw ws client that subscribes, then stops reading its socket.
    const slowToken = await hsToken({ sub: 'slow2', channels: ['flood'] });
    const slow = new TestClient(`${edge.url}?token=${slowToken}`);
    clients.push(slow);
    const slowHello = await slow.next();
    expect(slowHello).toMatchObject({ type: 'auth_success' });
    expect(await slow.request({ type: 'subscribe', channel: 'flood' })).toMatchObject({ success: true });
    const rawSocket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    rawSocket.pause();

    const payload = 'z'.repeat(4000);
    let published = 0;
    let slowGone = false;
    // The count bound (4000 × 4 KB, far past any kernel socket buffer) ends the loop; the time bound is only a safety net for a loaded machine.
    const deadline = Date.now() + 90_000;
    // Batches of 8 events (~32 KB) between checks, far below uWS's own hard cap at 4 × the limit.
    while (!slowGone && published < 4000 && Date.now() < deadline) {
      for (let i = 0; i < 8; i++) {
        const seq = await broadcast(edge, 'flood', { i: published + 1, payload });
        expect(seq).toBe(++published);
      }
      slowGone = (await stats(edge))['connections'] === 1;
    }
    expect(slowGone, `slow client still connected after ${published} events`).toBe(true);

    rawSocket.resume();
    const closed = await within(slow.closed, 10_000, 'slow client close');
    expect(closed).toEqual({ code: 4010, reason: 'slow_consumer' });
    // What the slow client did get before the close (what was buffered for it) was in order and without gaps.
    const slowSeqs = slow.frames.filter((f) => f.type === 'event').map((f) => f['seq'] as number);
    expect(slowSeqs).toEqual(Array.from({ length: slowSeqs.length }, (_, i) => i + 1));

    // The reading subscriber got every event, contiguous, none missing.
    const got: number[] = [];
    for (let i = 0; i < published; i++) got.push((await fast.next('event', 10_000))['seq'] as number);
    expect(got).toEqual(Array.from({ length: published }, (_, i) => i + 1));
    expect(fast.ws.readyState).toBe(WebSocket.OPEN);

    // Its session stays resumable: a new connection with its session_id gets what it missed.
    const lastSeen = slowSeqs.length;
    for (let i = 0; i < 3; i++) await broadcast(edge, 'flood', { after: i });
    const final = published + 3;
    const { client: back, hello } = await connect(edge.url, slowToken, { session_id: slowHello['session_id'] });
    clients.push(back);
    expect(hello).toMatchObject({ type: 'auth_success', resumed: true, session_id: slowHello['session_id'] });
    const resumedSeqs: number[] = [];
    const resumeDeadline = Date.now() + 10_000;
    while (!resumedSeqs.includes(final) && Date.now() < resumeDeadline) {
      resumedSeqs.push((await back.next('event', 10_000))['seq'] as number);
    }
    // Possibly some repeats of what was in flight at the close, never a gap.
    const fresh = resumedSeqs.filter((s) => s > lastSeen);
    expect(fresh).toEqual(Array.from({ length: final - lastSeen }, (_, i) => lastSeen + 1 + i));
    expect([...resumedSeqs].sort((x, y) => x - y)).toEqual(resumedSeqs);
  }, 150_000);
});

describe('keepalive: PING_INTERVAL_S=1, IDLE_TIMEOUT_S=3', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    edge = await startEdge({ PING_INTERVAL_S: '1', IDLE_TIMEOUT_S: '3' });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it('the server sends WebSocket pings; a client that pongs stays; one that is silent is dropped', async () => {
    const token = await hsToken({ sub: 'keep' });
    // Pongs automatically (ws default) and sends nothing else.
    const ponging = new TestClient(`${edge.url}?token=${token}`);
    // Neither pongs nor sends anything: idle.
    const silent = new TestClient(`${edge.url}?token=${token}`, { autoPong: false });
    // Never pongs but keeps sending application frames: not idle.
    const chatty = new TestClient(`${edge.url}?token=${token}`, { autoPong: false });
    clients.push(ponging, silent, chatty);
    for (const c of [ponging, silent, chatty]) expect(await c.next()).toMatchObject({ type: 'auth_success' });

    let pings = 0;
    ponging.ws.on('ping', () => pings++);
    let silentPings = 0;
    silent.ws.on('ping', () => silentPings++);
    const chatter = setInterval(() => chatty.send({ type: 'ping' }), 400);
    try {
      const silentClosed = await within(silent.closed, 8000, 'idle close');
      expect(silentClosed).toEqual({ code: 1001, reason: 'idle_timeout' });
      expect(silentPings).toBeGreaterThanOrEqual(1);
      // Give the sweep one more round beyond the idle timeout of the others.
      await new Promise((r) => setTimeout(r, 1100)); // sleep-ok: one more idle sweep in which the ponging and chatty clients must not be closed
    } finally {
      clearInterval(chatter);
    }
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(ponging.ws.readyState).toBe(WebSocket.OPEN);
    expect(chatty.ws.readyState).toBe(WebSocket.OPEN);
    expect(await ponging.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    expect(await chatty.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
  });
});
