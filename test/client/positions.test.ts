import { SwitchyardClient } from '@switchyard/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { hsToken, startEdge, type EdgeProcess } from '../harness/index.js';
import { uniqueSub } from '../harness/keys.js';
import { BROADCAST_KEY, broadcast, range, record } from './helpers.js';

/**
 * The SDK sends its own positions on every resume (PROTOCOL.md §9). The `ws` class it is given
 * records what the SDK writes and lets the test cut the connection; the server is a real edge.
 */
describe('@switchyard/client resumes with its positions', () => {
  let edge: EdgeProcess;
  const clients: SwitchyardClient[] = [];
  const sockets: RecordingSocket[] = [];
  const sent: Record<string, unknown>[] = [];

  class RecordingSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
    override send(data: unknown, ...rest: unknown[]): void {
      if (typeof data === 'string') sent.push(JSON.parse(data) as Record<string, unknown>);
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  }

  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: BROADCAST_KEY });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('the resume auth names the last seq handed over on each channel, and nothing is repeated', async () => {
    const sub = uniqueSub('positions');
    const client = new SwitchyardClient({
      url: edge.url,
      token: () => hsToken({ sub, channels: ['pos:*'] }),
      WebSocket: RecordingSocket as unknown as NonNullable<ConstructorParameters<typeof SwitchyardClient>[0]['WebSocket']>,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    clients.push(client);
    const rec = record(client);
    await client.waitForConnection();
    await client.subscribe('pos:a');
    await client.subscribe('pos:b');
    for (let i = 1; i <= 3; i++) await broadcast(edge, 'pos:a', { i });
    await broadcast(edge, 'pos:b', { i: 1 });
    await rec.waitForEvents('pos:a', 3);
    await rec.waitForEvents('pos:b', 1);
    const first = sent.find((f) => f['type'] === 'auth');
    expect(first).not.toHaveProperty('positions');

    const from = rec.states.length;
    sockets.at(-1)!.terminate();
    const resumed = await rec.waitForState((s) => s.status === 'connected', from);
    expect(resumed).toMatchObject({ status: 'connected', resumed: true });
    const auths = sent.filter((f) => f['type'] === 'auth');
    expect(auths).toHaveLength(2);
    expect(auths[1]).toMatchObject({ session_id: expect.any(String), positions: { 'pos:a': 3, 'pos:b': 1 } });

    for (let i = 4; i <= 5; i++) await broadcast(edge, 'pos:a', { i });
    expect((await rec.waitForEvents('pos:a', 5)).map((e) => e.seq)).toEqual(range(1, 5));
  });
});
