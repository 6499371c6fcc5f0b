import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, hsToken, startEdge, type EdgeProcess, type Frame, type TestClient } from '../harness/index.js';
import { startKafka, type KafkaServer } from '../harness/kafka.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { eventsUntil, jobEvents, kafkaTools, names, startRunner, waitOutRedelivery, type RunnerProcess } from './helpers.js';

/** Several runners on one Kafka: partitions shared, a runner killed or stopped mid-job. */
describe('runners in a consumer group', () => {
  let kafka: KafkaServer;
  let redis: RedisServer;
  let edge: EdgeProcess;
  let tools: ReturnType<typeof kafkaTools>;
  const runners: RunnerProcess[] = [];
  const clients: TestClient[] = [];

  const base = () => ({ KAFKA_SERVERS: kafka.brokers, REDIS_URL: redis.url });
  const start = async (id: string, env: Record<string, string>) => {
    const r = await startRunner(id, { ...base(), ...env });
    runners.push(r);
    return r;
  };
  /** One WebSocket client allowed to watch every job, subscribed before the jobs exist. */
  const watcher = async (jobIds: string[]) => {
    const { client } = await connect(edge.url, await hsToken({ sub: 'ops', channels: ['job:*'] }));
    clients.push(client);
    for (const id of jobIds) expect(await client.request({ type: 'subscribe', job_id: id })).toMatchObject({ success: true });
    return client;
  };
  const job = (id: string, params: Record<string, unknown>) => JSON.stringify({ job_id: id, owner: 'ops', params });
  const runnerOf = (f: Frame) => String((f['data'] as { runner: string }).runner);

  beforeAll(async () => {
    [kafka, redis] = await Promise.all([startKafka(), startRedis()]);
    edge = await startEdge({ REDIS_URL: redis.url }, { timeoutMs: 30_000 });
    tools = kafkaTools(kafka.brokers);
  }, 120_000);

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.allSettled(runners.splice(0).map((r) => r.stop()));
  });

  afterAll(async () => {
    await tools?.close();
    await Promise.allSettled([edge?.stop()]);
    await Promise.allSettled([kafka?.stop(), redis?.stop()]);
  });

  it('two runners share a topic of four partitions: every job runs on one of them and completes once', async () => {
    const env = { KAFKA_JOBS_TOPIC: 'shared_jobs', KAFKA_GROUP_ID: 'g-shared', KAFKA_TOPIC_PARTITIONS: '4', RUNNER_CONCURRENCY: '2' };
    const a = await start('ra', env);
    const b = await start('rb', env);
    // Both hold two of the jobs topic's partitions once the group has settled.
    const assigned = (r: RunnerProcess) => {
      const joins = r.lines.filter((l) => l.includes('joined the consumer group'));
      const last = joins.at(-1);
      return last === undefined ? 0 : ((JSON.parse(last) as { assignment: Record<string, number[]> }).assignment['shared_jobs'] ?? []).length;
    };
    await waitFor(() => (assigned(a) === 2 && assigned(b) === 2 ? true : undefined), 20_000, 'two partitions each');

    const ids = Array.from({ length: 8 }, (_, i) => `shared-${i}`);
    const client = await watcher(ids);
    await tools.produce(
      'shared_jobs',
      ids.map((id, i) => ({ key: id, partition: i % 4, value: job(id, { stages: 2, stage_ms: 100 }) })),
    );
    for (const id of ids) await eventsUntil(client, id);
    // No runner died: once each job is final and out of the lease index nothing can run it again.
    for (const id of ids) await waitOutRedelivery(redis, id, 'shared_jobs', undefined);
    await client.barrier();
    const ranOn = new Set<string>();
    for (const id of ids) {
      const n = names(jobEvents(client, id));
      expect(n.filter((e) => e === 'job.completed')).toHaveLength(1);
      expect(n.filter((e) => e === 'job.started')).toHaveLength(1);
      ranOn.add(runnerOf(jobEvents(client, id).find((e) => e['event'] === 'job.started')!));
    }
    expect([...ranOn].sort()).toEqual(['ra', 'rb']);
  }, 60_000);

  it('a runner killed with SIGKILL mid-job: another runner runs the job again and it completes exactly once', async () => {
    const env = { KAFKA_JOBS_TOPIC: 'kill_jobs', KAFKA_GROUP_ID: 'g-kill' };
    await start('ka', env);
    await start('kb', env);
    const client = await watcher(['kill-1']);
    await tools.produce('kill_jobs', [{ key: 'kill-1', value: job('kill-1', { stages: 4, stage_ms: 1000 }) }]);
    const first = await client.next((f) => f.type === 'event' && f['event'] === 'job.started', 15_000);
    const victim = runners.find((r) => r.id === runnerOf(first))!;
    const survivor = runners.find((r) => r !== victim)!;
    await client.next((f) => f.type === 'event' && f['event'] === 'job.progress', 5000);
    victim.kill('SIGKILL');
    const diedAt = Date.now();
    expect((await victim.exited).signal).toBe('SIGKILL');

    const events = await eventsUntil(client, 'kill-1', undefined, 40_000);
    expect(names(events).at(-1)).toBe('job.completed');
    const starts = events.filter((e) => e['event'] === 'job.started');
    expect(starts.map(runnerOf)).toEqual([victim.id, survivor.id]);
    // Nothing more comes, from anyone, once nothing could still bring it (lease, reaper, rebalance).
    await waitOutRedelivery(redis, 'kill-1', 'kill_jobs', diedAt);
    await client.barrier();
    expect(names(jobEvents(client, 'kill-1')).filter((e) => e === 'job.completed')).toHaveLength(1);
    expect(names(jobEvents(client, 'kill-1')).filter((e) => ['job.failed', 'job.cancelled'].includes(e))).toEqual([]);
  }, 60_000);

  it('SIGTERM: a runner finishes a job within SHUTDOWN_GRACE_S, and hands back one that would take longer', async () => {
    // Finishes: one runner, a short job, a long grace.
    const fin = await start('fin', { KAFKA_JOBS_TOPIC: 'fin_jobs', KAFKA_GROUP_ID: 'g-fin', SHUTDOWN_GRACE_S: '15' });
    const c1 = await watcher(['fin-1']);
    await tools.produce('fin_jobs', [{ key: 'fin-1', value: job('fin-1', { stages: 2, stage_ms: 600 }) }]);
    await c1.next((f) => f.type === 'event' && f['event'] === 'job.started', 15_000);
    fin.kill('SIGTERM');
    expect(names(await eventsUntil(c1, 'fin-1', undefined, 15_000)).at(-1)).toBe('job.completed');
    expect(await fin.exited).toEqual({ code: 0, signal: null });

    // Hands back: two runners, a long job, a short grace; the other runner completes it.
    const env = { KAFKA_JOBS_TOPIC: 'term_jobs', KAFKA_GROUP_ID: 'g-term', SHUTDOWN_GRACE_S: '0.5' };
    await start('ta', env);
    await start('tb', env);
    const c2 = await watcher(['term-1']);
    await tools.produce('term_jobs', [{ key: 'term-1', value: job('term-1', { stages: 3, stage_ms: 1000 }) }]);
    const first = await c2.next((f) => f.type === 'event' && f['event'] === 'job.started', 15_000);
    const holder = runners.find((r) => r.id === runnerOf(first))!;
    const other = runners.find((r) => r !== holder && r.id !== 'fin')!;
    holder.kill('SIGTERM');
    const events = await eventsUntil(c2, 'term-1', undefined, 30_000);
    expect(names(events).filter((e) => e !== 'job.progress')).toEqual(['job.queued', 'job.started', 'job.queued', 'job.started', 'job.completed']);
    expect(events.filter((e) => e['event'] === 'job.queued')[1]!['data']).toMatchObject({ reason: 'runner_shutdown' });
    expect(events.filter((e) => e['event'] === 'job.started').map(runnerOf)).toEqual([holder.id, other.id]);
    expect(await holder.exited).toEqual({ code: 0, signal: null });
  }, 90_000);
});
