import { PUBLISH_FUNCTION_LUA, RedisBroker, type BrokerEvent } from '@switchyard/broker';
import { encodeEvent } from '@switchyard/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisJobStore } from '../../packages/jobs/src/index.js';
import { announcementJson } from '../../packages/jobs/src/store.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

/**
 * Golden: a frame that a Lua script builds inside Redis equals, byte for byte, the one the
 * TypeScript encoder (`encodeEvent`) makes for the same event, on both ways out of Redis
 * (pub/sub to subscribers, history for catch-up).
 */
describe('frames built in Lua equal the TypeScript encoder', () => {
  let redis: RedisServer;
  let broker: RedisBroker;
  let subscriber: RedisBroker;
  const live: BrokerEvent[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    broker = new RedisBroker({ url: redis.url, historySize: 100, historyTtlS: 60 });
    subscriber = new RedisBroker({ url: redis.url, historySize: 100, historyTtlS: 60 });
    subscriber.setListener((e) => live.push(e));
    await Promise.all([broker.ready(), subscriber.ready()]);
  });
  afterAll(async () => {
    await Promise.all([broker?.close(), subscriber?.close()]);
    await redis?.stop();
  });

  const DATA = [
    '{"text":"héllo wörld ✓ 🚀","quote":"say \\"hi\\"","slash":"a/b\\\\c","ctl":"\\n\\t\\u0001","del":"\u007f"}',
    '[1,-2.5e-7,true,false,null,{"nested":{"k":"v"}}]',
    '"just a string"',
    '12345678901234567890',
  ];

  it.each([
    { name: 'plain', channel: 'golden:plain', event: 'message', coalesce: undefined },
    { name: 'coalescing', channel: 'golden:co', event: 'tick', coalesce: 'price:EURUSD' },
    { name: 'escaped event name', channel: 'golden:ev', event: 'ev "quoted" \\ ünï/code', coalesce: undefined },
  ])('$name events, on pub/sub and in history', async ({ channel, event, coalesce }) => {
    await subscriber.subscribe(channel);
    const published = [];
    for (const dataJson of DATA) published.push({ dataJson, result: await broker.publish({ channel, event, dataJson, ...(coalesce !== undefined && { coalesce }) }) });
    const expected = published.map(({ dataJson, result }) => encodeEvent(channel, result.seq, event, dataJson, result.publishedAt, coalesce));
    await waitFor(() => live.filter((e) => e.channel === channel).length === DATA.length || undefined, 10_000, 'live events');
    expect(live.filter((e) => e.channel === channel).map((e) => e.frame)).toEqual(expected);
    expect((await broker.history(channel, 0)).events.map((e) => e.frame)).toEqual(expected);
    // Straight from Redis too, not through any TypeScript that might rebuild the frame.
    expect(redis.cli('--raw', 'LRANGE', `sy:{${channel}}:h`, '0', '-1').trimEnd().split('\n')).toEqual(expected);
  });

  it('writes a seq of 10^14 and more as digits, as JSON.stringify does', async () => {
    const channel = 'golden:big';
    await broker.position(channel);
    redis.cli('HSET', `sy:{${channel}}:m`, 's', '99999999999999');
    const a = await broker.publish({ channel, event: 'e', dataJson: '1' });
    const b = await broker.publish({ channel, event: 'e', dataJson: '2' });
    expect([a.seq, b.seq]).toEqual([100000000000000, 100000000000001]);
    const frames = (await broker.history(channel, a.seq - 1)).events.map((e) => e.frame);
    expect(frames).toEqual([encodeEvent(channel, a.seq, 'e', '1', a.publishedAt), encodeEvent(channel, b.seq, 'e', '2', b.publishedAt)]);
  });

  it('json_string, the Lua side of frames built in Redis, writes strings as JSON.stringify does', async () => {
    const samples = ['plain', 'a/b', 'quote " backslash \\ \\u007f', 'ctl \u0000\u0001\b\t\n\v\f\r\u001b\u001f del \u007f', 'ünïcödé ✓ 🚀', ''];
    for (const s of samples) {
      const got = await broker.client.eval(`${PUBLISH_FUNCTION_LUA}\nreturn json_string(ARGV[1])`, 0, s);
      expect(got).toBe(JSON.stringify(s));
    }
  });

  it('a job.stalled event built in Lua equals the TypeScript encoding of the same announcement', async () => {
    const store = new RedisJobStore(broker.client, { ttlS: 120, broker });
    const jobId = 'golden/stall:1';
    const runner = 'rünner "7" /\\ x';
    await store.create({ job_id: jobId }, 'alice');
    const claimed = await store.claim(jobId, { runner, attempt: 1, leaseMs: 1, job: { job_id: jobId } });
    expect(claimed.kind).toBe('claimed');
    const outcome = await waitFor(
      async () => {
        const o = await store.stall(jobId, 'reaper-1', { reapMs: 60_000, defaultMaxRetries: 3 });
        return o.kind === 'alive' ? undefined : o;
      },
      10_000,
      'the lease to lapse',
    );
    expect(outcome.kind).toBe('stalled');
    const events = (await broker.history(`job:${jobId}`, 0)).events;
    const last = events.at(-1)!;
    const timestamp = Date.parse((JSON.parse(last.frame) as { timestamp: string }).timestamp);
    const error = `runner ${runner} stopped renewing the lease of run 1 (it died or hangs)`;
    const dataJson = announcementJson(jobId, { event: 'job.stalled', data: { attempt: 1, runner, error, will_retry: true, max_retries: 3 } });
    expect(last.frame).toBe(encodeEvent(`job:${jobId}`, last.seq, 'job.stalled', dataJson, timestamp));
  });
});
