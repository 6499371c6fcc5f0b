import { AuthFailedError, ServerError, SwitchyardClient, type ConnectionState } from '@switchyard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hsToken, startEdge, type EdgeProcess } from '../harness/index.js';
import { sleep, uniqueSub } from '../harness/keys.js';
import { BROADCAST_KEY, FAST, broadcast, clientPool, range, record } from './helpers.js';


describe('@switchyard/client against a real edge', () => {
  let edge: EdgeProcess;
  const make = clientPool();

  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: BROADCAST_KEY, RATE_LIMIT_BURST: '40', RATE_LIMIT_PER_S: '20', MAX_CONNECTIONS_PER_USER: '1' });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('subscribes, publishes with ack, receives events in order, sends direct messages, unsubscribes', async () => {
    const sub = uniqueSub('pub');
    const client = make({ url: edge.url, token: () => hsToken({ sub, channels: ['room:*'], publish: ['room:*'] }), reconnect: FAST });
    const rec = record(client);
    const hello = await client.waitForConnection();
    expect(hello).toMatchObject({ status: 'connected', userId: sub, resumed: false, url: edge.url });
    expect(await client.subscribe('room:1')).toMatchObject({ channel: 'room:1', seq: 0, epoch: expect.any(String) });
    for (let i = 1; i <= 3; i++) expect(await client.publish('room:1', 'said', { i })).toEqual({ seq: i, degraded: false });
    expect((await broadcast(edge, 'room:1', { i: 4 })).status).toBe(202);
    const events = await rec.waitForEvents('room:1', 4);
    expect(events.map((e) => [e.seq, e.event, e.data])).toEqual([
      [1, 'said', { i: 1 }],
      [2, 'said', { i: 2 }],
      [3, 'said', { i: 3 }],
      [4, 'tick', { i: 4 }],
    ]);
    expect(client.lastSeq('room:1')).toBe(4);

    // A second user gets a direct message, and answers the sender's connection.
    const other = make({ url: edge.url, token: () => hsToken({ sub: uniqueSub('dm') }), reconnect: FAST });
    const received = new Promise((resolve) => other.on('direct', resolve));
    const otherHello = await other.waitForConnection();
    await client.direct(`user:${otherHello.userId}`, { hi: 1 });
    expect(await received).toEqual({ from: hello.connectionId, userId: sub, data: { hi: 1 } });
    await expect(client.direct('user:nobody-here', 1)).rejects.toMatchObject({ code: 'server_error', serverCode: 'not_found' });

    // Publishing without the right is refused with the server's code.
    await expect(client.publish('news', 'x', 1)).rejects.toBeInstanceOf(ServerError);
    expect(await client.ping()).toBeGreaterThanOrEqual(0);

    await client.unsubscribe('room:1');
    await broadcast(edge, 'room:1', { i: 5 });
    await client.ping(); // the server handled the broadcast before answering this
    expect(rec.seqs('room:1')).toEqual([1, 2, 3, 4]);
    expect(rec.errors).toEqual([]);
  });

  it('replays history with since, and refuses a forbidden channel', async () => {
    for (let i = 1; i <= 5; i++) await broadcast(edge, 'hist:a', { i });
    const client = make({ url: edge.url, token: () => hsToken({ sub: uniqueSub('h'), channels: ['hist:*'] }), reconnect: FAST });
    const rec = record(client);
    expect(await client.subscribe('hist:a', { since: 2 })).toMatchObject({ seq: 5, recovered: true });
    expect((await rec.waitForEvents('hist:a', 3)).map((e) => e.seq)).toEqual([3, 4, 5]);
    await expect(client.subscribe('secret')).rejects.toMatchObject({ code: 'server_error', serverCode: 'forbidden' });
    expect(client.channels).toEqual(['hist:a']);
  });

  it('sends what was queued offline once connected, in order', async () => {
    const sub = uniqueSub('q');
    const client = make({ url: edge.url, token: () => hsToken({ sub, channels: ['q:*'], publish: ['q:*'] }), autoConnect: false, reconnect: FAST });
    const rec = record(client);
    const sub1 = client.subscribe('q:1');
    const acks = [1, 2, 3].map((i) => client.publish('q:1', 'queued', { i }));
    expect(client.state.status).toBe('idle');
    client.connect();
    await sub1;
    expect((await Promise.all(acks)).map((a) => a.seq)).toEqual([1, 2, 3]);
    expect((await rec.waitForEvents('q:1', 3)).map((e) => e.data)).toEqual([{ i: 1 }, { i: 2 }, { i: 3 }]);
  });

  it('does not retry a bad token: one attempt, then the failed state with the reason', async () => {
    let asked = 0;
    const client = make({
      url: edge.url,
      token: () => {
        asked++;
        return hsToken({ sub: uniqueSub('bad'), secret: 'another-secret-that-is-long-enough-to-sign!!' });
      },
      reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
    });
    const rec = record(client);
    const failed = (await rec.waitForState((s) => s.status === 'failed')) as Extract<ConnectionState, { status: 'failed' }>;
    expect(failed.error).toBeInstanceOf(AuthFailedError);
    expect(failed.error).toMatchObject({ code: 'auth_failed', reason: 'bad_signature' });
    await expect(client.waitForConnection(1000)).rejects.toBeInstanceOf(AuthFailedError);
    // With a 10–20 ms backoff a retry loop would have made dozens of attempts by now.
    await sleep(600); // sleep-ok: a window in which nothing may happen: a retry loop with a 10-20 ms backoff would have retried
    expect(asked).toBe(1);
    expect(rec.states.map((s) => s.status)).toEqual(['connecting', 'failed']);
    await expect(client.publish('x', 'e', 1)).rejects.toMatchObject({ code: 'closed' });
  });

  it('refreshes the token on the live connection before it expires', { timeout: 30_000 }, async () => {
    const sub = uniqueSub('refresh');
    const reasons: string[] = [];
    const client = make({
      url: edge.url,
      token: ({ reason }) => {
        reasons.push(reason);
        return hsToken({ sub, channels: ['r:*'], expiresIn: 5 });
      },
      reconnect: FAST,
    });
    const rec = record(client);
    const hello = await client.waitForConnection();
    await client.subscribe('r:1');
    // Past two lifetimes of the first token: without a refresh the server would have closed
    // 4001. Each refresh comes a quarter of the token's remaining lifetime (≥ 1 s) before exp.
    await sleep(10_500); // sleep-ok: the window must span two lifetimes of the first token; what is asserted is that nothing closed it
    expect(reasons[0]).toBe('connect');
    expect(reasons.filter((r) => r === 'refresh').length).toBeGreaterThanOrEqual(2);
    expect(reasons.filter((r) => r === 'connect')).toHaveLength(1);
    expect(client.state).toMatchObject({ status: 'connected', connectionId: (hello as { connectionId: string }).connectionId });
    expect(rec.states.map((s) => s.status)).toEqual(['connecting', 'connected']);
    await broadcast(edge, 'r:1', { after: 'refresh' });
    expect((await rec.waitForEvents('r:1', 1))[0]).toMatchObject({ data: { after: 'refresh' } });
    expect(rec.errors).toEqual([]);
  });

  it('with a fixed token that expires: fails with auth_expired instead of looping', async () => {
    const token = await hsToken({ sub: uniqueSub('fixed'), expiresIn: 2 });
    const client = make({ url: edge.url, token, reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
    const rec = record(client);
    await client.waitForConnection();
    const failed = await rec.waitForState((s) => s.status === 'failed', 0, 8000);
    expect(failed).toMatchObject({ error: { code: 'auth_expired' } });
    expect(rec.states.map((s) => s.status)).toEqual(['connecting', 'connected', 'failed']);
  });

  it('after close 4008 (rate limited) waits at least a second, then resumes its subscriptions', async () => {
    const sub = uniqueSub('rate');
    const client = make({ url: edge.url, token: () => hsToken({ sub, channels: ['rl:*'], publish: ['rl:*'] }), reconnect: FAST, requestTimeoutMs: 3000 });
    const rec = record(client);
    await client.subscribe('rl:1');
    const from = rec.states.length;
    // Past RATE_LIMIT_BURST (40) at once.
    const flood = Array.from({ length: 60 }, (_, i) => client.publish('rl:1', 'flood', { i }).catch((e: unknown) => e));
    const reconnecting = await rec.waitForState((s) => s.status === 'reconnecting', from);
    expect(reconnecting).toMatchObject({ closeCode: 4008 });
    expect((reconnecting as { delayMs: number }).delayMs).toBeGreaterThanOrEqual(1000);
    const outcomes = await Promise.all(flood);
    expect(outcomes.some((o) => o instanceof Error && (o as ServerError).code === 'connection_lost')).toBe(true);
    await rec.waitForState((s) => s.status === 'connected', from, 10_000);
    // Whatever was published before the close arrives once, in order, and so does a new one.
    const before = rec.seqs('rl:1').length;
    const ack = await client.publish('rl:1', 'after', {});
    const all = await rec.waitForEvents('rl:1', Math.max(before + 1, ack.seq ?? 0));
    expect(all.map((e) => e.seq)).toEqual(range(1, all.length));
    expect(all.at(-1)).toMatchObject({ event: 'after', seq: ack.seq });
  });

  it('over MAX_CONNECTIONS_PER_USER (4009): keeps retrying with backoff, and gets in once a slot frees', async () => {
    const sub = uniqueSub('many');
    const first = make({ url: edge.url, token: () => hsToken({ sub }), reconnect: FAST });
    await first.waitForConnection();
    const second = make({ url: edge.url, token: () => hsToken({ sub }), reconnect: { initialDelayMs: 100, maxDelayMs: 300 } });
    const rec = record(second);
    const retrying = await rec.waitForState((s) => s.status === 'reconnecting');
    expect(retrying).toMatchObject({ closeCode: 4009 });
    await first.close();
    await second.waitForConnection(10_000);
    expect(rec.states.some((s) => s.status === 'failed')).toBe(false);
  });
});
