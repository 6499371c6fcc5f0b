import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess, type Frame, type TestClient } from '../harness/index.js';

/**
 * docs/protocol.md "v1.1: batch broadcast": `POST /broadcast` with a JSON array publishes
 * every event in order, each answered with its own seq; a batch with any bad event, missing
 * right or past the user's rate budget is refused whole and publishes nothing. The single
 * object form is unchanged.
 */

const BROADCAST_KEY = 'bk-batch';

async function post(edge: EdgeProcess, bearer: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${edge.http}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** The channel's latest seq, read by publishing one more event with the key (so seq = latest + 1). */
async function nextSeq(edge: EdgeProcess, channel: string): Promise<number> {
  const res = await post(edge, BROADCAST_KEY, { channel, data: 'probe' });
  expect(res.status).toBe(202);
  return (res.body as { seq: number }).seq;
}

describe('POST /broadcast, batch form', () => {
  let edge: EdgeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: BROADCAST_KEY, USER_RATE_LIMIT_PER_S: '5' });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.stop();
  });

  it('publishes every event in order, each with its own seq, and subscribers get them in that order', async () => {
    const { client } = await connect(edge.url, await hsToken({ sub: 'reader', channels: ['b:*'] }));
    clients.push(client);
    for (const channel of ['b:one', 'b:two']) expect(await client.request({ type: 'subscribe', channel })).toMatchObject({ success: true });
    const batch = [
      { channel: 'b:one', event: 'e1', data: { n: 1 } },
      { channel: 'b:two', data: [2] },
      { channel: 'b:one', event: 'e3', data: 'three' },
    ];
    const res = await post(edge, BROADCAST_KEY, batch);
    expect(res).toEqual({
      status: 202,
      body: [
        { channel: 'b:one', seq: 1 },
        { channel: 'b:two', seq: 1 },
        { channel: 'b:one', seq: 2 },
      ],
    });
    const got: Frame[] = [];
    for (let i = 0; i < 3; i++) got.push(await client.next('event'));
    expect(got.map((f) => [f['channel'], f['seq'], f['event'], f['data']])).toEqual([
      ['b:one', 1, 'e1', { n: 1 }],
      ['b:two', 1, 'message', [2]],
      ['b:one', 2, 'e3', 'three'],
    ]);
  });

  it('keeps the single-object form exactly as it was', async () => {
    expect(await post(edge, BROADCAST_KEY, { channel: 'single', data: 1 })).toEqual({ status: 202, body: { channel: 'single', seq: 1 } });
  });

  it('refuses a batch with any bad event whole, naming it, and publishes nothing', async () => {
    const cases: [unknown[], string, string][] = [
      [[{ channel: 'bad:a', data: 1 }, { channel: 'no spaces', data: 1 }], 'bad_channel', 'events[1]'],
      [[{ channel: 'bad:a', data: 1 }, { channel: 'bad:a' }], 'bad_frame', 'events[1]'],
      [[{ channel: 'bad:a', data: 1, event: '' }], 'bad_frame', 'events[0]'],
      [[{ channel: 'bad:a', data: 1 }, 42], 'bad_frame', 'events[1]'],
      [[{ channel: 'bad:a', data: 1, coalesce: 'white space' }], 'bad_frame', 'events[0]'],
      [[], 'bad_frame', 'at least one'],
      [Array.from({ length: 1001 }, () => ({ channel: 'bad:a', data: 1 })), 'bad_frame', 'at most 1000'],
    ];
    for (const [batch, code, text] of cases) {
      const res = await post(edge, BROADCAST_KEY, batch);
      expect(res.status, JSON.stringify(batch).slice(0, 80)).toBe(400);
      expect((res.body as { code: string }).code).toBe(code);
      expect((res.body as { error: string }).error).toContain(text);
    }
    expect(await nextSeq(edge, 'bad:a')).toBe(1);
    expect((await post(edge, BROADCAST_KEY, '[{"channel":"bad:a","data":1}')).status).toBe(400);
  });

  it('a JWT bearer needs the publish right on every channel of the batch; a wrong key is 401', async () => {
    const writer = await hsToken({ sub: 'w1', publish: ['jw:*'] });
    const refused = await post(edge, writer, [
      { channel: 'jw:a', data: 1 },
      { channel: 'elsewhere', data: 1 },
    ]);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'forbidden' });
    expect(await nextSeq(edge, 'jw:a')).toBe(1);
    expect(await post(edge, writer, [{ channel: 'jw:a', data: 1 }, { channel: 'jw:b', data: 2 }])).toEqual({
      status: 202,
      body: [
        { channel: 'jw:a', seq: 2 },
        { channel: 'jw:b', seq: 1 },
      ],
    });
    expect((await post(edge, 'not-the-key', [{ channel: 'jw:a', data: 1 }])).status).toBe(401);
    expect(await nextSeq(edge, 'jw:a')).toBe(3);
  });

  it("a JWT bearer's batch past USER_RATE_LIMIT_PER_S is 429 and publishes nothing", async () => {
    const writer = await hsToken({ sub: 'w2', publish: ['rl:*'] });
    // More than two seconds' budget: refused even if the checks straddle a window boundary.
    const batch = Array.from({ length: 11 }, (_, i) => ({ channel: 'rl:a', data: i }));
    const res = await post(edge, writer, batch);
    expect(res.status).toBe(429);
    expect(res.body).toEqual({ error: 'rate_limited' });
    expect(await nextSeq(edge, 'rl:a')).toBe(1);
  });
});
