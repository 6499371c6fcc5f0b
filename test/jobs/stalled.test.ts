import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess, type Frame, type TestClient } from '../harness/index.js';
import { startKafka, type KafkaServer } from '../harness/kafka.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { checkOrder, eventsUntil, getJob, jobEvents, kafkaTools, names, postJob, startRunner, waitOutRedelivery, type RunnerProcess } from './helpers.js';

/**
 * A final state for every job: a runner killed with SIGKILL mid-job stops renewing its lease;
 * the reapers of the edges and runners (whichever alive) notice, exactly one of them
 * publishes `job.stalled`, and the job runs again elsewhere — or, past its retries, fails
 * with class `stalled` and a dead letter. Plus the runner's readiness on consumer lag and on Redis.
 * Real Kafka, real Redis, every edge and runner its own process.
 */
describe('stalled jobs and runner readiness', () => {
  const TOPIC = 'stall_jobs';
  /** Fast sweeps; the runners' JOB_LEASE_S is 3 (FAST_RUNNER_ENV). */
  const REAP = { JOB_REAP_INTERVAL_MS: '300' };
  let kafka: KafkaServer;
  let redis: RedisServer;
  const edges: EdgeProcess[] = [];
  let tools: ReturnType<typeof kafkaTools>;
  const runners: RunnerProcess[] = [];
  const clients: TestClient[] = [];

  const start = async (id: string, env: Record<string, string> = {}) => {
    const r = await startRunner(id, { KAFKA_SERVERS: kafka.brokers, REDIS_URL: redis.url, KAFKA_JOBS_TOPIC: TOPIC, KAFKA_GROUP_ID: 'g-stall', ...REAP, ...env });
    runners.push(r);
    return r;
  };
  /** A client allowed to watch every job, subscribed before the job exists (so it gets every event live). */
  const watcher = async (jobId: string, edge = edges[1]!) => {
    const { client } = await connect(edge.url, await hsToken({ sub: 'ops', channels: ['job:*'] }));
    clients.push(client);
    expect(await client.request({ type: 'subscribe', job_id: jobId })).toMatchObject({ success: true });
    return client;
  };
  const isEvent = (name: string) => (f: Frame) => f.type === 'event' && f['event'] === name;
  const runnerOf = (f: Frame) => String((f['data'] as { runner: string }).runner);
  /** Log lines, from any process, of a reaper that stalled `jobId`. */
  const stallLines = (procs: { lines: string[] }[], jobId: string) =>
    procs.flatMap((p) => p.lines).filter((l) => l.includes('job stalled: its runner stopped renewing the lease') && l.includes(`"job_id":"${jobId}"`));

  beforeAll(async () => {
    [kafka, redis] = await Promise.all([startKafka(), startRedis()]);
    const env = { REDIS_URL: redis.url, KAFKA_SERVERS: kafka.brokers, KAFKA_JOBS_TOPIC: TOPIC, ...REAP };
    edges.push(...(await Promise.all([0, 1, 2].map((i) => startEdge({ ...env, WORKER_ID: `edge-${i}` }, { timeoutMs: 30_000 })))));
    tools = kafkaTools(kafka.brokers);
  }, 120_000);

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.allSettled(runners.splice(0).map((r) => r.stop()));
  });

  afterAll(async () => {
    await tools?.close();
    await Promise.allSettled(edges.map((e) => e.stop()));
    await Promise.allSettled([kafka?.stop(), redis?.stop()]);
  });

  it('kill -9 the runner of a job: one job.stalled though 3 edges and 2 runners sweep, then it completes on the other runner', async () => {
    await start('sa');
    await start('sb');
    const client = await watcher('stall-1');
    const alice = await hsToken({ sub: 'alice' });
    expect((await postJob(edges[0]!.http, alice, { job_id: 'stall-1', params: { stages: 8, stage_ms: 400 } })).status).toBe(202);
    const first = await client.next(isEvent('job.started'), 20_000);
    const victim = runners.find((r) => r.id === runnerOf(first))!;
    const survivor = runners.find((r) => r !== victim)!;
    await client.next(isEvent('job.progress'), 10_000);
    victim.kill('SIGKILL');
    const diedAt = Date.now();
    expect((await victim.exited).signal).toBe('SIGKILL');

    const events = await eventsUntil(client, 'stall-1', undefined, 40_000);
    checkOrder(events);
    expect(names(events).filter((e) => e !== 'job.progress')).toEqual(['job.queued', 'job.started', 'job.stalled', 'job.started', 'job.completed']);
    const stalled = events.find(isEvent('job.stalled'))!;
    expect(stalled['data']).toMatchObject({ job_id: 'stall-1', attempt: 1, runner: victim.id, will_retry: true, max_retries: 2 });
    expect(events.filter(isEvent('job.started')).map((e) => [runnerOf(e), (e['data'] as { attempt: number }).attempt])).toEqual([
      [victim.id, 1],
      [survivor.id, 2],
    ]);
    // Nothing more comes, from anyone: one stall, one completion — checked once nothing could
    // still bring more (the job final and unleased, the dead member's session over).
    await waitOutRedelivery(redis, 'stall-1', TOPIC, diedAt);
    await client.barrier();
    expect(names(jobEvents(client, 'stall-1')).filter((e) => e === 'job.stalled' || e === 'job.completed')).toEqual(['job.stalled', 'job.completed']);
    expect(stallLines([...edges, ...runners], 'stall-1')).toHaveLength(1);
    expect((await getJob(edges[2]!.http, alice, 'stall-1')).body).toMatchObject({ state: 'completed', attempts: 2, stalls: 1 });
  }, 90_000);

  it('with no runner alive the edges settle a stall at once; the job runs when a runner is back', async () => {
    const solo = await start('solo');
    const client = await watcher('stall-2', edges[2]);
    const alice = await hsToken({ sub: 'alice' });
    expect((await postJob(edges[1]!.http, alice, { job_id: 'stall-2', params: { stages: 6, stage_ms: 400 } })).status).toBe(202);
    await client.next(isEvent('job.progress'), 20_000);
    solo.kill('SIGKILL');
    await solo.exited;

    // No runner is alive: an edge's reaper publishes it and re-queues the next run.
    const stalled = await client.next(isEvent('job.stalled'), 20_000);
    expect(stalled['data']).toMatchObject({ attempt: 1, runner: 'solo', will_retry: true });
    await waitFor(() => (stallLines(edges, 'stall-2').length > 0 ? true : undefined), 5000, 'the reaping edge’s log line');
    expect((await getJob(edges[0]!.http, alice, 'stall-2')).body).toMatchObject({ state: 'stalled', stalls: 1, class: 'stalled' });

    const back = await start('back');
    const events = await eventsUntil(client, 'stall-2', undefined, 40_000);
    checkOrder(events);
    expect(names(events).filter((e) => e !== 'job.progress')).toEqual(['job.queued', 'job.started', 'job.stalled', 'job.started', 'job.completed']);
    expect(runnerOf(events.filter(isEvent('job.started'))[1]!)).toBe(back.id);
    expect(stallLines([...edges, ...runners], 'stall-2')).toHaveLength(1);
  }, 90_000);

  it('past MAX_RETRIES, with only runners reaping: job.stalled, job.failed with class stalled, and a dead letter', async () => {
    // Another topic: the edges index and reap only the jobs of their own topic.
    const topic = 'stall_out';
    const env = { KAFKA_JOBS_TOPIC: topic, KAFKA_GROUP_ID: 'g-out', MAX_RETRIES: '0' };
    await start('oa', env);
    await start('ob', env);
    const dlq = await tools.reader(`${topic}.dlq`);
    const client = await watcher('stall-3', edges[0]);
    await tools.produce(topic, [{ key: 'stall-3', value: JSON.stringify({ job_id: 'stall-3', owner: 'alice', params: { stages: 8, stage_ms: 400 } }) }]);
    const first = await client.next(isEvent('job.started'), 20_000);
    const victim = runners.find((r) => r.id === runnerOf(first))!;
    await client.next(isEvent('job.progress'), 10_000);
    victim.kill('SIGKILL');
    const diedAt = Date.now();
    await victim.exited;

    const events = await eventsUntil(client, 'stall-3', undefined, 40_000);
    checkOrder(events);
    expect(names(events).filter((e) => e !== 'job.progress')).toEqual(['job.queued', 'job.started', 'job.stalled', 'job.failed']);
    expect(events.find(isEvent('job.stalled'))!['data']).toMatchObject({ attempt: 1, runner: victim.id, will_retry: false, max_retries: 0 });
    expect(events.at(-1)!['data']).toMatchObject({ class: 'stalled', attempts: 1, error: expect.stringMatching(new RegExp(`runner ${victim.id} stopped renewing`)) });
    const letter = await waitFor(() => dlq.messages.find((m) => m['job_id'] === 'stall-3'), 20_000, 'the dead letter');
    expect(letter).toMatchObject({ class: 'stalled', attempts: 1, runner: victim.id, job: { job_id: 'stall-3', owner: 'alice' }, source: expect.stringMatching(/^reaper o[ab]$/) });
    await waitOutRedelivery(redis, 'stall-3', topic, diedAt);
    // The DLQ reader has caught up with everything produced until now: a second letter would be here.
    await tools.produce(`${topic}.dlq`, [{ key: 'barrier', value: JSON.stringify({ job_id: 'barrier-stall-3' }) }]);
    await waitFor(() => dlq.messages.some((m) => m['job_id'] === 'barrier-stall-3') || undefined, 20_000, 'the barrier letter');
    expect(dlq.messages.filter((m) => m['job_id'] === 'stall-3')).toHaveLength(1);
    expect(stallLines(edges, 'stall-3')).toEqual([]);
    expect(stallLines(runners, 'stall-3')).toHaveLength(1);
    expect((await getJob(edges[0]!.http, await hsToken({ sub: 'alice' }), 'stall-3')).body).toMatchObject({ state: 'failed', class: 'stalled' });
  }, 90_000);

  it('a runner is not ready while more jobs wait on its partitions than MAX_CONSUMER_LAG, and /health says why', async () => {
    const topic = 'lag_jobs';
    const r = await start('lagger', {
      KAFKA_JOBS_TOPIC: topic,
      KAFKA_GROUP_ID: 'g-lag',
      RUNNER_CONCURRENCY: '1',
      MAX_CONSUMER_LAG: '2',
      LAG_CHECK_INTERVAL_MS: '250',
      READY_REDIS_GRACE_MS: '500',
    });
    const ready = async () => {
      const res = await fetch(`http://127.0.0.1:${r.port}/ready`);
      return { status: res.status, body: (await res.json()) as { ready: boolean; reasons?: string[] } };
    };
    expect((await ready()).status).toBe(200);
    // One slow job holds the only slot; four more wait behind it, uncommitted.
    await tools.produce(topic, [
      { key: 'lag-0', value: JSON.stringify({ job_id: 'lag-0', params: { sleep_ms: 3000, stages: 1, stage_ms: 1 } }) },
      ...[1, 2, 3, 4].map((i) => ({ key: `lag-${i}`, value: JSON.stringify({ job_id: `lag-${i}`, params: { stages: 1, stage_ms: 1 } }) })),
    ]);
    const notReady = await waitFor(async () => {
      const x = await ready();
      return x.status === 503 ? x.body : undefined;
    }, 15_000, 'runner /ready 503 over MAX_CONSUMER_LAG');
    expect(notReady).toMatchObject({ ready: false, state: 'consuming', reasons: [expect.stringMatching(/^consumer lag \d+ over MAX_CONSUMER_LAG \(2\)$/)] });
    const health = (await (await fetch(`http://127.0.0.1:${r.port}/health`)).json()) as { ready: boolean; not_ready: string[]; kafka: { lag: { jobs: number }; max_consumer_lag: number } };
    expect(health).toMatchObject({ ready: false, not_ready: [expect.stringMatching(/consumer lag/)], kafka: { max_consumer_lag: 2 } });
    expect(health.kafka.lag.jobs).toBeGreaterThan(2);
    // Once the jobs are done the lag is gone, and so is the reason.
    await waitFor(async () => ((await ready()).status === 200 ? true : undefined), 20_000, 'runner /ready 200 again');
    const after = await waitFor(async () => {
      const h = (await (await fetch(`http://127.0.0.1:${r.port}/health`)).json()) as { ready: boolean; not_ready?: string[]; kafka: { lag: { jobs: number } } };
      return h.kafka.lag.jobs === 0 ? h : undefined;
    }, 20_000, 'no lag left');
    expect(after.ready).toBe(true);
    expect(after.not_ready).toBeUndefined();

    // Redis away past READY_REDIS_GRACE_MS: not ready either (the last test here: Redis comes back empty).
    await redis.kill();
    const noRedis = await waitFor(async () => {
      const x = await ready();
      return x.status === 503 ? x.body : undefined;
    }, 15_000, 'runner /ready 503 without Redis');
    expect(noRedis.reasons).toEqual([expect.stringMatching(/^redis unreachable for \d+ s$/)]);
    await redis.start();
    await waitFor(async () => ((await ready()).status === 200 ? true : undefined), 20_000, 'runner /ready 200 with Redis back');
  }, 90_000);
});
