import { fileURLToPath } from 'node:url';
import { MemoryBroker } from '@switchyard/broker';
import { JobService, MemoryJobControl, MemoryJobQueue, MemoryJobStore, NOOP_LOGGER } from '@switchyard/jobs';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport, Runner, RunnerMetrics, type RunnerConfigSlice } from '../src/index.js';

const DEMO = fileURLToPath(new URL('../../../examples/pipeline/demo-pipeline.mjs', import.meta.url));

const BASE: RunnerConfigSlice = {
  runnerId: 'unit-runner',
  pipelineExecutable: DEMO,
  referenceDbPath: undefined,
  resistanceDbPath: undefined,
  jobTimeoutS: 20,
  maxRetries: 2,
  baseRetryDelayS: 0.01,
  maxRetryDelayS: 1,
  jobLeaseS: 5,
  killGraceS: 1,
  shutdownGraceS: 5,
  progressIntervalMs: 0,
  maxLineBytes: 65_536,
  maxJobBytes: 65_536,
};

interface Ev {
  event: string;
  seq: number;
  data: Record<string, unknown>;
  timestamp: string;
}

/** A runner on the in-process transport, with the real memory broker, store and queue. */
async function setup(over: Partial<RunnerConfigSlice> = {}, slotCount = 2) {
  const broker = new MemoryBroker();
  const queue = new MemoryJobQueue();
  const store = new MemoryJobStore({ ttlS: 60, broker });
  const control = new MemoryJobControl();
  const transport = new MemoryTransport(queue, { logger: NOOP_LOGGER });
  const metrics = new RunnerMetrics({ registry: new Registry() });
  const slots = Array.from({ length: slotCount }, (_, i) => ({ id: `cpu${i}` }));
  const runner = new Runner({ ...BASE, ...over }, { transport, store, control, slots, metrics, logger: NOOP_LOGGER, random: () => 0.5 });
  const service = new JobService({ store, queue, control, maxJobBytes: BASE.maxJobBytes });
  await runner.start();
  const eventsOf = async (id: string): Promise<Ev[]> =>
    (await broker.history(`job:${id}`, 0)).events.map((e) => JSON.parse(e.frame) as Ev);
  const until = async (id: string, done: (e: Ev) => boolean = (e) => ['job.completed', 'job.failed', 'job.cancelled'].includes(e.event), timeoutMs = 8000): Promise<Ev[]> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const evs = await eventsOf(id);
      if (evs.some(done)) return evs;
      await new Promise((r) => setTimeout(r, 20)); // sleep-ok: poll interval of a bounded wait on the condition
    }
    throw new Error(`job ${id} did not get there: ${JSON.stringify(await eventsOf(id))}`);
  };
  const count = async (status: string) => (await metrics.jobs.get()).values.find((v) => v.labels['status'] === status)?.value ?? 0;
  const cleanup = async () => {
    await runner.stop({ graceMs: 0 });
    await service.close();
    await broker.close();
  };
  running.push(cleanup);
  return { runner, service, queue, store, transport, metrics, eventsOf, until, count };
}

const running: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c()));
});
const names = (evs: Ev[]) => evs.map((e) => e.event);

describe('Runner (in-process transport, real pipeline processes)', () => {
  it('runs a job: queued, started, progress in order, completed with the result', async () => {
    const h = await setup();
    await h.service.submit({ job_id: 'ok-1', sample_id: 'S', params: { stages: 3, stage_ms: 5 } }, 'alice');
    const evs = await h.until('ok-1');
    expect(names(evs)).toEqual(['job.queued', 'job.started', 'job.progress', 'job.progress', 'job.progress', 'job.progress', 'job.completed']);
    expect(evs[1]!.data).toMatchObject({ attempt: 1, runner: 'unit-runner', gpu: null });
    expect(evs.at(-1)!.data).toMatchObject({ attempts: 1, result: { sample_id: 'S', stages: 3, attempt: 1 } });
    expect(await h.store.get('ok-1')).toMatchObject({ state: 'completed', progress: 1 });
  });

  it('retries a transient failure with backoff and completes', async () => {
    const h = await setup();
    await h.service.submit({ job_id: 'tr-1', params: { stages: 2, stage_ms: 1, fail: 'transient', fail_times: 2 } }, 'alice');
    const evs = await h.until('tr-1');
    expect(names(evs).filter((e) => e !== 'job.progress')).toEqual(['job.queued', 'job.started', 'job.retrying', 'job.started', 'job.retrying', 'job.started', 'job.completed']);
    expect(evs.filter((e) => e.event === 'job.retrying').map((e) => e.data['delay_ms'])).toEqual([10, 20]);
    expect(await h.count('retrying')).toBe(2);
  });

  it('dead-letters a permanent failure at once, with the job, the error, its class and the attempts', async () => {
    const h = await setup();
    await h.service.submit({ job_id: 'perm-1', params: { fail: 'permanent', fail_at: 0 } }, 'alice');
    const evs = await h.until('perm-1');
    expect(names(evs)).toEqual(['job.queued', 'job.started', 'job.failed']);
    expect(h.transport.deadLetters).toEqual([
      expect.objectContaining({ job: expect.objectContaining({ job_id: 'perm-1' }), class: 'permanent', attempts: 1, error: expect.stringMatching(/code 65/) }),
    ]);
  });

  it('dead-letters what is not a job, and goes on', async () => {
    const h = await setup();
    h.queue.push({ value: Buffer.from('{not json'), attempt: 0 });
    h.queue.push({ value: Buffer.from(JSON.stringify({ job_id: 'big-1', pad: 'x'.repeat(70_000) })), attempt: 0 });
    await h.service.submit({ job_id: 'after-1', params: { stages: 1, stage_ms: 1 } }, 'alice');
    await h.until('after-1');
    expect(h.transport.deadLetters.map((d) => d.error)).toEqual([expect.stringMatching(/not valid JSON/), expect.stringMatching(/MAX_JOB_BYTES/)]);
    expect(h.transport.deadLetters[1]).toMatchObject({ job_id: 'big-1', job: null });
    expect(names(await h.eventsOf('big-1'))).toEqual(['job.failed']);
  });

  it('does not run a job again that completed before (a redelivery)', async () => {
    const h = await setup();
    await h.service.submit({ job_id: 'once-1', params: { stages: 1, stage_ms: 1 } }, 'alice');
    await h.until('once-1');
    h.queue.push({ value: Buffer.from(JSON.stringify({ job_id: 'once-1', params: { stages: 1 } })), attempt: 0 });
    const deadline = Date.now() + 5000;
    while ((await h.count('duplicate')) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20)); // sleep-ok: poll interval of a bounded wait on the condition
    expect(await h.count('duplicate')).toBe(1);
    expect(names(await h.eventsOf('once-1')).filter((e) => e === 'job.started' || e === 'job.completed')).toEqual(['job.started', 'job.completed']);
  });

  it('kills a job past JOB_TIMEOUT_S: a transient failure', async () => {
    const h = await setup({ jobTimeoutS: 0.5, maxRetries: 0 });
    await h.service.submit({ job_id: 'slow-1', params: { sleep_ms: 10_000 } }, 'alice');
    const evs = await h.until('slow-1');
    expect(evs.at(-1)).toMatchObject({ event: 'job.failed', data: { class: 'transient', attempts: 1 } });
    expect(String(evs.at(-1)!.data['error'])).toMatch(/timed out after 0.5 s/);
  });

  it('cancels a running job', async () => {
    const h = await setup();
    await h.service.submit({ job_id: 'cx-1', params: { sleep_ms: 10_000 } }, 'alice');
    await h.until('cx-1', (e) => e.event === 'job.progress');
    expect(await h.service.cancel('cx-1', 'bob')).toBe('forbidden');
    expect(await h.service.cancel('cx-1', 'alice')).toBe('cancelled');
    const evs = await h.until('cx-1');
    expect(names(evs).at(-1)).toBe('job.cancelled');
    expect(names(evs).filter((e) => e === 'job.cancelled')).toHaveLength(1);
    expect(h.runner.running).toBe(0);
  });

  it('runs no more jobs at once than it has slots', async () => {
    const h = await setup({}, 1);
    await h.service.submit({ job_id: 'one-1', params: { stages: 2, stage_ms: 100 } }, 'alice');
    await h.service.submit({ job_id: 'one-2', params: { stages: 1, stage_ms: 1 } }, 'alice');
    const first = await h.until('one-1');
    const second = await h.until('one-2');
    const firstDone = Date.parse(first.at(-1)!.timestamp);
    const secondStart = Date.parse(second.find((e) => e.event === 'job.started')!.timestamp);
    expect(secondStart).toBeGreaterThanOrEqual(firstDone);
  });

  it('on stop, hands back a job that is still running', async () => {
    const h = await setup();
    await h.service.submit({ job_id: 'hb-1', params: { sleep_ms: 10_000 } }, 'alice');
    await h.until('hb-1', (e) => e.event === 'job.progress');
    await h.runner.stop({ graceMs: 50 });
    const evs = await h.eventsOf('hb-1');
    expect(evs.at(-1)).toMatchObject({ event: 'job.queued', data: { reason: 'runner_shutdown' } });
    expect(await h.store.get('hb-1')).toMatchObject({ state: 'queued' });
    expect(await h.count('handed_back')).toBe(1);
  });

  it('reaps a job whose runner stopped renewing its lease: job.stalled once, then the next run here', async () => {
    const h = await setup({ jobReapIntervalMs: 60_000 });
    // A runner that claimed the job and died: its lease lapses.
    await h.store.create({ job_id: 'ghost-1', params: { stages: 1, stage_ms: 1 } }, 'alice', { event: 'job.queued', data: { owner: 'alice', attempt: 0 } });
    await h.store.claim('ghost-1', { runner: 'ghost', attempt: 1, leaseMs: 30, job: { job_id: 'ghost-1' }, maxRetries: 2, announce: true });
    await new Promise((r) => setTimeout(r, 60)); // sleep-ok: lets the 30 ms lease lapse; the clock is the condition
    // Its delivery comes back (as Kafka redelivers an unacked message): the claim finds the lapsed lease.
    h.queue.push({ value: Buffer.from(JSON.stringify({ job_id: 'ghost-1', params: { stages: 1, stage_ms: 1 } })), attempt: 0 });
    const evs = await h.until('ghost-1');
    expect(names(evs).filter((e) => e !== 'job.progress')).toEqual(['job.queued', 'job.started', 'job.stalled', 'job.started', 'job.completed']);
    expect(evs.find((e) => e.event === 'job.stalled')!.data).toMatchObject({ attempt: 1, runner: 'ghost', will_retry: true });
    expect(evs.filter((e) => e.event === 'job.started').map((e) => [e.data['runner'], e.data['attempt']])).toEqual([
      ['ghost', 1],
      ['unit-runner', 2],
    ]);
    expect(await h.store.get('ghost-1')).toMatchObject({ state: 'completed', attempts: 2, stalls: 1 });
    expect(await h.count('stalled')).toBe(1);
  });

  it('dead-letters a job whose pipeline cannot be started (permanent)', async () => {
    const h = await setup({ pipelineExecutable: '/nonexistent/pipeline' });
    await h.service.submit({ job_id: 'nx-1' }, 'alice');
    const evs = await h.until('nx-1');
    expect(evs.at(-1)).toMatchObject({ event: 'job.failed', data: { class: 'permanent', attempts: 1 } });
    expect(String(evs.at(-1)!.data['error'])).toMatch(/could not be started \(ENOENT\)/);
  });
});
