import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, TestClient, type EdgeProcess, type Frame, rawUpgrade } from '../harness/index.js';

/**
 * PROTOCOL.md §4 draining: on SIGTERM /ready turns 503, new upgrades are refused, every client
 * gets `reconnect` then close 1012, and the process exits 0 within DRAIN_TIMEOUT_MS.
 */

const DRAIN_TIMEOUT_MS = 4000;

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))]);
}

function expectReconnect(frame: Frame): void {
  expect(frame).toEqual({ type: 'reconnect', reason: 'draining', after_ms: expect.any(Number) });
  const after = frame['after_ms'] as number;
  expect(Number.isInteger(after)).toBe(true);
  expect(after).toBeGreaterThanOrEqual(0);
  expect(after).toBeLessThanOrEqual(DRAIN_TIMEOUT_MS);
}

describe('drain on SIGTERM', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    edge = await startEdge({ DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS), BROADCAST_API_KEY: 'bk-drain' });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it('reconnect + 1012 to every client, /ready 503 and upgrades refused meanwhile, exit 0 in time', async () => {
    expect((await fetch(`${edge.http}/ready`)).status).toBe(200);

    const token = await hsToken({ sub: 'drainee', channels: ['d'] });
    const { client: a } = await connect(edge.url, token);
    const { client: b } = await connect(edge.url, await hsToken({ sub: 'other' }));
    const c = new TestClient(`${edge.url}?token=${token}`);
    // Connected but not yet authenticated: it is told to go as well.
    const pending = new TestClient(edge.url);
    // Stopped reading its socket: it must not hold the drain up.
    const paused = new TestClient(`${edge.url}?token=${token}`);
    clients.push(a, b, c, pending, paused);
    expect(await c.next()).toMatchObject({ type: 'auth_success' });
    expect(await paused.next()).toMatchObject({ type: 'auth_success' });
    await pending.opened;
    expect(await a.request({ type: 'subscribe', channel: 'd' })).toMatchObject({ success: true });
    const pausedSocket = (paused.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    pausedSocket.pause();

    const signalledAt = Date.now();
    edge.kill('SIGTERM');

    const first = await within(a.next('reconnect'), 3000, 'reconnect');
    expectReconnect(first);

    // While the node lingers: not ready, and no new connections.
    const ready = await fetch(`${edge.http}/ready`);
    expect(ready.status).toBe(503);
    for (const h of ['x-websocket-worker-id', 'x-websocket-local-connections', 'x-websocket-total-sessions', 'x-websocket-total-workers']) {
      expect(ready.headers.get(h), h).not.toBeNull();
    }
    const refused = await rawUpgrade(edge.url);
    expect(refused.status).toBe(503);
    expect(refused.headers['x-websocket-worker-id']).toEqual(expect.any(String));
    const late = new TestClient(`${edge.url}?token=${await hsToken({ sub: 'late' })}`);
    clients.push(late);
    await expect(late.opened).rejects.toMatchObject({ status: 503 });

    for (const client of [a, b, c, pending]) {
      const closed = await within(client.closed, 3000, 'close');
      expect(closed).toEqual({ code: 1012, reason: 'draining' });
      const last = client.frames[client.frames.length - 1];
      expect(last, 'reconnect is the last frame before the close').toBeDefined();
      expectReconnect(last!);
      expect(client.frames.filter((f) => f.type === 'reconnect')).toHaveLength(1);
    }

    const exit = await within(edge.exited, DRAIN_TIMEOUT_MS + 2000, 'process exit');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(DRAIN_TIMEOUT_MS + 2000);

    // What was sent to the paused client is there once it reads again.
    pausedSocket.resume();
    const pausedClosed = await within(paused.closed, 3000, 'paused close');
    expect(pausedClosed).toEqual({ code: 1012, reason: 'draining' });
    expectReconnect(paused.frames[paused.frames.length - 1]!);
  });
});

describe('drain with no clients', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ DRAIN_TIMEOUT_MS: '3000' });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('exits 0 soon after SIGTERM', async () => {
    edge.kill('SIGTERM');
    expect(await within(edge.exited, 5000, 'process exit')).toEqual({ code: 0, signal: null });
    expect(edge.lines.some((l) => l.includes('draining'))).toBe(true);
  });
});
