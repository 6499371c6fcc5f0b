/**
 * PROTOCOL.md §9 Server-Sent Events, against a real edge read with real `curl -N`: the
 * stream's headers and messages, the `id:` cursor and a Last-Event-ID resume on every channel
 * (recovered true, and false past the history), refusals before the stream starts, the
 * connection limits shared with WebSockets, `: ping`, token expiry, a client that stops
 * reading, an aborted client releasing everything, and drain.
 */
import { connect as netConnect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';
import { CurlSse } from '../harness/sse.js';

const KEY = 'bk-sse';
const HISTORY_SIZE = 20;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function broadcast(edge: EdgeProcess, channel: string, data: unknown): Promise<number> {
  const res = await fetch(`${edge.http}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, event: 'tick', data }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { seq: number }).seq;
}

interface Stats {
  connections: number;
  subscriptions: number;
  channels: number;
  sse_streams: number;
}

async function stats(edge: EdgeProcess): Promise<Stats> {
  return (await fetch(`${edge.http}/stats`)).json() as Promise<Stats>;
}

describe('GET /sse on one edge', () => {
  let edge: EdgeProcess;
  const streams = new Set<CurlSse>();
  const open = (path: string, headers: Record<string, string> = {}) => {
    const s = new CurlSse(`${edge.http}${path}`, headers);
    streams.add(s);
    return s;
  };

  beforeAll(async () => {
    edge = await startEdge({
      BROADCAST_API_KEY: KEY,
      PING_INTERVAL_S: '1',
      HISTORY_SIZE: String(HISTORY_SIZE),
      MAX_CONNECTIONS_PER_USER: '2',
      MAX_BACKPRESSURE_BYTES: String(256 * 1024),
    });
  });
  afterAll(async () => {
    await Promise.all([...streams].map((s) => s.close()));
    await edge?.stop();
  });

  it('streams subscription_result, then events with an id: cursor, and : ping comments', async () => {
    const token = await hsToken({ sub: 'sse-basic', channels: ['news', 'odd:a/b@c.d-e_f'] });
    const s = open(`/sse?channel=news&channel=${encodeURIComponent('odd:a/b@c.d-e_f')}&token=${token}`);
    await s.until((x) => x.frames.filter((f) => f['type'] === 'subscription_result').length === 2, 10_000, 'two subscription_results');
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toBe('text/event-stream');
    expect(s.headers['cache-control']).toBe('no-store');
    expect(s.headers['x-websocket-worker-id']).toBeTruthy();
    const results = s.frames.filter((f) => f['type'] === 'subscription_result');
    expect(results.map((r) => r['channel']).sort()).toEqual(['news', 'odd:a/b@c.d-e_f']);
    for (const r of results) expect(r).toMatchObject({ success: true, seq: 0 });

    for (let i = 1; i <= 3; i++) await broadcast(edge, 'news', { i });
    await broadcast(edge, 'odd:a/b@c.d-e_f', { odd: true });
    await s.until((x) => x.events().length === 4, 10_000, 'four events');
    expect(s.events('news')).toEqual([1, 2, 3]);
    expect(s.events('odd:a/b@c.d-e_f')).toEqual([1]);
    const events = s.messages.filter((m) => m.data?.['type'] === 'event');
    // Every event has an id, each one different (it moves with the stream's position).
    expect(events.every((m) => typeof m.id === 'string' && m.id.length > 0 && m.id.length < 100)).toBe(true);
    expect(new Set(events.map((m) => m.id)).size).toBe(4);
    expect(events[0]!.data).toMatchObject({ type: 'event', channel: 'news', seq: 1, event: 'tick', data: { i: 1 } });
    await s.until((x) => x.messages.some((m) => m.comment === 'ping'), 5000, ': ping');
  });

  it('resumes every channel from Last-Event-ID (header or last_event_id) with recovered:true, then live', async () => {
    const token = await hsToken({ sub: 'sse-resume', channels: ['r:*'] });
    const path = `/sse?channel=r:1&channel=r:2&token=${token}`;
    const first = open(path);
    await first.until((x) => x.frames.filter((f) => f['type'] === 'subscription_result').length === 2, 10_000, 'subscribed');
    await broadcast(edge, 'r:1', { n: 1 });
    await broadcast(edge, 'r:2', { n: 1 });
    await broadcast(edge, 'r:1', { n: 2 });
    await first.until((x) => x.events().length === 3, 10_000, 'three events');
    const cursor = first.lastId!;
    await first.close();

    // Missed while away: r:1 3..5, r:2 2..3.
    for (let i = 3; i <= 5; i++) await broadcast(edge, 'r:1', { n: i });
    for (let i = 2; i <= 3; i++) await broadcast(edge, 'r:2', { n: i });

    for (const how of ['header', 'query'] as const) {
      const again = how === 'header' ? open(path, { 'Last-Event-ID': cursor }) : open(`${path}&last_event_id=${encodeURIComponent(cursor)}`);
      await again.until((x) => x.events('r:1').length === 3 && x.events('r:2').length === 2, 10_000, `the missed events (${how})`);
      const results = again.frames.filter((f) => f['type'] === 'subscription_result');
      expect(results).toHaveLength(2);
      for (const r of results) expect(r).toMatchObject({ success: true, recovered: true });
      expect(again.events('r:1')).toEqual([3, 4, 5]);
      expect(again.events('r:2')).toEqual([2, 3]);
      await again.close();
    }

    // The header wins over a stale query parameter (what a reconnecting EventSource sends).
    const live = open(`${path}&last_event_id=${encodeURIComponent(cursor)}`, { 'Last-Event-ID': cursor });
    await live.until((x) => x.events().length === 5, 10_000, 'replay');
    const seq = await broadcast(edge, 'r:1', { n: 6 });
    await live.until((x) => x.events('r:1').includes(seq), 10_000, 'a live event');
    expect(live.events('r:1')).toEqual([3, 4, 5, 6]);
    expect(live.events('r:2')).toEqual([2, 3]);
  });

  it('says recovered:false when the history no longer holds what was missed, and sends what it has', async () => {
    const token = await hsToken({ sub: 'sse-lost', channels: ['lost'] });
    const s = open(`/sse?channel=lost&token=${token}`);
    await s.next((f) => f['type'] === 'subscription_result');
    await broadcast(edge, 'lost', { n: 1 });
    await s.until((x) => x.events().length === 1, 10_000, 'one event');
    const cursor = s.lastId!;
    await s.close();
    const missed = HISTORY_SIZE + 10;
    for (let i = 0; i < missed; i++) await broadcast(edge, 'lost', { i });
    const again = open(`/sse?channel=lost&token=${token}`, { 'Last-Event-ID': cursor });
    await again.until((x) => x.events().length === HISTORY_SIZE, 10_000, 'what the history holds');
    expect(await again.next((f) => f['type'] === 'subscription_result')).toMatchObject({ success: true, recovered: false, seq: missed + 1 });
    expect(again.events()).toEqual(range(missed + 2 - HISTORY_SIZE, missed + 1));
  });

  it('refuses before the stream starts: 401, 403, 400 with a JSON error body', async () => {
    const token = await hsToken({ sub: 'sse-refused', channels: ['ok'] });
    const before = (await stats(edge)).connections;
    const cases: [string, Record<string, string>, number, string][] = [
      ['/sse?channel=ok', {}, 401, 'unauthenticated'],
      ['/sse?channel=ok&token=not-a-jwt', {}, 401, 'unauthenticated'],
      [`/sse?channel=ok&token=${await hsToken({ sub: 'x', channels: ['ok'], expiresIn: -120 })}`, {}, 401, 'unauthenticated'],
      ['/sse?channel=secret', { authorization: `Bearer ${token}` }, 403, 'forbidden'],
      [`/sse?channel=ok&channel=secret&token=${token}`, {}, 403, 'forbidden'],
      [`/sse?job_id=someone-elses&token=${token}`, {}, 403, 'forbidden'],
      [`/sse?channel=${encodeURIComponent('bad channel')}&token=${token}`, {}, 400, 'bad_channel'],
      [`/sse?token=${token}`, {}, 400, 'bad_channel'],
      [`/sse?${range(1, 17).map((i) => `channel=ok${i}`).join('&')}&token=${token}`, {}, 400, 'too_many_subscriptions'],
      [`/sse?channel=ok&token=${token}`, { 'last-event-id': 'garbage' }, 400, 'bad_cursor'],
    ];
    for (const [path, headers, status, error] of cases) {
      const res = await fetch(`${edge.http}${path}`, { headers });
      expect(res.status, path).toBe(status);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.json(), path).toMatchObject({ error });
    }
    // Refusals hold nothing.
    await waitFor(async () => ((await stats(edge)).connections === before ? true : undefined), 5000, 'no connections left');
  });

  it('maps job_id to job:<id> with the same rights', async () => {
    const token = await hsToken({ sub: 'sse-job', channels: ['job:*'] });
    const s = open(`/sse?job_id=j-42&token=${token}`);
    expect(await s.next((f) => f['type'] === 'subscription_result')).toMatchObject({ channel: 'job:j-42', success: true });
  });

  it('counts against MAX_CONNECTIONS_PER_USER together with WebSockets (429 past it)', async () => {
    const token = await hsToken({ sub: 'sse-limit', channels: ['lim'] });
    const { client } = await connect(edge.url, token);
    const s = open(`/sse?channel=lim&token=${token}`);
    await s.next((f) => f['type'] === 'subscription_result');
    const third = await fetch(`${edge.http}/sse?channel=lim&token=${token}`);
    expect(third.status).toBe(429);
    expect(await third.json()).toMatchObject({ error: 'too_many_connections' });
    client.close();
    await client.closed;
    // The WebSocket's slot is free again: another stream gets in.
    const again = open(`/sse?channel=lim&token=${token}`);
    await again.next((f) => f['type'] === 'subscription_result', 10_000, 'a stream in the freed slot');
    expect(again.status).toBe(200);
  });

  it('ends the stream with auth_expired when the token expires', async () => {
    const token = await hsToken({ sub: 'sse-exp', channels: ['exp'], expiresIn: 2 });
    const s = open(`/sse?channel=exp&token=${token}`);
    await s.next((f) => f['type'] === 'subscription_result');
    await s.next((f) => f['type'] === 'auth_expired', 10_000, 'auth_expired');
    await Promise.race([s.ended, new Promise((_, reject) => setTimeout(() => reject(new Error('stream still open')), 5000))]);
  });

  it('releases everything when the client goes away, and closes a client that stops reading', async () => {
    await Promise.all([...streams].map((x) => x.close()));
    await waitFor(async () => ((await stats(edge)).connections === 0 ? true : undefined), 10_000, 'earlier streams gone');
    const token = await hsToken({ sub: 'sse-gone', channels: ['gone'] });
    const s = open(`/sse?channel=gone&token=${token}`);
    await s.next((f) => f['type'] === 'subscription_result');
    expect(await stats(edge)).toMatchObject({ connections: 1, subscriptions: 1, sse_streams: 1 });
    await s.close();
    await waitFor(async () => {
      const st = await stats(edge);
      return st.connections === 0 && st.subscriptions === 0 && st.channels === 0 && st.sse_streams === 0 ? true : undefined;
    }, 5000, 'the aborted stream released');

    // A client that never reads: the node holds at most MAX_BACKPRESSURE_BYTES for it.
    const socket = netConnect(edge.port, '127.0.0.1');
    let closed = false;
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`GET /sse?channel=gone&token=${token} HTTP/1.1\r\nHost: x\r\n\r\n`);
    socket.pause();
    await waitFor(async () => ((await stats(edge)).subscriptions === 1 ? true : undefined), 5000, 'the stalled stream subscribed');
    const big = 'x'.repeat(48 * 1024);
    for (let i = 0; i < 400 && !closed; i++) {
      await broadcast(edge, 'gone', { big, i });
      if ((await stats(edge)).connections === 0) break;
    }
    await waitFor(async () => ((await stats(edge)).connections === 0 ? true : undefined), 10_000, 'the stalled stream closed');
    // Closed by the node's MAX_BACKPRESSURE_BYTES check (not by a socket timeout).
    const metrics = await (await fetch(`${edge.http}/metrics`)).text();
    expect(metrics).toMatch(/^switchyard_messages_total\{[^}]*type="slow_consumer"[^}]*\} [1-9]/m);
    socket.destroy();
  });
});

describe('GET /sse while the node drains', () => {
  it('sends reconnect, then the stream ends', async () => {
    const edge = await startEdge({ DRAIN_TIMEOUT_MS: '4000' });
    try {
      const token = await hsToken({ sub: 'sse-drain', channels: ['d'] });
      const s = new CurlSse(`${edge.http}/sse?channel=d&token=${token}`);
      await s.next((f) => f['type'] === 'subscription_result');
      edge.kill('SIGTERM');
      expect(await s.next((f) => f['type'] === 'reconnect', 10_000, 'reconnect')).toMatchObject({ reason: 'draining', after_ms: expect.any(Number) });
      await Promise.race([s.ended, new Promise((_, reject) => setTimeout(() => reject(new Error('stream still open')), 5000))]);
      expect(s.body.trimEnd().endsWith('}')).toBe(true);
      expect((await edge.exited).code).toBe(0);
    } finally {
      await edge.stop();
    }
  });
});

describe('GET /sse?job_id= on a node that runs jobs', () => {
  it('starts with the job’s snapshot, then its events; a resume gets the snapshot and exactly what it missed', async () => {
    const pipeline = fileURLToPath(new URL('../../examples/pipeline/demo-pipeline.mjs', import.meta.url));
    const edge = await startEdge({ PIPELINE_EXECUTABLE: pipeline, GPU_DEVICES: 'none', PROGRESS_INTERVAL_MS: '0' }, { timeoutMs: 30_000 });
    const streams: CurlSse[] = [];
    try {
      // No `channels` claim: the right to job:<id> comes from owning the job.
      const token = await hsToken({ sub: 'sse-job-owner' });
      const res = await fetch(`${edge.http}/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sample_id: 'S1', params: { stages: 3, stage_ms: 300, sleep_ms: 3000 } }),
      });
      expect(res.status).toBe(202);
      const jobId = ((await res.json()) as { job_id: string }).job_id;
      const first = new CurlSse(`${edge.http}/sse?job_id=${jobId}&token=${token}`);
      streams.push(first);
      expect(await first.next((f) => f['type'] === 'subscription_result')).toMatchObject({ channel: `job:${jobId}`, success: true });
      const snapshot = await first.next((f) => f['type'] === 'snapshot');
      expect(snapshot).toMatchObject({ channel: `job:${jobId}`, seq: expect.any(Number), data: expect.objectContaining({ job_id: jobId, state: expect.any(String) }) });
      await first.until((s) => s.events().length >= 1, 15_000, 'a first job event');
      const cursor = first.lastId!;
      const seen = first.events();
      await first.close();
      const again = new CurlSse(`${edge.http}/sse?job_id=${jobId}&token=${token}`, { 'Last-Event-ID': cursor });
      streams.push(again);
      await again.until((s) => s.frames.some((f) => f['event'] === 'job.completed'), 20_000, 'job.completed');
      expect(await again.next((f) => f['type'] === 'snapshot')).toMatchObject({ channel: `job:${jobId}` });
      const all = [...seen, ...again.events()];
      // Every job event after the snapshot once, in order, across the two streams.
      expect(all).toEqual(range((snapshot['seq'] as number) + 1, (snapshot['seq'] as number) + all.length));
      expect(new Set(all).size).toBe(all.length);
    } finally {
      await Promise.all(streams.map((s) => s.close()));
      await edge.stop();
    }
  });
});

describe('GET /sse and the node-wide admission checks', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ MAX_TOTAL_CONNECTIONS: '1', ALLOWED_ORIGINS: 'https://ok.example' });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('refuses an Origin not in ALLOWED_ORIGINS (403) and a node at MAX_TOTAL_CONNECTIONS (503)', async () => {
    const token = await hsToken({ sub: 'sse-admission', channels: ['adm'] });
    const path = `${edge.http}/sse?channel=adm&token=${token}`;
    const evil = await fetch(path, { headers: { origin: 'https://evil.example' } });
    expect(evil.status).toBe(403);
    expect(await evil.json()).toMatchObject({ error: 'forbidden' });
    // A listed origin, or none (a same-origin EventSource sends none; so does curl), gets the stream.
    const s = new CurlSse(path, { Origin: 'https://ok.example' });
    try {
      await s.next((f) => f['type'] === 'subscription_result');
      expect(s.status).toBe(200);
      // A cross-origin EventSource needs CORS on the stream itself (PROTOCOL.md §9 "HTTP hygiene").
      expect(s.headers['access-control-allow-origin']).toBe('https://ok.example');
      expect(s.headers['x-content-type-options']).toBe('nosniff');
      const full = await fetch(path);
      expect(full.status).toBe(503);
      expect(await full.json()).toMatchObject({ error: 'too_many_connections' });
    } finally {
      await s.close();
    }
    await waitFor(async () => ((await stats(edge)).connections === 0 ? true : undefined), 5000, 'the stream released');
    const plain = new CurlSse(path);
    try {
      await plain.next((f) => f['type'] === 'subscription_result', 10_000, 'a stream without Origin');
    } finally {
      await plain.close();
    }
  });
});

describe('GET /sse and MAX_CONNECTIONS_PER_IP (shared with WebSockets)', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ MAX_CONNECTIONS_PER_IP: '1' });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('refuses a second stream from the same address with 429 too_many_connections', async () => {
    const token = await hsToken({ sub: 'sse-per-ip', channels: ['ip'] });
    const path = `${edge.http}/sse?channel=ip&token=${token}`;
    const s = new CurlSse(path);
    try {
      await s.next((f) => f['type'] === 'subscription_result');
      const second = await fetch(path);
      expect(second.status).toBe(429);
      expect(await second.json()).toMatchObject({ error: 'too_many_connections' });
    } finally {
      await s.close();
    }
    // Once the stream is gone the address is free again.
    await waitFor(async () => ((await stats(edge)).connections === 0 ? true : undefined), 5000, 'the stream released');
    const again = new CurlSse(path);
    try {
      await again.next((f) => f['type'] === 'subscription_result', 10_000, 'a stream after the first one ended');
    } finally {
      await again.close();
    }
  });
});
