import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, TestClient, type EdgeProcess, type Frame } from '../harness/index.js';

/**
 * Every client frame type and every server frame of PROTOCOL.md §3, and the error codes of §5
 * that a single node can produce for a bad frame, against one real edge process.
 */

const BROADCAST_KEY = 'bk-frames';

async function broadcast(edge: EdgeProcess, channel: string, data: unknown, event = 'test'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${edge.http}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BROADCAST_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, event, data }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A ping round trip: proves the connection is open and that everything sent before it has arrived. */
async function barrier(client: TestClient): Promise<void> {
  expect(await client.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
}

function unreadOf(client: TestClient, type: string): Frame[] {
  return client.unread().filter((f) => f.type === type);
}

describe('client and server frames', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  const open = async (sub: string, claims: { permissions?: string[]; channels?: string[]; publish?: string[] } = {}) => {
    const { client, hello } = await connect(edge.url, await hsToken({ sub, ...claims }));
    expect(hello).toMatchObject({ type: 'auth_success', user_id: sub });
    clients.push(client);
    return { client, hello };
  };

  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: BROADCAST_KEY, RATE_LIMIT_PER_S: '1000', RATE_LIMIT_BURST: '1000' });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it('auth_success at upgrade with an Authorization header has every field', async () => {
    const token = await hsToken({ sub: 'hdr-user' });
    const client = new TestClient(edge.url, { headers: { authorization: `Bearer ${token}` } });
    clients.push(client);
    const first = await client.next();
    expect(first).toEqual({
      type: 'auth_success',
      connection_id: expect.any(String),
      user_id: 'hdr-user',
      session_id: expect.any(String),
      node_id: expect.any(String),
      resumed: false,
    });
  });

  it('the path / is accepted as well as /ws', async () => {
    const client = new TestClient(`${edge.http.replace('http', 'ws')}/?token=${await hsToken({ sub: 'root-path' })}`);
    clients.push(client);
    expect(await client.next()).toMatchObject({ type: 'auth_success', user_id: 'root-path' });
  });

  it('ping → pong, with and without ref', async () => {
    const { client } = await open('pinger');
    expect(await client.request({ type: 'ping', ref: 'p1' })).toEqual({ type: 'pong', ref: 'p1' });
    expect(await client.request({ type: 'ping', ref: 7 })).toEqual({ type: 'pong', ref: 7 });
    client.send({ type: 'ping' });
    expect(await client.next('pong')).toEqual({ type: 'pong' });
  });

  it('subscribe by channel → subscription_result success with seq and ref; events follow', async () => {
    const { client } = await open('sub-a', { channels: ['dash:*'] });
    const res = await client.request({ type: 'subscribe', channel: 'dash:main', ref: 's1' });
    expect(res).toMatchObject({ type: 'subscription_result', channel: 'dash:main', success: true, seq: 0, ref: 's1' });
    expect(res['error']).toBeUndefined();
    const b = await broadcast(edge, 'dash:main', { ok: true }, 'system.status');
    expect(b).toEqual({ status: 202, body: { channel: 'dash:main', seq: 1 } });
    const ev = await client.next('event');
    expect(ev).toEqual({ type: 'event', channel: 'dash:main', seq: 1, event: 'system.status', data: { ok: true }, timestamp: expect.any(String) });
    expect(new Date(ev['timestamp'] as string).toISOString()).toBe(ev['timestamp']);
  });

  it('subscribe by job_id is the same as channel job:<id>', async () => {
    const { client } = await open('sub-job', { channels: ['job:*'] });
    const res = await client.request({ type: 'subscribe', job_id: 'job-123' });
    expect(res).toMatchObject({ type: 'subscription_result', channel: 'job:job-123', success: true, seq: 0 });
    await broadcast(edge, 'job:job-123', { progress: 0.5 }, 'job.progress');
    expect(await client.next('event')).toMatchObject({ channel: 'job:job-123', seq: 1, event: 'job.progress', data: { progress: 0.5 } });
    // job_id needs the same right as the channel it stands for.
    const { client: other } = await open('sub-job-2', { channels: ['other:*'] });
    expect(await other.request({ type: 'subscribe', job_id: 'job-123' })).toMatchObject({
      type: 'subscription_result',
      channel: 'job:job-123',
      success: false,
      error: 'forbidden',
    });
  });

  it('unsubscribe → unsubscribed with ref; no more events for that channel', async () => {
    const { client } = await open('unsub', { channels: ['u:*'] });
    await client.request({ type: 'subscribe', channel: 'u:1' });
    await client.request({ type: 'subscribe', channel: 'u:2' });
    await broadcast(edge, 'u:1', { n: 1 });
    expect(await client.next('event')).toMatchObject({ channel: 'u:1', seq: 1 });
    expect(await client.request({ type: 'unsubscribe', channel: 'u:1', ref: 'x' })).toEqual({ type: 'unsubscribed', channel: 'u:1', ref: 'x' });
    await broadcast(edge, 'u:1', { n: 2 });
    await broadcast(edge, 'u:2', { n: 1 });
    // The u:2 event was published after the u:1 one: once it is here, a u:1 event would be too.
    expect(await client.next('event')).toMatchObject({ channel: 'u:2', seq: 1 });
    await barrier(client);
    expect(client.frames.filter((f) => f.type === 'event' && f['channel'] === 'u:1').map((f) => f['seq'])).toEqual([1]);
    // Without ref the reply is the bare frame.
    client.send({ type: 'unsubscribe', channel: 'u:2' });
    expect(await client.next('unsubscribed')).toEqual({ type: 'unsubscribed', channel: 'u:2' });
  });

  it('publish → ack with ref and seq; subscribers get the event', async () => {
    const { client: reader } = await open('reader', { channels: ['room:*'] });
    await reader.request({ type: 'subscribe', channel: 'room:1' });
    const { client: writer } = await open('writer', { publish: ['room:*'] });
    const ack1 = await writer.request({ type: 'publish', channel: 'room:1', event: 'chat', data: { text: 'hi' }, ref: 'w1' });
    expect(ack1).toEqual({ type: 'ack', ref: 'w1', seq: 1 });
    const ack2 = await writer.request({ type: 'publish', channel: 'room:1', event: 'chat', data: [1, 'two', null], ref: 99 });
    expect(ack2).toEqual({ type: 'ack', ref: 99, seq: 2 });
    expect(await reader.next('event')).toMatchObject({ channel: 'room:1', seq: 1, event: 'chat', data: { text: 'hi' } });
    expect(await reader.next('event')).toMatchObject({ channel: 'room:1', seq: 2, event: 'chat', data: [1, 'two', null] });
    // A publish without ref is still acknowledged.
    writer.send({ type: 'publish', channel: 'room:1', event: 'chat', data: 3 });
    expect(await writer.next('ack')).toEqual({ type: 'ack', seq: 3 });
    expect(await reader.next('event')).toMatchObject({ seq: 3, data: 3 });
  });

  it('subscribe with since while events are being published: every event once, in order', async () => {
    const base = (await broadcast(edge, 'race:a', 'first')).body['seq'] as number;
    const { client } = await open('racer', { channels: ['race:*'] });
    const total = 60;
    let done = 0;
    let fifth!: () => void;
    const fifthDone = new Promise<void>((resolve) => (fifth = resolve));
    const flood = Promise.all(
      Array.from({ length: total }, (_, i) =>
        broadcast(edge, 'race:a', { i }).then((r) => {
          if (++done === 5) fifth();
          return r.body['seq'] as number;
        }),
      ),
    );
    // Subscribe while the flood is under way: some events are history, some arrive during the join, some are live.
    await fifthDone;
    const res = await client.request({ type: 'subscribe', channel: 'race:a', since: base });
    expect(res).toMatchObject({ type: 'subscription_result', success: true, recovered: true });
    const seqs = await flood;
    expect(Math.max(...seqs)).toBe(base + total);
    const got: number[] = [];
    for (let i = 0; i < total; i++) got.push((await client.next('event'))['seq'] as number);
    expect(got).toEqual(Array.from({ length: total }, (_, i) => base + 1 + i));
    await barrier(client);
    expect(unreadOf(client, 'event')).toEqual([]);
  });

  it('direct to a connection id reaches exactly that connection; the sender gets ack', async () => {
    const { client: alice, hello: aliceHello } = await open('d-alice');
    const { client: bob1, hello: bob1Hello } = await open('d-bob');
    const { client: bob2 } = await open('d-bob');
    const ack = await alice.request({ type: 'direct', to: bob1Hello['connection_id'], data: { hello: 1 }, ref: 'd1' });
    expect(ack).toEqual({ type: 'ack', ref: 'd1' });
    expect(await bob1.next('direct')).toEqual({ type: 'direct', from: aliceHello['connection_id'], user_id: 'd-alice', data: { hello: 1 } });
    await barrier(bob2);
    expect(unreadOf(bob2, 'direct')).toEqual([]);
    expect(unreadOf(alice, 'direct')).toEqual([]);
  });

  it('direct to user:<id> reaches every connection of that user', async () => {
    const { client: alice, hello: aliceHello } = await open('u-alice');
    const { client: bob1 } = await open('u-bob');
    const { client: bob2 } = await open('u-bob');
    const { client: carol } = await open('u-carol');
    expect(await alice.request({ type: 'direct', to: 'user:u-bob', data: { msg: 'both' }, ref: 'd2' })).toEqual({ type: 'ack', ref: 'd2' });
    const expected = { type: 'direct', from: aliceHello['connection_id'], user_id: 'u-alice', data: { msg: 'both' } };
    expect(await bob1.next('direct')).toEqual(expected);
    expect(await bob2.next('direct')).toEqual(expected);
    await barrier(carol);
    expect(unreadOf(carol, 'direct')).toEqual([]);
  });

  it('direct to user:<own id> reaches the sender\'s other connections', async () => {
    const { client: me1, hello: me1Hello } = await open('u-self');
    const { client: me2 } = await open('u-self');
    expect(await me1.request({ type: 'direct', to: 'user:u-self', data: 'note to self', ref: 'd3' })).toEqual({ type: 'ack', ref: 'd3' });
    expect(await me2.next('direct')).toEqual({ type: 'direct', from: me1Hello['connection_id'], user_id: 'u-self', data: 'note to self' });
  });

  it('direct to an absent connection or user → error not_found with ref', async () => {
    const { client } = await open('lonely');
    expect(await client.request({ type: 'direct', to: 'c_doesnotexist', data: 1, ref: 'n1' })).toMatchObject({
      type: 'error',
      code: 'not_found',
      ref: 'n1',
      error: expect.any(String),
    });
    expect(await client.request({ type: 'direct', to: 'user:nobody-here', data: 1, ref: 'n2' })).toMatchObject({
      type: 'error',
      code: 'not_found',
      ref: 'n2',
    });
    await barrier(client);
  });

  it('forbidden: subscribe without right → subscription_result false; publish without right → error', async () => {
    const { client } = await open('no-rights', { channels: ['mine:*'], publish: ['mine:*'] });
    expect(await client.request({ type: 'subscribe', channel: 'secret', ref: 'f1' })).toEqual({
      type: 'subscription_result',
      channel: 'secret',
      success: false,
      error: 'forbidden',
      ref: 'f1',
    });
    expect(await client.request({ type: 'publish', channel: 'secret', event: 'x', data: 1, ref: 'f2' })).toMatchObject({
      type: 'error',
      code: 'forbidden',
      ref: 'f2',
      error: expect.any(String),
    });
    // Nothing was published on the forbidden channel.
    const b = await broadcast(edge, 'secret', { n: 1 });
    expect(b.body['seq']).toBe(1);
    await barrier(client);
  });

  it('every bad frame gets the right error code (ref echoed where readable) and closes nothing', async () => {
    const { client: bystander } = await open('bystander', { channels: ['bystander'] });
    await bystander.request({ type: 'subscribe', channel: 'bystander' });
    const { client } = await open('offender', { permissions: ['*:read', '*:write'] });

    const cases: { send: string | Buffer; code: string; ref?: unknown }[] = [
      { send: 'this is not json', code: 'bad_json' },
      { send: '{"type":"ping"', code: 'bad_json' },
      { send: '', code: 'bad_json' },
      { send: '[1,2,3]', code: 'bad_frame' },
      { send: '[{"type":"ping"}]', code: 'bad_frame' },
      { send: '42', code: 'bad_frame' },
      { send: 'null', code: 'bad_frame' },
      { send: '"ping"', code: 'bad_frame' },
      { send: '{"ref":"m1"}', code: 'bad_frame', ref: 'm1' },
      { send: '{"type":5,"ref":"m2"}', code: 'bad_frame', ref: 'm2' },
      { send: '{"type":"subscribe","channel":"ok","since":-1,"ref":"s1"}', code: 'bad_frame', ref: 's1' },
      { send: '{"type":"subscribe","channel":"ok","since":"3","ref":"s2"}', code: 'bad_frame', ref: 's2' },
      { send: '{"type":"subscribe","channel":"ok","since":1.5,"ref":"s3"}', code: 'bad_frame', ref: 's3' },
      { send: '{"type":"subscribe","ref":"s4"}', code: 'bad_frame', ref: 's4' },
      { send: '{"type":"direct","data":1,"ref":"d1"}', code: 'bad_frame', ref: 'd1' },
      { send: '{"type":"publish","data":1,"ref":"p0"}', code: 'bad_frame', ref: 'p0' },
      { send: '{"type":"ping","ref":{"a":1}}', code: 'bad_frame' },
      { send: JSON.stringify({ type: 'ping', ref: 'r'.repeat(500) }), code: 'bad_frame' },
      { send: '{"type":"nope","ref":"u1"}', code: 'unknown_type', ref: 'u1' },
      { send: '{"type":"nope","ref":17}', code: 'unknown_type', ref: 17 },
      { send: '{"type":"SUBSCRIBE","channel":"a"}', code: 'unknown_type' },
      { send: '{"type":"subscribe","channel":"has space","ref":"c1"}', code: 'bad_channel', ref: 'c1' },
      { send: '{"type":"subscribe","channel":"hash#tag","ref":"c2"}', code: 'bad_channel', ref: 'c2' },
      { send: '{"type":"subscribe","channel":"caf\u00e9","ref":"c3"}', code: 'bad_channel', ref: 'c3' },
      { send: JSON.stringify({ type: 'subscribe', channel: 'a'.repeat(201), ref: 'c4' }), code: 'bad_channel', ref: 'c4' },
      { send: '{"type":"subscribe","channel":"","ref":"c5"}', code: 'bad_channel', ref: 'c5' },
      { send: '{"type":"subscribe","channel":7,"ref":"c6"}', code: 'bad_channel', ref: 'c6' },
      { send: '{"type":"subscribe","job_id":"bad job","ref":"c7"}', code: 'bad_channel', ref: 'c7' },
      { send: '{"type":"unsubscribe","channel":"a*b","ref":"c8"}', code: 'bad_channel', ref: 'c8' },
      { send: '{"type":"publish","channel":"no spaces","data":1,"ref":"c9"}', code: 'bad_channel', ref: 'c9' },
      { send: Buffer.from('{"type":"ping"}'), code: 'bad_frame' },
    ];

    for (const c of cases) {
      if (typeof c.send === 'string') client.send(c.send);
      else client.ws.send(c.send, { binary: true });
      const err = await client.next('error');
      expect(err, `reply to ${String(c.send).slice(0, 60)}`).toMatchObject({ type: 'error', code: c.code, error: expect.any(String) });
      if (c.ref !== undefined) expect(err['ref'], `ref for ${String(c.send).slice(0, 60)}`).toBe(c.ref);
      else expect(err['ref']).toBeUndefined();
      // The connection is still usable after each one.
      await barrier(client);
    }
    // No other reply slipped in for any of them.
    expect(client.unread()).toEqual([]);

    // A channel of exactly 200 characters is legal.
    const longest = 'b'.repeat(200);
    expect(await client.request({ type: 'subscribe', channel: longest })).toMatchObject({ type: 'subscription_result', channel: longest, success: true });

    // The bystander saw nothing of it and still gets its events.
    const b = await broadcast(edge, 'bystander', { still: 'here' });
    expect(await bystander.next('event')).toMatchObject({ channel: 'bystander', seq: b.body['seq'], data: { still: 'here' } });
    expect(bystander.unread().filter((f) => f.type === 'error')).toEqual([]);
    expect(client.ws.readyState).toBe(client.ws.OPEN);
    expect(bystander.ws.readyState).toBe(bystander.ws.OPEN);
  });

  it('unauthenticated: a frame other than auth first → auth_error, close 4001', async () => {
    const cases: (string | Buffer)[] = ['{"type":"ping"}', '{"type":"subscribe","channel":"a"}', 'not json', Buffer.from([1, 2, 3])];
    for (const first of cases) {
      const client = new TestClient(edge.url);
      clients.push(client);
      await client.opened;
      if (typeof first === 'string') client.send(first);
      else client.ws.send(first, { binary: true });
      expect(await client.next('auth_error'), `after ${String(first)}`).toMatchObject({ type: 'auth_error', error: expect.any(String) });
      expect((await client.closed).code).toBe(4001);
    }
  });

  it('auth with a bad token → auth_error, close 4001', async () => {
    const client = new TestClient(edge.url);
    clients.push(client);
    await client.opened;
    client.send({ type: 'auth', token: await hsToken({ sub: 'x', secret: 'another-secret-of-at-least-32-bytes!!' }) });
    expect(await client.next('auth_error')).toMatchObject({ type: 'auth_error', error: expect.any(String) });
    expect((await client.closed).code).toBe(4001);
  });
});
