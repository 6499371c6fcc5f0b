import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess } from '../harness/index.js';
import { uniqueSub } from '../harness/keys.js';
import { waitFor } from '../harness/ports.js';

const ADMIN_KEY = 'admin-key-for-console-tests';
const BROADCAST_KEY = 'bk-console-tests';
const ADMIN_GETS = ['/admin/nodes', '/admin/channels', '/admin/jobs', '/admin/dead-letters', '/admin/channels/demo/events'];

async function get(base: string, path: string, key?: string): Promise<{ status: number; type: string; text: string; headers: Headers }> {
  const res = await fetch(`${base}${path}`, key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text(), headers: res.headers };
}

async function json(base: string, path: string, key = ADMIN_KEY, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('the console is off unless CONSOLE=true', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ ADMIN_API_KEY: ADMIN_KEY, CONSOLE: undefined });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('answers 404 for the page, its assets and every admin endpoint, even with the admin key', async () => {
    for (const path of ['/console', '/console/app.js', '/console/app.css', ...ADMIN_GETS]) {
      const r = await get(edge.http, path, ADMIN_KEY);
      expect(r.status, path).toBe(404);
    }
    expect((await json(edge.http, '/admin/token', ADMIN_KEY, { method: 'POST' })).status).toBe(404);
  });
});

describe('the console with CONSOLE=true', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ ADMIN_API_KEY: ADMIN_KEY, BROADCAST_API_KEY: BROADCAST_KEY, CONSOLE: 'true', WORKER_ID: 'console-node' });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('serves the page and its own assets without a key (nothing from elsewhere)', async () => {
    const page = await get(edge.http, '/console');
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const srcs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(srcs).toEqual(expect.arrayContaining(['/console/app.js', '/console/app.css']));
    for (const src of srcs) expect(src.startsWith('/console/') || src.startsWith('data:'), src).toBe(true);
    const js = await get(edge.http, '/console/app.js');
    expect(js.status).toBe(200);
    expect(js.type).toMatch(/^text\/javascript/);
    expect(js.text).toContain('/admin/nodes');
    const css = await get(edge.http, '/console/app.css');
    expect(css.status).toBe(200);
    expect(css.type).toMatch(/^text\/css/);
  });

  it('refuses every admin endpoint without the key, with a wrong key, or with another scheme: 401 {"error":"unauthorized"}', async () => {
    for (const path of ADMIN_GETS) {
      for (const key of [undefined, 'wrong-key', `${ADMIN_KEY}x`, BROADCAST_KEY]) {
        const r = await get(edge.http, path, key);
        expect(r.status, `${path} with ${key}`).toBe(401);
        expect(JSON.parse(r.text)).toEqual({ error: 'unauthorized' });
        expect(r.headers.get('cache-control')).toBe('no-store');
      }
      const basic = await fetch(`${edge.http}${path}`, { headers: { authorization: `Basic ${ADMIN_KEY}` } });
      expect(basic.status).toBe(401);
    }
    const token = await fetch(`${edge.http}/admin/token`, { method: 'POST' });
    expect(token.status).toBe(401);
    expect(await token.json()).toEqual({ error: 'unauthorized' });
    // A user's JWT is not the admin key either.
    const jwt = await hsToken({ sub: uniqueSub('user'), permissions: ['*:read', '*:write'] });
    expect((await get(edge.http, '/admin/nodes', jwt)).status).toBe(401);
  });

  it('lists this node with its connections, sessions, CPU and memory', async () => {
    const { client } = await connect(edge.url, await hsToken({ sub: uniqueSub('watcher') }));
    try {
      // The node samples its numbers at most twice a second: wait for one that counts the client.
      const node = await waitFor(async () => {
        const { body } = await json(edge.http, '/admin/nodes');
        const n = (body['nodes'] as Record<string, unknown>[])[0]!;
        return n['connections'] === 1 && n['sessions'] === 1 ? n : undefined;
      }, 10_000, 'the node counting the client');
      expect(node).toMatchObject({ id: 'console-node', self: true, draining: false, connections: 1, sessions: 1 });
      expect(node['cpu_percent']).toEqual(expect.any(Number));
      expect(node['rss_bytes']).toBeGreaterThan(10 * 1024 * 1024);
      expect(node['heap_used_bytes']).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });

  it('shows the busiest channels with subscribers and events per second, and a channel’s latest events', async () => {
    const channel = uniqueSub('console');
    const { client } = await connect(edge.url, await hsToken({ sub: uniqueSub('sub'), channels: [channel] }));
    try {
      client.send({ type: 'subscribe', channel });
      await client.next('subscription_result');
      const publish = (n: number) =>
        fetch(`${edge.http}/broadcast`, {
          method: 'POST',
          headers: { authorization: `Bearer ${BROADCAST_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel, event: 'tick', data: { n } }),
        });
      let n = 0;
      const row = await waitFor(async () => {
        await publish(++n);
        const { body } = await json(edge.http, '/admin/channels');
        const c = (body['channels'] as Record<string, unknown>[]).find((x) => x['channel'] === channel);
        return c !== undefined && (c['events_per_s'] as number) > 0 ? c : undefined;
      }, 15_000, 'a rate for the channel');
      expect(row).toMatchObject({ channel, subscribers: 1 });
      expect(row['seq']).toBeGreaterThan(0);

      const { status, body } = await json(edge.http, `/admin/channels/${encodeURIComponent(channel)}/events?limit=2`);
      expect(status).toBe(200);
      expect(body).toMatchObject({ channel });
      const events = body['events'] as Record<string, unknown>[];
      expect(events).toHaveLength(2);
      expect(events.map((e) => e['type'])).toEqual(['event', 'event']);
      expect((events[1]!['seq'] as number) - (events[0]!['seq'] as number)).toBe(1);
      expect(events[1]!['seq']).toBe(body['seq']);
    } finally {
      client.close();
    }
  });

  it('answers bad channel names and limits with 400, and unknown admin paths with 404', async () => {
    expect((await json(edge.http, '/admin/channels/bad%20name/events')).status).toBe(400);
    expect((await json(edge.http, '/admin/channels/%E0%A4%A/events')).status).toBe(400);
    expect((await json(edge.http, '/admin/channels/demo/events?limit=0')).status).toBe(400);
    expect((await json(edge.http, '/admin/jobs?limit=abc')).status).toBe(400);
    expect((await json(edge.http, '/admin/channels/demo')).status).toBe(404);
  });

  it('says when the node runs no job queue', async () => {
    expect(await json(edge.http, '/admin/jobs')).toEqual({ status: 200, body: { enabled: false, jobs: [] } });
    expect(await json(edge.http, '/admin/dead-letters')).toEqual({ status: 200, body: { enabled: false, dead_letters: [] } });
  });

  it('mints a read-only token for the page’s own WebSocket', async () => {
    const { status, body } = await json(edge.http, '/admin/token', ADMIN_KEY, { method: 'POST' });
    expect(status).toBe(200);
    expect(body['expires_at']).toEqual(expect.any(String));
    const { client, hello } = await connect(edge.url, body['token'] as string);
    try {
      expect(hello).toMatchObject({ type: 'auth_success' });
      const channel = uniqueSub('any');
      client.send({ type: 'subscribe', channel, ref: 's' });
      expect(await client.next('subscription_result')).toMatchObject({ channel, success: true });
      client.send({ type: 'publish', channel, data: { no: true }, ref: 'p' });
      expect(await client.next('error')).toMatchObject({ code: 'forbidden', ref: 'p' });
    } finally {
      client.close();
    }
  });
});

describe('CONSOLE=true without ADMIN_API_KEY', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ ADMIN_API_KEY: undefined, CONSOLE: 'true' });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('serves the page but no data to anyone', async () => {
    expect((await get(edge.http, '/console')).status).toBe(200);
    for (const key of [undefined, '', 'undefined', 'anything']) {
      expect((await get(edge.http, '/admin/nodes', key)).status).toBe(401);
    }
    expect(edge.lines.some((l) => l.includes('CONSOLE=true without ADMIN_API_KEY'))).toBe(true);
  });
});
