import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hsToken, startEdge, type EdgeProcess } from '../harness/index.js';
import { childEnv } from '../harness/env.js';
import { DEBIAN_PYTHON } from '../harness/system.js';
import { ChildClient, broadcast } from './child.js';

/**
 * A real third-party client: Debian's python3-websockets (installed by the global setup),
 * speaking the protocol from test/clients/py/client.py.
 */
const SCRIPT = fileURLToPath(new URL('./py/client.py', import.meta.url));
const KEY = 'bk-python';

describe('Python websockets client', () => {
  let edge: EdgeProcess;
  const children: ChildClient[] = [];

  function python(args: string[]): ChildClient {
    const child = new ChildClient(DEBIAN_PYTHON, [SCRIPT, ...args], { env: childEnv({ PYTHONUNBUFFERED: '1' }) });
    children.push(child);
    return child;
  }

  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: KEY });
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.kill()));
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('authenticates by first frame, subscribes, and receives broadcasts in seq order', async () => {
    const token = await hsToken({ sub: 'py-user', channels: ['py:*'] });
    const client = python([edge.url, token, 'py:live', '3', '--timeout', '15']);
    const sub = await client.waitForFrame('subscription_result');
    expect(sub).toMatchObject({ channel: 'py:live', success: true, seq: 0, ref: 'py-sub' });
    for (let i = 1; i <= 3; i++) expect(await broadcast(edge.http, KEY, 'py:live', 'tick', { i })).toBe(i);
    const { code } = await client.exit(15_000);
    expect(code, client.stderr).toBe(0);

    const frames = client.frames();
    expect(frames[0]).toMatchObject({ type: 'auth_success', user_id: 'py-user', resumed: false });
    expect(frames[0]!['session_id']).toEqual(expect.any(String));
    expect(frames[1]).toMatchObject({ type: 'subscription_result', channel: 'py:live', success: true });
    const events = frames.filter((f) => f['type'] === 'event');
    expect(events.map((e) => e['seq'])).toEqual([1, 2, 3]);
    expect(events.map((e) => e['data'])).toEqual([{ i: 1 }, { i: 2 }, { i: 3 }]);
    for (const e of events) expect(e).toMatchObject({ channel: 'py:live', event: 'tick', timestamp: expect.any(String) });
    expect(client.stderr).toMatch(/^websockets \d+\.\d+/);
  });

  it('replays history with since, in order, then ends with the live tail', async () => {
    for (let i = 1; i <= 4; i++) await broadcast(edge.http, KEY, 'py:history', 'old', { i });
    const token = await hsToken({ sub: 'py-user', channels: ['py:*'] });
    const client = python([edge.url, token, 'py:history', '4', '--since', '1', '--timeout', '15']);
    const sub = await client.waitForFrame('subscription_result');
    expect(sub).toMatchObject({ success: true, seq: 4, recovered: true });
    expect(await broadcast(edge.http, KEY, 'py:history', 'new', { i: 5 })).toBe(5);
    const { code } = await client.exit(15_000);
    expect(code, client.stderr).toBe(0);
    const events = client.frames().filter((f) => f['type'] === 'event');
    expect(events.map((e) => e['seq'])).toEqual([2, 3, 4, 5]);
    expect(events.map((e) => e['event'])).toEqual(['old', 'old', 'old', 'new']);
  });

  it('gets auth_error for a bad token', async () => {
    const token = await hsToken({ sub: 'py-user', secret: 'another-secret-that-is-long-enough-for-hs256' });
    const client = python([edge.url, token, 'py:live', '1', '--timeout', '10']);
    const { code } = await client.exit(15_000);
    expect(code, client.stderr).toBe(3);
    expect(client.frames()).toEqual([{ type: 'auth_error', error: expect.any(String), code: 'bad_signature' }]);
  });

  it('is refused a channel its token does not cover', async () => {
    const token = await hsToken({ sub: 'py-user', channels: ['py:*'] });
    const client = python([edge.url, token, 'secret', '1', '--timeout', '10']);
    const { code } = await client.exit(15_000);
    expect(code, client.stderr).toBe(4);
    expect(client.frames()[1]).toEqual({ type: 'subscription_result', channel: 'secret', success: false, error: 'forbidden', ref: 'py-sub' });
  });
});
