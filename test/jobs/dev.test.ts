import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hsToken, startEdge, type EdgeProcess, type TestClient } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';
import { checkOrder, eventsUntil, getJob, names, postJob, watchJob } from './helpers.js';

/** `switchyard dev` alone: no Kafka, no Redis; the runner works in process on an in-memory queue. */
describe('switchyard dev runs jobs in process', () => {
  let dev: EdgeProcess;
  const clients: TestClient[] = [];
  const noCluster = { REDIS_URL: undefined, REDIS_CLUSTER_NODES: undefined, KAFKA_SERVERS: undefined, PIPELINE_EXECUTABLE: undefined, BIOGPU_EXECUTABLE: undefined };

  beforeAll(async () => {
    dev = await startEdge({ ...noCluster, BASE_RETRY_DELAY: '0.05', MAX_RETRIES: '1', PROGRESS_INTERVAL_MS: '0', GPU_DEVICES: 'none' }, { command: 'dev', timeoutMs: 30_000 });
    await waitFor(() => dev.lines.some((l) => l.includes('in-process job runner ready')) || undefined, 10_000, 'the in-process runner');
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await dev?.stop();
  });

  it('streams a demo job to its owner over the WebSocket: queued, started, progress…, completed', async () => {
    const token = await hsToken({ sub: 'dev-tester' });
    const submitted = await postJob(dev.http, token, { job_id: 'dev-demo-1', sample_id: 'S1', params: { stages: 4, stage_ms: 50 } });
    expect(submitted).toMatchObject({ status: 202, body: { job_id: 'dev-demo-1' } });
    // By default: the job's status (from the in-memory store), then the events after it.
    const live = await watchJob(dev.url, token, 'dev-demo-1', 'snapshot');
    clients.push(live.client);
    expect(live.snapshot).toMatchObject({ channel: 'job:dev-demo-1', data: { job_id: 'dev-demo-1', owner: 'dev-tester', sample_id: 'S1' } });
    const tail = await eventsUntil(live.client, 'dev-demo-1');
    checkOrder(tail);
    expect(tail[0]!['seq']).toBe(Number(live.snapshot!['seq']) + 1);
    // The whole story with `snapshot: false`.
    const { client, result } = await watchJob(dev.url, token, 'dev-demo-1');
    clients.push(client);
    expect(result).toMatchObject({ success: true });
    const events = await eventsUntil(client, 'dev-demo-1');
    const n = checkOrder(events);
    expect(n[0]).toBe('job.queued');
    expect(n[1]).toBe('job.started');
    expect(n.slice(2, -1).every((e) => e === 'job.progress')).toBe(true);
    expect(n.filter((e) => e === 'job.progress').length).toBeGreaterThanOrEqual(4);
    expect(n.at(-1)).toBe('job.completed');
    expect(events.at(-1)!['data']).toMatchObject({ result: { sample_id: 'S1', stages: 4 } });
    expect((await getJob(dev.http, token, 'dev-demo-1')).body).toMatchObject({ state: 'completed', owner: 'dev-tester', progress: 1 });
    // The banner tells a person how to do the same by hand.
    expect(dev.lines.some((l) => l.includes('/jobs') && l.includes('curl'))).toBe(true);
    expect(dev.lines.some((l) => l.includes('"job_id":"demo-1","since":0'))).toBe(true);
  });

  it('retries a transient failure and fails a permanent one at once (in-memory dead letters)', async () => {
    const token = await hsToken({ sub: 'dev-tester' });
    await postJob(dev.http, token, { job_id: 'dev-transient', params: { stages: 2, stage_ms: 10, fail: 'transient', fail_times: 1 } });
    await postJob(dev.http, token, { job_id: 'dev-permanent', params: { stages: 2, stage_ms: 10, fail: 'permanent' } });
    const t = await watchJob(dev.url, token, 'dev-transient');
    const p = await watchJob(dev.url, token, 'dev-permanent');
    clients.push(t.client, p.client);
    const te = names(await eventsUntil(t.client, 'dev-transient')).filter((e) => e !== 'job.progress');
    expect(te).toEqual(['job.queued', 'job.started', 'job.retrying', 'job.started', 'job.completed']);
    const pe = await eventsUntil(p.client, 'dev-permanent');
    expect(names(pe).filter((e) => e !== 'job.progress')).toEqual(['job.queued', 'job.started', 'job.failed']);
    expect(pe.at(-1)!['data']).toMatchObject({ class: 'permanent', attempts: 1 });
    expect(dev.lines.some((l) => l.includes('job dead-lettered') && l.includes('dev-permanent'))).toBe(true);
  });

  it('cancels a running job, and counts jobs in /metrics', async () => {
    const token = await hsToken({ sub: 'dev-tester' });
    await postJob(dev.http, token, { job_id: 'dev-long', params: { sleep_ms: 30_000 } });
    const { client } = await watchJob(dev.url, token, 'dev-long');
    clients.push(client);
    await eventsUntil(client, 'dev-long', (f) => f['event'] === 'job.progress');
    expect(await client.request({ type: 'cancel', job_id: 'dev-long' })).toMatchObject({ type: 'ack' });
    expect(names(await eventsUntil(client, 'dev-long', undefined, 10_000)).at(-1)).toBe('job.cancelled');
    const metrics = await (await fetch(`${dev.http}/metrics`)).text();
    expect(metrics).toMatch(/switchyard_jobs_total\{status="completed"\} [1-9]/);
    expect(metrics).toMatch(/switchyard_jobs_total\{status="cancelled"\} 1/);
    expect(metrics).toMatch(/switchyard_job_slots 2/);
  });
});

describe('an edge without a job queue', () => {
  it('answers /jobs with 503 jobs_disabled, naming what to set', async () => {
    const edge = await startEdge({ REDIS_URL: undefined, KAFKA_SERVERS: undefined, PIPELINE_EXECUTABLE: undefined, BIOGPU_EXECUTABLE: undefined }, { timeoutMs: 30_000 });
    try {
      const res = await postJob(edge.http, await hsToken({ sub: 'x' }), {});
      expect(res).toMatchObject({ status: 503, body: { code: 'jobs_disabled' } });
      expect(String(res.body['error'])).toMatch(/KAFKA_SERVERS/);
      expect((await postJob(edge.http, 'bad', {})).status).toBe(401);
    } finally {
      await edge.stop();
    }
  });
});
