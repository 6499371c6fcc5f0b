import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, TestClient, type EdgeProcess } from '../harness/index.js';

describe('edge basics', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: 'bk-test' });
  });
  afterAll(async () => {
    await edge.stop();
  });

  it('authenticates by first frame and answers ping', async () => {
    const { client, hello } = await connect(edge.url, await hsToken({ sub: 'alice' }));
    expect(hello).toMatchObject({ type: 'auth_success', user_id: 'alice', resumed: false });
    expect(hello['connection_id']).toEqual(expect.any(String));
    expect(hello['session_id']).toEqual(expect.any(String));
    expect(hello['node_id']).toEqual(expect.any(String));
    expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    client.close();
  });

  it('authenticates at upgrade with the query token; auth_success comes first', async () => {
    const client = new TestClient(`${edge.url}?token=${await hsToken({ sub: 'bob' })}`);
    const first = await client.next();
    expect(first).toMatchObject({ type: 'auth_success', user_id: 'bob' });
    client.close();
  });

  it('delivers a /broadcast to a subscriber with seq', async () => {
    const { client } = await connect(edge.url, await hsToken({ sub: 'carol', channels: ['news:*'] }));
    const sub = await client.request({ type: 'subscribe', channel: 'news:today' });
    expect(sub).toMatchObject({ type: 'subscription_result', channel: 'news:today', success: true, seq: 0 });
    const res = await fetch(`${edge.http}/broadcast`, {
      method: 'POST',
      headers: { authorization: 'Bearer bk-test', 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'news:today', event: 'headline', data: { n: 1 } }),
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ channel: 'news:today', seq: 1 });
    const event = await client.next('event');
    expect(event).toMatchObject({ channel: 'news:today', seq: 1, event: 'headline', data: { n: 1 } });
    expect(new Date(event['timestamp'] as string).toISOString()).toBe(event['timestamp']);
    client.close();
  });
});
