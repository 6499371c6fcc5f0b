/**
 * Server-Sent Events through the shipped nginx and HAProxy configurations, in front of three
 * real edges on one real Redis: `curl -N` streams through unbuffered; a stream whose node is
 * killed (SIGKILL) resumes through the proxy on another node from Last-Event-ID alone; and
 * real Chromium's native EventSource, its node killed mid-stream, reconnects by itself and
 * shows every seq once, in order.
 */
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hsToken, startEdge, type EdgeProcess } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';
import { startProxy, type ProxyKind, type ProxyProcess } from '../harness/proxy.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { CurlSse } from '../harness/sse.js';
import { CHROMIUM } from '../harness/system.js';

const KEY = 'bk-sse-proxy';
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const VALUES: Record<ProxyKind, Record<string, string>> = {
  nginx: { REQ_RATE_PER_IP: '50r/s', REQ_BURST_PER_IP: '100' },
  haproxy: { MAX_REQ_PER_IP_10S: '500', CHECK_INTER: '400ms', CHECK_FASTINTER: '100ms', CHECK_DOWNINTER: '300ms' },
};

async function broadcast(edge: EdgeProcess, channel: string, data: unknown): Promise<void> {
  const res = await fetch(`${edge.http}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, event: 'tick', data }),
  });
  expect(res.status).toBe(202);
}

describe.each(['nginx', 'haproxy'] as const)('SSE through %s in front of three edges on one Redis', (kind) => {
  let redis: RedisServer;
  let proxy: ProxyProcess;
  let browser: Browser | undefined;
  const edges: EdgeProcess[] = [];
  const ids = ['a', 'b', 'c'].map((x) => `sse-${kind}-${x}`);
  const streams = new Set<CurlSse>();
  const alive = () => edges.filter((e) => e.proc.exitCode === null && e.proc.signalCode === null);

  /** The edge that holds the only open stream (each edge counts its own clients). */
  async function holder(): Promise<EdgeProcess> {
    return waitFor(
      async () => {
        for (const e of alive()) {
          const st = (await (await fetch(`${e.http}/stats`)).json()) as { connections: number };
          if (st.connections > 0) return e;
        }
        return undefined;
      },
      10_000,
      'the edge holding the stream',
    );
  }

  beforeAll(async () => {
    redis = await startRedis();
    edges.push(
      ...(await Promise.all(
        ids.map((id) => startEdge({ REDIS_URL: redis.url, WORKER_ID: id, BROADCAST_API_KEY: KEY, HEARTBEAT_MS: '300' }, { timeoutMs: 30_000 })),
      )),
    );
    proxy = await startProxy(kind, { upstreams: edges.map((e) => e.port), names: ids, values: VALUES[kind] });
  });

  afterAll(async () => {
    await Promise.all([...streams].map((s) => s.close()));
    await browser?.close();
    await proxy?.stop();
    await Promise.all(edges.map((e) => e.stop()));
    await redis?.stop();
  });

  it('streams through unbuffered, and a killed node’s stream resumes on another from Last-Event-ID', async () => {
    // Two channels, one with every odd character a name may have: the cursor covers both.
    const channel = `feed:${kind}-curl`;
    const odd = `feed:${kind}/a@b.c-d_e:f`;
    const token = await hsToken({ sub: `${kind}-curl`, channels: ['feed:*'] });
    const path = `${proxy.http}/sse?channel=${channel}&channel=${encodeURIComponent(odd)}&token=${token}`;
    const first = new CurlSse(path);
    streams.add(first);
    await first.until((s) => s.frames.filter((f) => f['type'] === 'subscription_result').length === 2, 10_000, 'subscription_results through the proxy');
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('text/event-stream');
    const victimId = first.headers['x-websocket-worker-id']!;
    expect(ids).toContain(victimId);
    const victim = edges[ids.indexOf(victimId)]!;
    const other = alive().find((e) => e !== victim)!;
    // Each event arrives while the response is still open: nothing is held back by the proxy.
    for (let i = 1; i <= 5; i++) {
      await broadcast(other, channel, { i });
      await first.until((s) => s.events(channel).length === i, 10_000, `event ${i} through ${kind}`);
    }
    for (let i = 1; i <= 2; i++) await broadcast(other, odd, { i });
    await first.until((s) => s.events(odd).length === 2, 10_000, 'the odd channel’s events');
    const cursor = first.lastId!;

    victim.kill('SIGKILL');
    await Promise.race([first.ended, new Promise((_, reject) => setTimeout(() => reject(new Error('stream outlived its node')), 10_000))]);
    for (let i = 6; i <= 10; i++) await broadcast(other, channel, { i });
    for (let i = 3; i <= 4; i++) await broadcast(other, odd, { i });

    const back = new CurlSse(path, { 'Last-Event-ID': cursor });
    streams.add(back);
    await back.until((s) => s.events(channel).length === 5 && s.events(odd).length === 2, 15_000, 'the missed events on another node');
    expect(back.status).toBe(200);
    expect(back.headers['x-websocket-worker-id']).not.toBe(victimId);
    const results = back.frames.filter((f) => f['type'] === 'subscription_result');
    expect(results).toHaveLength(2);
    for (const r of results) expect(r).toMatchObject({ success: true, recovered: true });
    await broadcast(other, channel, { i: 11 });
    await back.until((s) => s.events(channel).length === 6, 10_000, 'a live event after the replay');
    expect(back.events(channel)).toEqual(range(6, 11));
    expect(back.events(odd)).toEqual([3, 4]);
    await back.close();
    await first.close();
  });

  it('a native EventSource in Chromium, its node killed mid-stream, shows every seq once, in order', async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const channel = `feed:${kind}-browser`;
    const token = await hsToken({ sub: `${kind}-browser`, channels: ['feed:*'] });
    const page = await browser.newPage();
    // The page comes from the proxy's own origin, so the EventSource is same-origin (no CORS).
    const pageUrl = `${proxy.http}/sse-test-page`;
    await page.route(pageUrl, (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>sse</title><p>sse</p>' }));
    await page.goto(pageUrl);
    await page.evaluate(
      ([src]) => {
        const w = globalThis as unknown as { got: unknown[]; opens: number; EventSource: new (u: string) => { onopen: () => void; onmessage: (e: { data: string; lastEventId: string }) => void } };
        w.got = [];
        w.opens = 0;
        const es = new w.EventSource(src!);
        es.onopen = () => void w.opens++;
        es.onmessage = (e) => void w.got.push({ id: e.lastEventId, frame: JSON.parse(e.data) as unknown });
      },
      [`/sse?channel=${channel}&token=${token}`],
    );
    type Got = { id: string; frame: Record<string, unknown> };
    const got = () => page.evaluate(() => (globalThis as unknown as { got: Got[] }).got);
    const opens = () => page.evaluate(() => (globalThis as unknown as { opens: number }).opens);
    const eventSeqs = async () => (await got()).filter((g) => g.frame['type'] === 'event').map((g) => g.frame['seq'] as number);
    const until = (what: string, check: () => Promise<boolean>, ms = 20_000) => waitFor(async () => ((await check()) ? true : undefined), ms, what);

    await until('the first subscription_result', async () => (await got()).some((g) => g.frame['type'] === 'subscription_result'));
    const victim = await holder();
    const other = alive().find((e) => e !== victim)!;
    for (let i = 1; i <= 5; i++) await broadcast(other, channel, { i });
    await until('events 1..5 in the page', async () => (await eventSeqs()).length === 5);

    victim.kill('SIGKILL');
    await victim.exited;
    for (let i = 6; i <= 10; i++) await broadcast(other, channel, { i });
    // The EventSource reconnects by itself (through the proxy, to a live node) with Last-Event-ID.
    await until('the EventSource reopened and caught up', async () => (await opens()) >= 2 && (await eventSeqs()).length >= 10, 30_000);
    await broadcast(other, channel, { i: 11 });
    await until('a live event after the reconnect', async () => (await eventSeqs()).includes(11));
    expect(await eventSeqs()).toEqual(range(1, 11));
    const results = (await got()).filter((g) => g.frame['type'] === 'subscription_result').map((g) => g.frame);
    expect(results).toHaveLength(2);
    expect(results[1]).toMatchObject({ channel, success: true, recovered: true });
    // Every event message carried a cursor.
    expect((await got()).filter((g) => g.frame['type'] === 'event').every((g) => g.id.length > 0)).toBe(true);
    await page.close();
  });
});
