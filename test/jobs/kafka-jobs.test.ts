import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hsToken, startEdge, type EdgeProcess, type TestClient } from '../harness/index.js';
import { startKafka, type KafkaServer } from '../harness/kafka.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { checkOrder, eventsUntil, getJob, kafkaTools, names, postJob, startRunner, watchJob, type RunnerProcess } from './helpers.js';

/**
 * Jobs end to end on a real Kafka and a real Redis: an edge (POST /jobs, WebSocket) and a
 * runner (`switchyard runner`) as their own processes, the demo pipeline as the job.
 */
describe('jobs on Kafka', () => {
  const TOPIC = 'new_jobs';
  let kafka: KafkaServer;
  let redis: RedisServer;
  let edge: EdgeProcess;
  let runner: RunnerProcess;
  let tools: ReturnType<typeof kafkaTools>;
  let dlq: Awaited<ReturnType<ReturnType<typeof kafkaTools>['reader']>>;
  const clients: TestClient[] = [];

  const watch = async (token: string, jobId: string, mode: 'full' | 'snapshot' = 'full') => {
    const w = await watchJob(edge.url, token, jobId, mode);
    clients.push(w.client);
    return w;
  };
  const dead = (jobId: string) => waitFor(() => dlq.messages.find((m) => m['job_id'] === jobId), 20_000, `${jobId} in the DLQ`);

  beforeAll(async () => {
    [kafka, redis] = await Promise.all([startKafka(), startRedis()]);
    // A 2 s job timeout for the timeout case; every other job here takes well under that.
    runner = await startRunner('r1', { KAFKA_SERVERS: kafka.brokers, REDIS_URL: redis.url, KAFKA_JOBS_TOPIC: TOPIC, JOB_TIMEOUT_S: '2' });
    edge = await startEdge({ REDIS_URL: redis.url, KAFKA_SERVERS: kafka.brokers, KAFKA_JOBS_TOPIC: TOPIC }, { timeoutMs: 30_000 });
    tools = kafkaTools(kafka.brokers);
    dlq = await tools.reader(`${TOPIC}.dlq`);
  }, 120_000);

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(async () => {
    await tools?.close();
    await Promise.allSettled([edge?.stop(), runner?.stop()]);
    await Promise.allSettled([kafka?.stop(), redis?.stop()]);
  });

  it('runs a job submitted over HTTP: its owner sees queued, started, progress…, completed, in order', async () => {
    const token = await hsToken({ sub: 'alice' });
    const submitted = await postJob(edge.http, token, { sample_id: 'S1', path_to_r1: '/data/S1_R1.fq', params: { stages: 3, stage_ms: 50 } });
    expect(submitted.status).toBe(202);
    const jobId = String(submitted.body['job_id']);
    expect(jobId).toMatch(/^j_/);

    // The default view: the job's status as of some seq, then every event after it, in order.
    const live = await watch(token, jobId, 'snapshot');
    expect(live.result).toMatchObject({ type: 'subscription_result', channel: `job:${jobId}`, success: true });
    expect(live.result).not.toHaveProperty('recovered');
    expect(live.snapshot).toMatchObject({ type: 'snapshot', channel: `job:${jobId}`, epoch: live.result['epoch'], data: { job_id: jobId, owner: 'alice' } });
    const tail = await eventsUntil(live.client, jobId);
    checkOrder(tail);
    expect(tail[0]!['seq']).toBe(Number(live.snapshot!['seq']) + 1);

    // The whole story, as the contract's plain replay (`snapshot: false`) tells it.
    const { client, result } = await watch(token, jobId);
    expect(result).toMatchObject({ type: 'subscription_result', channel: `job:${jobId}`, success: true, recovered: true });
    const events = await eventsUntil(client, jobId);
    expect(client.frames.some((f) => f.type === 'snapshot')).toBe(false);
    expect(tail).toEqual(events.filter((e) => Number(e['seq']) > Number(live.snapshot!['seq'])));
    const n = checkOrder(events);
    expect(n[0]).toBe('job.queued');
    expect(n[1]).toBe('job.started');
    expect(n.at(-1)).toBe('job.completed');
    const middle = n.slice(2, -1);
    expect(middle.length).toBeGreaterThanOrEqual(3);
    expect(middle.every((e) => e === 'job.progress')).toBe(true);
    const progress = events.filter((e) => e['event'] === 'job.progress').map((e) => (e['data'] as { progress: number }).progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(events[1]!['data']).toMatchObject({ attempt: 1, runner: 'r1' });
    expect(events.at(-1)!['data']).toMatchObject({ job_id: jobId, attempts: 1, result: { sample_id: 'S1', stages: 3 } });

    const status = await getJob(edge.http, token, jobId);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ job_id: jobId, owner: 'alice', state: 'completed', attempts: 1, progress: 1, result: { sample_id: 'S1' } });

    // Nobody else may watch or read it; a read right on job:<id> is enough.
    const bob = await hsToken({ sub: 'bob' });
    const other = await watch(bob, jobId);
    expect(other.result).toMatchObject({ success: false, error: 'forbidden' });
    expect((await getJob(edge.http, bob, jobId)).status).toBe(403);
    expect((await getJob(edge.http, await hsToken({ sub: 'ops', permissions: [`job:${jobId}:read`] }), jobId)).status).toBe(200);
  });

  it('validates POST /jobs: authentication, the body, a taken job_id', async () => {
    const token = await hsToken({ sub: 'alice' });
    const noAuth = await fetch(`${edge.http}/jobs`, { method: 'POST', body: '{}' });
    expect(noAuth.status).toBe(401);
    expect((await postJob(edge.http, 'not-a-jwt', {})).status).toBe(401);
    expect(await postJob(edge.http, token, { job_id: 'bad id with spaces' })).toMatchObject({ status: 400, body: { code: 'bad_job' } });
    expect(await postJob(edge.http, token, { params: [1, 2] })).toMatchObject({ status: 400, body: { code: 'bad_job' } });
    const bad = await fetch(`${edge.http}/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{nope' });
    expect(bad.status).toBe(400);
    const huge = await postJob(edge.http, token, { params: { pad: 'x'.repeat(70_000) } });
    expect(huge.status).toBe(413);
    expect((await postJob(edge.http, token, { job_id: 'taken-1', params: { stages: 1, stage_ms: 1 } })).status).toBe(202);
    expect(await postJob(edge.http, token, { job_id: 'taken-1' })).toMatchObject({ status: 409, body: { code: 'job_exists' } });
    expect((await getJob(edge.http, token, 'no-such-job')).status).toBe(404);
    const health = (await (await fetch(`${edge.http}/health`)).json()) as { kafka: { status: string } };
    expect(health.kafka.status).toBe('ok');
  });

  it('runs a job produced straight to the topic; its owner (from the JSON) may watch it', async () => {
    const jobId = 'topic-job-1';
    const ops = await hsToken({ sub: 'ops', channels: ['job:*'] });
    const early = await watch(ops, jobId);
    expect(early.result).toMatchObject({ success: true });
    await tools.produce(TOPIC, [{ key: jobId, value: JSON.stringify({ job_id: jobId, owner: 'carol', sample_id: 'T1', params: { stages: 2, stage_ms: 30 } }) }]);
    const events = await eventsUntil(early.client, jobId);
    const n = checkOrder(events);
    expect(n[0]).toBe('job.queued');
    expect(n[1]).toBe('job.started');
    expect(n.at(-1)).toBe('job.completed');
    expect(n.filter((e) => e === 'job.progress').length).toBeGreaterThanOrEqual(2);

    const carol = await hsToken({ sub: 'carol' });
    expect((await getJob(edge.http, carol, jobId)).body).toMatchObject({ owner: 'carol', state: 'completed', sample_id: 'T1' });
    const late = await watch(carol, jobId);
    expect(late.result).toMatchObject({ success: true, recovered: true });
    const replay = await eventsUntil(late.client, jobId);
    expect(names(replay)).toEqual(n);
  });

  it('retries a transient failure after a backoff, then completes', async () => {
    const token = await hsToken({ sub: 'alice' });
    const { body } = await postJob(edge.http, token, { params: { stages: 2, stage_ms: 20, fail: 'transient', fail_times: 1, fail_at: 1 } });
    const jobId = String(body['job_id']);
    const { client } = await watch(token, jobId);
    const events = await eventsUntil(client, jobId);
    const n = checkOrder(events);
    expect(n.filter((e) => e !== 'job.progress')).toEqual(['job.queued', 'job.started', 'job.retrying', 'job.started', 'job.completed']);
    const retrying = events.find((e) => e['event'] === 'job.retrying')!['data'] as Record<string, unknown>;
    expect(retrying).toMatchObject({ attempt: 1, class: 'transient', max_retries: 2 });
    expect(retrying['error']).toMatch(/code 75/);
    expect(retrying['delay_ms']).toBeGreaterThanOrEqual(40);
    expect(retrying['delay_ms']).toBeLessThanOrEqual(60);
    expect(events.filter((e) => e['event'] === 'job.started').map((e) => (e['data'] as { attempt: number }).attempt)).toEqual([1, 2]);
    expect(events.at(-1)!['data']).toMatchObject({ attempts: 2 });
    expect((await getJob(edge.http, token, jobId)).body).toMatchObject({ state: 'completed', attempts: 2 });
  });

  it('sends a permanent failure to the DLQ at once, with the job, the error, its class and the attempts', async () => {
    const token = await hsToken({ sub: 'alice' });
    const { body } = await postJob(edge.http, token, { path_to_r1: '/data/not-a-fastq', params: { stages: 2, stage_ms: 10, fail: 'permanent', fail_at: 0 } });
    const jobId = String(body['job_id']);
    const { client } = await watch(token, jobId);
    const events = await eventsUntil(client, jobId);
    expect(names(events)).toEqual(['job.queued', 'job.started', 'job.failed']);
    expect(events.at(-1)!['data']).toMatchObject({ class: 'permanent', attempts: 1 });
    expect(String((events.at(-1)!['data'] as { error: string }).error)).toMatch(/code 65.*invalid input/);
    const letter = await dead(jobId);
    expect(letter).toMatchObject({ job: { job_id: jobId, owner: 'alice', path_to_r1: '/data/not-a-fastq' }, class: 'permanent', attempts: 1, runner: 'r1' });
    expect(String(letter['error'])).toMatch(/invalid input/);
    expect((await getJob(edge.http, token, jobId)).body).toMatchObject({ state: 'failed', class: 'permanent', attempts: 1 });
  });

  it('dead-letters a job whose retries are exhausted', async () => {
    const token = await hsToken({ sub: 'alice' });
    const { body } = await postJob(edge.http, token, { params: { stages: 1, stage_ms: 10, fail: 'oom', fail_at: 0 } });
    const jobId = String(body['job_id']);
    const { client } = await watch(token, jobId);
    const events = await eventsUntil(client, jobId);
    expect(names(events)).toEqual(['job.queued', 'job.started', 'job.retrying', 'job.started', 'job.retrying', 'job.started', 'job.failed']);
    expect(events.filter((e) => e['event'] === 'job.retrying').map((e) => (e['data'] as { attempt: number }).attempt)).toEqual([1, 2]);
    expect(events.at(-1)!['data']).toMatchObject({ class: 'transient', attempts: 3 });
    const letter = await dead(jobId);
    expect(letter).toMatchObject({ job: { job_id: jobId }, class: 'transient', attempts: 3 });
    expect(String(letter['error'])).toMatch(/CUDA out of memory/);
  });

  it('dead-letters malformed and oversized messages with a clear error, and goes on consuming', async () => {
    const ops = await hsToken({ sub: 'ops', channels: ['job:*'] });
    const after = await watch(ops, 'after-bad-1');
    await tools.produce(TOPIC, [
      { value: '{"job_id": "half-a-job"' },
      { value: JSON.stringify({ job_id: 'too-big-1', params: { pad: 'x'.repeat(300_000) } }) },
      { value: JSON.stringify({ sample_id: 'no id' }) },
      { value: JSON.stringify({ job_id: 'after-bad-1', params: { stages: 1, stage_ms: 10 } }) },
    ]);
    expect(names(await eventsUntil(after.client, 'after-bad-1')).at(-1)).toBe('job.completed');
    const letters = await waitFor(
      () => {
        const found = [
          dlq.messages.find((m) => /not valid JSON/.test(String(m['error']))),
          dlq.messages.find((m) => m['job_id'] === 'too-big-1'),
          dlq.messages.find((m) => /"job_id" must be/.test(String(m['error']))),
        ];
        return found.every((m) => m !== undefined) ? found : undefined;
      },
      20_000,
      'three dead letters',
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the DLQ has: ${JSON.stringify(dlq.messages.map((m) => m['error']))}`);
    });
    expect(letters[0]).toMatchObject({ job: null, class: 'permanent', raw: '{"job_id": "half-a-job"' });
    expect(String(letters[1]!['error'])).toMatch(/more than MAX_JOB_BYTES \(65536\)/);
    expect(letters[1]!['raw_bytes']).toBeGreaterThan(300_000);
    expect(String(letters[1]!['raw']).length).toBeLessThanOrEqual(1024);
    expect(letters[2]).toMatchObject({ job: null, raw: '{"sample_id":"no id"}' });
    // The oversized job had a usable id: its failure is on its channel and in its status.
    expect((await getJob(edge.http, ops, 'too-big-1')).body).toMatchObject({ state: 'failed', class: 'permanent' });
    expect((await fetch(`http://127.0.0.1:${runner.port}/health`)).status).toBe(200);
  });

  it('is not hurt by a pipeline that prints garbage and megabyte lines', async () => {
    const token = await hsToken({ sub: 'alice' });
    const { body } = await postJob(edge.http, token, { params: { stages: 3, stage_ms: 20, noise: true } });
    const jobId = String(body['job_id']);
    const { client } = await watch(token, jobId);
    const events = await eventsUntil(client, jobId);
    const n = checkOrder(events);
    expect(n.at(-1)).toBe('job.completed');
    expect(n.filter((e) => e === 'job.progress').length).toBeGreaterThanOrEqual(3);
    // The runner logs the dropped lines when the pipeline exits, which can land after the
    // job.completed event has reached the client: wait for the line itself (bounded).
    await waitFor(() => runner.lines.some((l) => l.includes('lines over MAX_LINE_BYTES') && l.includes(jobId)) || undefined, 10_000, 'the runner logging the dropped megabyte lines');
  });

  it('cancels a running job with a cancel frame from its owner', async () => {
    const token = await hsToken({ sub: 'dave' });
    const { body } = await postJob(edge.http, token, { params: { sleep_ms: 30_000 } });
    const jobId = String(body['job_id']);
    const { client } = await watch(token, jobId);
    await eventsUntil(client, jobId, (f) => f['event'] === 'job.progress');
    const stranger = await watch(await hsToken({ sub: 'eve' }), 'x');
    expect(await stranger.client.request({ type: 'cancel', job_id: jobId })).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(await client.request({ type: 'cancel', job_id: 'no-such-job' })).toMatchObject({ type: 'error', code: 'not_found' });
    expect(await client.request({ type: 'cancel', job_id: jobId })).toMatchObject({ type: 'ack' });
    const events = await eventsUntil(client, jobId, undefined, 10_000);
    expect(names(events).at(-1)).toBe('job.cancelled');
    expect(names(events)).not.toContain('job.completed');
    expect((await getJob(edge.http, token, jobId)).body).toMatchObject({ state: 'cancelled' });
    await waitFor(async () => ((await runner.metrics()).includes('switchyard_jobs_running 0') ? true : undefined), 10_000, 'the pipeline stopped');
  });

  it('cancels with DELETE /jobs/:id (owner only), and refuses once the job has finished', async () => {
    const token = await hsToken({ sub: 'dave' });
    const { body } = await postJob(edge.http, token, { params: { sleep_ms: 30_000 } });
    const jobId = String(body['job_id']);
    const { client } = await watch(token, jobId);
    await eventsUntil(client, jobId, (f) => f['event'] === 'job.started');
    expect((await getJob(edge.http, await hsToken({ sub: 'eve' }), jobId, 'DELETE')).status).toBe(403);
    expect(await getJob(edge.http, token, jobId, 'DELETE')).toMatchObject({ status: 202, body: { job_id: jobId } });
    expect(names(await eventsUntil(client, jobId, undefined, 10_000)).at(-1)).toBe('job.cancelled');
    expect(await getJob(edge.http, token, jobId, 'DELETE')).toMatchObject({ status: 409, body: { code: 'job_finished' } });
  });

  it('kills a job that runs past JOB_TIMEOUT_S (a transient failure: retried, then dead-lettered)', async () => {
    const token = await hsToken({ sub: 'alice' });
    const { body } = await postJob(edge.http, token, { params: { sleep_ms: 30_000 } });
    const jobId = String(body['job_id']);
    const { client } = await watch(token, jobId);
    const events = await eventsUntil(client, jobId, undefined, 30_000);
    expect(names(events).filter((e) => e !== 'job.progress')).toEqual(['job.queued', 'job.started', 'job.retrying', 'job.started', 'job.retrying', 'job.started', 'job.failed']);
    const failed = events.at(-1)!['data'] as Record<string, unknown>;
    expect(failed).toMatchObject({ class: 'transient', attempts: 3 });
    expect(String(failed['error'])).toMatch(/timed out after 2 s/);
    expect(await dead(jobId)).toMatchObject({ class: 'transient', attempts: 3 });
  }, 45_000);

  it('exposes job metrics on the runner and the edge', async () => {
    const text = await runner.metrics();
    expect(text).toMatch(/switchyard_jobs_total\{status="completed"\} [1-9]/);
    expect(text).toMatch(/switchyard_jobs_total\{status="dead_lettered"\} [1-9]/);
    expect(text).toMatch(/switchyard_job_duration_seconds_count\{outcome="completed"\} [1-9]/);
    await waitFor(async () => (/switchyard_consumer_lag\{topic="new_jobs",partition="0"\} 0/.test(await runner.metrics()) ? true : undefined), 15_000, 'consumer lag measured');
    const edgeMetrics = await (await fetch(`${edge.http}/metrics`)).text();
    expect(edgeMetrics).toMatch(/switchyard_jobs_total\{status="submitted"\} [1-9]/);
  });
});
