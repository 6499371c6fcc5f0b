import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess, type Frame, type TestClient, type TokenOptions } from '../harness/index.js';

/**
 * PROTOCOL.md §3: who may subscribe and publish where (over the socket and through
 * POST /broadcast), per-channel seq, `since` replay and history limits, and the
 * per-connection subscription cap.
 */

const BROADCAST_KEY = 'bk-channels';

async function broadcastAs(edge: EdgeProcess, bearer: string, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${edge.http}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function broadcast(edge: EdgeProcess, channel: string, data: unknown): Promise<number> {
  const res = await broadcastAs(edge, BROADCAST_KEY, { channel, event: 'e', data });
  expect(res.status).toBe(202);
  return res.body['seq'] as number;
}

/** Collects `count` events of `channel`, in arrival order. */
async function events(client: TestClient, channel: string, count: number, timeoutMs = 5000): Promise<Frame[]> {
  const out: Frame[] = [];
  for (let i = 0; i < count; i++) out.push(await client.next((f) => f.type === 'event' && f['channel'] === channel, timeoutMs));
  return out;
}

async function barrier(client: TestClient): Promise<void> {
  expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
}

describe('channels, permissions and seq', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  let n = 0;
  const open = async (claims: TokenOptions = {}) => {
    const { client, hello } = await connect(edge.url, await hsToken({ sub: `user${++n}`, ...claims }));
    expect(hello).toMatchObject({ type: 'auth_success' });
    clients.push(client);
    return client;
  };
  const subscribe = (client: TestClient, channel: string, since?: number) =>
    client.request({ type: 'subscribe', channel, ...(since !== undefined && { since }) });

  beforeAll(async () => {
    edge = await startEdge({
      BROADCAST_API_KEY: BROADCAST_KEY,
      HISTORY_SIZE: '3',
      MAX_SUBSCRIPTIONS_PER_CONNECTION: '2',
      RATE_LIMIT_PER_S: '1000',
      RATE_LIMIT_BURST: '1000',
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  describe('subscribe rights', () => {
    const cases: { name: string; claims: TokenOptions; allowed: string[]; denied: string[] }[] = [
      {
        name: 'channels pattern job:*',
        claims: { channels: ['job:*'] },
        allowed: ['job:1', 'job:abc-def', 'job:a:b'],
        denied: ['jobs:1', 'job', 'xjob:1', 'dashboard'],
      },
      {
        name: 'exact channel pattern',
        claims: { channels: ['room:1'] },
        allowed: ['room:1'],
        denied: ['room:12', 'room:', 'room'],
      },
      {
        name: 'star in the middle',
        claims: { channels: ['org:*:public'] },
        allowed: ['org:acme:public', 'org:a:b:public'],
        denied: ['org:acme:private', 'org:acme:public2'],
      },
      {
        name: 'C:read permission',
        claims: { permissions: ['dashboard:read'] },
        allowed: ['dashboard'],
        denied: ['dashboard2', 'dash', 'other'],
      },
      {
        name: 'C:write does not allow reading',
        claims: { permissions: ['news:write'], publish: ['news'] },
        allowed: [],
        denied: ['news'],
      },
      {
        name: '*:read permission',
        claims: { permissions: ['*:read'] },
        allowed: ['anything', 'job:9', 'user:someone-else', 'a/b@c.d'],
        denied: [],
      },
      {
        name: 'no claims at all',
        claims: {},
        allowed: [],
        denied: ['dashboard', 'job:1', 'user:someone-else'],
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const client = await open(c.claims);
        for (const channel of c.allowed) {
          const res = await subscribe(client, channel);
          expect(res, channel).toMatchObject({ type: 'subscription_result', channel, success: true });
          // Stay under MAX_SUBSCRIPTIONS_PER_CONNECTION.
          await client.request({ type: 'unsubscribe', channel });
        }
        for (const channel of c.denied) {
          expect(await subscribe(client, channel), channel).toMatchObject({ type: 'subscription_result', channel, success: false, error: 'forbidden' });
        }
      });
    }

    it('user:<sub> is always allowed, other users are not', async () => {
      const { client, hello } = await connect(edge.url, await hsToken({ sub: 'self-reader' }));
      clients.push(client);
      expect(hello['user_id']).toBe('self-reader');
      expect(await subscribe(client, 'user:self-reader')).toMatchObject({ success: true, channel: 'user:self-reader' });
      expect(await subscribe(client, 'user:self-reader2')).toMatchObject({ success: false, error: 'forbidden' });
      expect(await subscribe(client, 'user:other')).toMatchObject({ success: false, error: 'forbidden' });
      await broadcast(edge, 'user:self-reader', { note: 'for you' });
      expect(await client.next('event')).toMatchObject({ channel: 'user:self-reader', data: { note: 'for you' } });
    });
  });

  describe('publish rights', () => {
    const cases: { name: string; claims: TokenOptions; allowed: string[]; denied: string[] }[] = [
      { name: 'publish pattern chat:*', claims: { publish: ['chat:*'] }, allowed: ['chat:1', 'chat:x:y'], denied: ['chat', 'chatter:1', 'other'] },
      { name: 'C:write permission', claims: { permissions: ['news:write'] }, allowed: ['news'], denied: ['news2', 'new', 'other'] },
      { name: '*:write permission', claims: { permissions: ['*:write'] }, allowed: ['anything', 'user:x', 'job:1'], denied: [] },
      {
        name: 'read rights do not allow publishing',
        claims: { channels: ['feed:*'], permissions: ['feed:read', '*:read'] },
        allowed: [],
        denied: ['feed:1', 'feed:read', 'feed'],
      },
      { name: 'no claims', claims: {}, allowed: [], denied: ['x', 'user:user-self'] },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const client = await open(c.claims);
        for (const channel of c.allowed) {
          const ack = await client.request({ type: 'publish', channel, event: 'e', data: 1 });
          expect(ack, channel).toMatchObject({ type: 'ack', seq: expect.any(Number) });
        }
        for (const channel of c.denied) {
          expect(await client.request({ type: 'publish', channel, event: 'e', data: 1 }), channel).toMatchObject({ type: 'error', code: 'forbidden' });
        }
      });
    }
  });

  describe('POST /broadcast rights', () => {
    it('BROADCAST_API_KEY may publish anywhere', async () => {
      expect(await broadcastAs(edge, BROADCAST_KEY, { channel: 'bk:any', data: 1 })).toEqual({ status: 202, body: { channel: 'bk:any', seq: 1 } });
    });

    it('a JWT bearer needs the publish right on the channel', async () => {
      const viaPattern = await hsToken({ sub: 'b1', publish: ['jwt:*'] });
      const viaWrite = await hsToken({ sub: 'b2', permissions: ['jwtw:write'] });
      const viaStar = await hsToken({ sub: 'b3', permissions: ['*:write'] });
      const readOnly = await hsToken({ sub: 'b4', channels: ['jwt:*'], permissions: ['*:read', 'jwt:a:read'] });
      expect(await broadcastAs(edge, viaPattern, { channel: 'jwt:a', data: 1 })).toEqual({ status: 202, body: { channel: 'jwt:a', seq: 1 } });
      expect(await broadcastAs(edge, viaWrite, { channel: 'jwtw', data: 1 })).toEqual({ status: 202, body: { channel: 'jwtw', seq: 1 } });
      expect(await broadcastAs(edge, viaStar, { channel: 'jwt:a', data: 1 })).toEqual({ status: 202, body: { channel: 'jwt:a', seq: 2 } });
      expect((await broadcastAs(edge, viaPattern, { channel: 'other', data: 1 })).status).toBe(403);
      expect((await broadcastAs(edge, viaWrite, { channel: 'jwtw2', data: 1 })).status).toBe(403);
      const denied = await broadcastAs(edge, readOnly, { channel: 'jwt:a', data: 1 });
      expect(denied.status).toBe(403);
      expect(denied.body['code']).toBe('forbidden');
      // Nothing was published by the refused requests.
      expect((await broadcastAs(edge, BROADCAST_KEY, { channel: 'jwt:a', data: 1 })).body['seq']).toBe(3);
    });

    it('a wrong key, a foreign JWT or an expired JWT is 401', async () => {
      expect((await broadcastAs(edge, 'not-the-key', { channel: 'c', data: 1 })).status).toBe(401);
      const foreign = await hsToken({ sub: 'x', permissions: ['*:write'], secret: 'a-different-secret-of-32-bytes-or-more' });
      expect((await broadcastAs(edge, foreign, { channel: 'c', data: 1 })).status).toBe(401);
      const expired = await hsToken({ sub: 'x', permissions: ['*:write'], expiresIn: -3600 });
      expect((await broadcastAs(edge, expired, { channel: 'c', data: 1 })).status).toBe(401);
    });
  });

  describe('seq and since', () => {
    it('seq rises by exactly 1 per event, whoever publishes; subscription_result.seq is the latest', async () => {
      const reader = await open({ channels: ['seq:*'] });
      const writer = await open({ publish: ['seq:*'] });
      expect(await subscribe(reader, 'seq:a')).toMatchObject({ success: true, seq: 0 });
      const seqs: number[] = [];
      for (let i = 0; i < 10; i++) {
        if (i % 2 === 0) seqs.push(await broadcast(edge, 'seq:a', { i }));
        else seqs.push((await writer.request({ type: 'publish', channel: 'seq:a', event: 'e', data: { i } }))['seq'] as number);
      }
      expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      const got = await events(reader, 'seq:a', 10);
      expect(got.map((e) => e['seq'])).toEqual(seqs);
      expect(got.map((e) => (e['data'] as { i: number }).i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      // seq is per channel: another channel starts at 1.
      expect(await broadcast(edge, 'seq:b', 0)).toBe(1);
      // A late subscriber is told the latest seq.
      const late = await open({ channels: ['seq:*'] });
      expect(await subscribe(late, 'seq:a')).toMatchObject({ success: true, seq: 10 });
      // Subscribing again to a channel already held reports the latest seq and adds nothing.
      expect(await subscribe(late, 'seq:a')).toMatchObject({ success: true, seq: 10 });
      await broadcast(edge, 'seq:a', 'once');
      expect(await late.next('event')).toMatchObject({ seq: 11, data: 'once' });
      await barrier(late);
      expect(late.unread().filter((f) => f.type === 'event')).toEqual([]);
    });

    it('since replays the missed events in order, then live ones (recovered:true)', async () => {
      for (let i = 1; i <= 5; i++) expect(await broadcast(edge, 'replay:a', { i })).toBe(i);
      const client = await open({ channels: ['replay:*'] });
      const res = await subscribe(client, 'replay:a', 2);
      expect(res).toMatchObject({ type: 'subscription_result', channel: 'replay:a', success: true, seq: 5, recovered: true });
      const replayed = await events(client, 'replay:a', 3);
      expect(replayed.map((e) => e['seq'])).toEqual([3, 4, 5]);
      expect(replayed.map((e) => e['data'])).toEqual([{ i: 3 }, { i: 4 }, { i: 5 }]);
      // subscription_result comes before the replayed events.
      const order = client.frames.filter((f) => f['channel'] === 'replay:a').map((f) => (f.type === 'event' ? f['seq'] : f.type));
      expect(order).toEqual(['subscription_result', 3, 4, 5]);
      expect(await broadcast(edge, 'replay:a', { i: 6 })).toBe(6);
      expect(await client.next('event')).toMatchObject({ channel: 'replay:a', seq: 6, data: { i: 6 } });
      await barrier(client);
      expect(client.unread().filter((f) => f.type === 'event')).toEqual([]);
    });

    it('since equal to the latest seq: recovered:true and nothing replayed', async () => {
      for (let i = 1; i <= 2; i++) await broadcast(edge, 'replay:b', { i });
      const client = await open({ channels: ['replay:*'] });
      expect(await subscribe(client, 'replay:b', 2)).toMatchObject({ success: true, seq: 2, recovered: true });
      await barrier(client);
      expect(client.unread().filter((f) => f.type === 'event')).toEqual([]);
    });

    it('since behind the retained history (HISTORY_SIZE=3): recovered:false and what is retained', async () => {
      for (let i = 1; i <= 10; i++) await broadcast(edge, 'replay:c', { i });
      const client = await open({ channels: ['replay:*'] });
      expect(await subscribe(client, 'replay:c', 1)).toMatchObject({ success: true, seq: 10, recovered: false });
      const got = await events(client, 'replay:c', 3);
      expect(got.map((e) => e['seq'])).toEqual([8, 9, 10]);
      await broadcast(edge, 'replay:c', { i: 11 });
      expect(await client.next('event')).toMatchObject({ seq: 11 });
      await barrier(client);
      expect(client.unread().filter((f) => f.type === 'event')).toEqual([]);
      // since=0 on a channel with more than HISTORY_SIZE events is just as unrecoverable.
      const other = await open({ channels: ['replay:*'] });
      expect(await subscribe(other, 'replay:c', 0)).toMatchObject({ success: true, seq: 11, recovered: false });
      expect((await events(other, 'replay:c', 3)).map((e) => e['seq'])).toEqual([9, 10, 11]);
    });
  });

  it('MAX_SUBSCRIPTIONS_PER_CONNECTION=2: the third subscribe fails with too_many_subscriptions', async () => {
    const client = await open({ permissions: ['*:read'] });
    expect(await subscribe(client, 'cap:1')).toMatchObject({ success: true });
    expect(await subscribe(client, 'cap:2')).toMatchObject({ success: true });
    const third = await client.request({ type: 'subscribe', channel: 'cap:3', ref: 't3' });
    expect(third).toEqual({ type: 'subscription_result', channel: 'cap:3', success: false, error: 'too_many_subscriptions', ref: 't3' });
    // The refused subscription receives nothing; the held ones still work.
    await broadcast(edge, 'cap:3', 'no');
    await broadcast(edge, 'cap:1', 'yes');
    expect(await client.next('event')).toMatchObject({ channel: 'cap:1', data: 'yes' });
    await barrier(client);
    expect(client.unread().filter((f) => f.type === 'event')).toEqual([]);
    // Re-subscribing to a held channel is not a new subscription.
    expect(await subscribe(client, 'cap:2')).toMatchObject({ success: true });
    // After an unsubscribe there is room again.
    await client.request({ type: 'unsubscribe', channel: 'cap:1' });
    expect(await subscribe(client, 'cap:3')).toMatchObject({ success: true, seq: 1 });
  });
});
