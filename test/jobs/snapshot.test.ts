import { SwitchyardClient, followJob } from '@switchyard/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess, type Frame, type TestClient } from '../harness/index.js';
import { startKafka, type KafkaServer } from '../harness/kafka.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { checkOrder, eventsUntil, jobEvents, kafkaTools, postJob, startRunner, type RunnerProcess } from './helpers.js';

/**
 * Snapshot plus tail: a subscription to `job:<id>` starts with the job's status from its
 * Redis hash, stamped with the seq of the last event it reflects, then the events after that
 * seq — exactly once, whatever is published meanwhile, and whatever history is left.
 * Two edges, a runner, real Kafka and Redis, each its own process.
 */
describe('job snapshots', () => {
  const TOPIC = 'snap_jobs';
  let kafka: KafkaServer;
  let redis: RedisServer;
  let edgeA: EdgeProcess;
  let edgeB: EdgeProcess;
  let runner: RunnerProcess;
  let tools: ReturnType<typeof kafkaTools>;
  const clients: TestClient[] = [];
  const sdkClients: SwitchyardClient[] = [];
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** Connects and sends one subscribe; the frames it gets are in `client.frames`. */
  const subscribe = async (edge: EdgeProcess, token: string, frame: Record<string, unknown>) => {
    const { client } = await connect(edge.url, token);
    clients.push(client);
    const result = await client.request({ type: 'subscribe', ...frame });
    return { client, result };
  };
  /** The frames of one channel after the subscription_result, in the order they came. */
  const after = (client: TestClient, channel: string) => {
    const all = client.frames.filter((f) => f['channel'] === channel);
    return all.slice(all.findIndex((f) => f.type === 'subscription_result') + 1);
  };

  beforeAll(async () => {
    [kafka, redis] = await Promise.all([startKafka(), startRedis()]);
    const env = { REDIS_URL: redis.url, KAFKA_SERVERS: kafka.brokers, KAFKA_JOBS_TOPIC: TOPIC };
    [edgeA, edgeB] = await Promise.all([startEdge({ ...env, WORKER_ID: 'snap-a' }, { timeoutMs: 30_000 }), startEdge({ ...env, WORKER_ID: 'snap-b' }, { timeoutMs: 30_000 })]);
    runner = await startRunner('snap-runner', { KAFKA_SERVERS: kafka.brokers, REDIS_URL: redis.url, KAFKA_JOBS_TOPIC: TOPIC, KAFKA_GROUP_ID: 'g-snap' });
    tools = kafkaTools(kafka.brokers);
  }, 120_000);

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(sdkClients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await tools?.close();
    await Promise.allSettled([edgeA?.stop(), edgeB?.stop(), runner?.stop()]);
    await Promise.allSettled([kafka?.stop(), redis?.stop()]);
  });

  it('a finished job whose history is gone still shows its true state in a snapshot, with or without since', async () => {
    const alice = await hsToken({ sub: 'alice' });
    const id = 'snap-done';
    const channel = `job:${id}`;
    const { client: watcher } = await subscribe(edgeA, await hsToken({ sub: 'ops', channels: ['job:*'] }), { job_id: id });
    expect((await postJob(edgeA.http, alice, { job_id: id, sample_id: 'S9', params: { stages: 5, stage_ms: 20 } })).status).toBe(202);
    const story = await eventsUntil(watcher, id);
    const last = Number(story.at(-1)!['seq']);
    expect(story.at(-1)!['event']).toBe('job.completed');

    // The history is trimmed away (its list emptied, the channel's seq kept): the plain replay
    // can only say recovered:false; the snapshot says what happened.
    redis.cli('DEL', `sy:{${channel}}:h`);
    const plain = await subscribe(edgeB, alice, { job_id: id, since: 2, snapshot: false });
    expect(plain.result).toMatchObject({ success: true, seq: last, recovered: false });
    // With `since` the contract's replay still holds (recovered:false: the events are gone), and
    // the snapshot, sent first, says what happened.
    const snap = await subscribe(edgeB, alice, { job_id: id, since: 2 });
    expect(snap.result).toMatchObject({ success: true, seq: last, recovered: false });
    await snap.client.next('snapshot', 10_000);
    // Whatever the node sent on this subscription is here once the ping after it is answered.
    await snap.client.barrier();
    expect(after(snap.client, channel)).toEqual([
      {
        type: 'snapshot',
        channel,
        seq: last,
        epoch: snap.result['epoch'],
        data: expect.objectContaining({ job_id: id, owner: 'alice', state: 'completed', progress: 1, attempts: 1, sample_id: 'S9', result: expect.objectContaining({ sample_id: 'S9' }) }),
      },
    ]);
    // Without `since` the subscription_result is as ever (no `recovered`), then the snapshot.
    const bare = await subscribe(edgeA, alice, { job_id: id });
    expect(bare.result).not.toHaveProperty('recovered');
    expect(await bare.client.next('snapshot')).toMatchObject({ seq: last, data: { state: 'completed' } });

    // Days later the channel itself has expired (a new epoch, seqs from 1 again); the status
    // hash outlives it (JOB_STATUS_TTL_S). A client coming back with its old position:
    redis.cli('DEL', `sy:{${channel}}:h`, `sy:{${channel}}:m`);
    const later = await subscribe(edgeB, alice, { job_id: id, since: last });
    expect(later.result).toMatchObject({ success: true, seq: 0, recovered: false });
    expect(later.result['epoch']).not.toBe(snap.result['epoch']);
    expect(await later.client.next('snapshot')).toMatchObject({ seq: 0, epoch: later.result['epoch'], data: { state: 'completed' } });

    // The SDK: followJob settles on the snapshot, though no event of the job is left.
    const sdk = new SwitchyardClient({ url: edgeA.url, token: alice });
    sdkClients.push(sdk);
    const snapshots: number[] = [];
    sdk.on('snapshot', (s) => snapshots.push(s.seq));
    const followed = await followJob(sdk, id).done;
    expect(followed).toMatchObject({ jobId: id, status: 'completed', progress: 1, result: expect.objectContaining({ sample_id: 'S9' }), events: 0 });
    expect(snapshots).toEqual([0]);
  }, 60_000);

  it('the seam: events published while clients subscribe come once each, right after the snapshot, which matches the event at its seq', async () => {
    const id = 'snap-seam';
    const channel = `job:${id}`;
    const ops = await hsToken({ sub: 'ops', channels: ['job:*'] });
    // The reference: subscribed before the job exists, it gets every event live.
    const { client: reference } = await subscribe(edgeA, ops, { job_id: id });
    expect((await postJob(edgeA.http, await hsToken({ sub: 'alice' }), { job_id: id, params: { stages: 20, stage_ms: 40 } })).status).toBe(202);
    // Late subscribers, on the other edge, every 60 ms while the job runs (the runner
    // publishes progress every 40 ms): some without `since`, some from 0, some from further on.
    const late: { client: TestClient; since: number | undefined }[] = [];
    for (let i = 0; i < 12; i++) {
      const seen = jobEvents(reference, id).length;
      const since = i % 3 === 0 ? undefined : i % 3 === 1 ? 0 : Math.max(0, seen - 1);
      const token = await hsToken({ sub: `late-${i}`, channels: ['job:*'] });
      const { client, result } = await subscribe(edgeB, token, { job_id: id, ...(since !== undefined && { since }) });
      expect(result).toMatchObject({ success: true });
      late.push({ client, since });
      await sleep(60); // sleep-ok: spreads the late subscribers over the job's run; nothing waits on it
    }
    const story = await eventsUntil(reference, id, undefined, 30_000);
    checkOrder(story);
    const bySeq = new Map(story.map((e) => [Number(e['seq']), e]));
    const final = Number(story.at(-1)!['seq']);
    for (const { client, since } of late) {
      await waitFor(() => (jobEvents(client, id).some((e) => Number(e['seq']) === final) ? true : undefined), 10_000, 'the last event on a late subscriber');
      const frames = after(client, channel);
      expect(frames[0]!.type).toBe('snapshot');
      const snapshot = frames[0]!;
      const s = Number(snapshot['seq']);
      const events = frames.slice(1);
      expect(events.every((f) => f.type === 'event')).toBe(true);
      // Exactly the events after `since` (the contract's replay) or, without it, after the
      // snapshot — each once, in order.
      const from = since ?? s;
      expect(events.map((e) => Number(e['seq']))).toEqual(Array.from({ length: final - from }, (_, k) => from + 1 + k));
      expect(events).toEqual(story.filter((e) => Number(e['seq']) > from));
      // The snapshot reflects exactly the event at its seq.
      const data = snapshot['data'] as Record<string, unknown>;
      const at = bySeq.get(s) as Frame;
      const atData = at['data'] as Record<string, unknown>;
      switch (at['event']) {
        case 'job.queued':
          expect(data).toMatchObject({ state: 'queued' });
          break;
        case 'job.started':
          expect(data).toMatchObject({ state: 'running', progress: 0, attempts: 1 });
          break;
        case 'job.progress':
          expect(data).toMatchObject({ state: 'running', progress: atData['progress'], stage: atData['stage'] });
          break;
        case 'job.completed':
          expect(data).toMatchObject({ state: 'completed' });
          break;
        default:
          throw new Error(`unexpected event at the snapshot's seq: ${JSON.stringify(at)}`);
      }
    }
    // The subscribers did not all land before the job started or after it ended.
    const seqs = new Set(late.map(({ client }) => Number(after(client, channel)[0]!['seq'])));
    expect(seqs.size).toBeGreaterThan(2);
  }, 60_000);
});
