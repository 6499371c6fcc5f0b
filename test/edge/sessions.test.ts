import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess } from '../harness/index.js';

const KEY = 'bk-sessions';

describe('sessions on one node', () => {
  let edge: EdgeProcess;
  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: KEY });
  });
  afterAll(async () => {
    await edge.stop();
  });

  const broadcast = (channel: string, data: unknown) =>
    fetch(`${edge.http}/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ channel, data }),
    });

  it('restores subscriptions and replays what was missed, then goes live', async () => {
    const token = await hsToken({ sub: 'sam', channels: ['s:*'] });
    const { client, hello } = await connect(edge.url, token);
    await client.request({ type: 'subscribe', channel: 's:a' });
    await client.request({ type: 'subscribe', channel: 's:b' });
    await broadcast('s:a', 1);
    await client.next('event');
    client.close();
    await client.closed;
    await broadcast('s:a', 2);
    await broadcast('s:b', 3);
    const { client: back, hello: again } = await connect(edge.url, token, { session_id: hello['session_id'] });
    expect(again).toMatchObject({ resumed: true, session_id: hello['session_id'] });
    const results = [await back.next('subscription_result'), await back.next('subscription_result')];
    expect(results.map((r) => r['channel']).sort()).toEqual(['s:a', 's:b']);
    expect(results.every((r) => r['recovered'] === true)).toBe(true);
    expect(await back.next((f) => f.type === 'event' && f['channel'] === 's:a')).toMatchObject({ seq: 2, data: 2 });
    expect(await back.next((f) => f.type === 'event' && f['channel'] === 's:b')).toMatchObject({ seq: 1, data: 3 });
    await broadcast('s:a', 4);
    expect(await back.next((f) => f.type === 'event' && f['channel'] === 's:a')).toMatchObject({ seq: 3, data: 4 });
    back.close();
  });

  it('checks rights again on resume: a token without the channel gets forbidden for it', async () => {
    const { client, hello } = await connect(edge.url, await hsToken({ sub: 'rita', channels: ['r:*'] }));
    await client.request({ type: 'subscribe', channel: 'r:secret' });
    client.close();
    await client.closed;
    const weaker = await hsToken({ sub: 'rita', channels: ['other:*'] });
    const { client: back, hello: again } = await connect(edge.url, weaker, { session_id: hello['session_id'] });
    expect(again['resumed']).toBe(true);
    expect(await back.next('subscription_result')).toMatchObject({ channel: 'r:secret', success: false, error: 'forbidden' });
    await broadcast('r:secret', 'nope');
    expect(await back.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    expect(back.frames.some((f) => f.type === 'event')).toBe(false);
    back.close();
  });

  it('does not hand a session to another user', async () => {
    const { client, hello } = await connect(edge.url, await hsToken({ sub: 'owner', channels: ['o:*'] }));
    client.close();
    await client.closed;
    const { client: thief, hello: stolen } = await connect(edge.url, await hsToken({ sub: 'thief' }), { session_id: hello['session_id'] });
    expect(stolen).toMatchObject({ resumed: false });
    expect(stolen['session_id']).not.toBe(hello['session_id']);
    thief.close();
  });

  it('a second connection resuming a live session takes it over (close 4011)', async () => {
    const token = await hsToken({ sub: 'twin', channels: ['t:*'] });
    const { client: first, hello } = await connect(edge.url, token);
    const { client: second, hello: h2 } = await connect(edge.url, token, { session_id: hello['session_id'] });
    expect(h2['resumed']).toBe(true);
    expect((await first.closed)).toEqual({ code: 4011, reason: 'session_resumed_elsewhere' });
    second.close();
  });
});
