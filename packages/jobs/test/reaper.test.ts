import { MemoryBroker } from '@switchyard/broker';
import { afterEach, describe, expect, it } from 'vitest';
import { JobReaper, MemoryJobStore, type DeadLetter, type JobSpec, type StallSink } from '../src/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A sink that keeps what it is given, and can be told to fail. */
class RecordingSink implements StallSink {
  readonly requeued: { job: JobSpec; attempt: number }[] = [];
  readonly dead: DeadLetter[] = [];
  failing = false;
  async requeue(job: JobSpec, attempt: number): Promise<void> {
    if (this.failing) throw new Error('kafka down');
    this.requeued.push({ job, attempt });
  }
  async deadLetter(letter: DeadLetter): Promise<void> {
    if (this.failing) throw new Error('kafka down');
    this.dead.push(letter);
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

function setup() {
  const broker = new MemoryBroker();
  const store = new MemoryJobStore({ ttlS: 60, broker });
  cleanups.push(async () => {
    await store.close();
    await broker.close();
  });
  const events = async (jobId: string) => (await broker.history(`job:${jobId}`, 0)).events.map((e) => JSON.parse(e.frame) as { event: string; data: Record<string, unknown> });
  /** A job submitted and claimed by runner `r1` with a short lease that it then stops renewing. */
  const stalling = async (jobId: string, maxRetries: number) => {
    await store.create({ job_id: jobId, params: { x: 1 } }, 'alice', { event: 'job.queued' });
    expect((await store.claim(jobId, { runner: 'r1', attempt: 1, leaseMs: 50, job: { job_id: jobId }, maxRetries, announce: true })).kind).toBe('claimed');
    await sleep(120); // sleep-ok: lets the 50 ms lease lapse; the clock is the condition
  };
  return { store, events, stalling };
}

describe('JobReaper', () => {
  it('three reapers sweeping at once: one job.stalled, one re-queue of the next run', async () => {
    const { store, events, stalling } = setup();
    await stalling('j1', 2);
    const sinks = [new RecordingSink(), new RecordingSink(), new RecordingSink()];
    const reapers = sinks.map((sink, i) => new JobReaper({ store, sink, id: `reaper-${i}`, intervalMs: 1000 }));
    const settled = await Promise.all(reapers.map((r) => r.sweep()));
    expect(settled.reduce((a, b) => a + b, 0)).toBe(1);
    expect(sinks.flatMap((s) => s.requeued)).toEqual([{ job: { job_id: 'j1', params: { x: 1 } }, attempt: 1 }]);
    const names = (await events('j1')).map((e) => e.event);
    expect(names).toEqual(['job.queued', 'job.started', 'job.stalled']);
    expect((await events('j1')).at(-1)!.data).toMatchObject({ attempt: 1, runner: 'r1', will_retry: true, max_retries: 2 });
    // Settled: the next sweep finds nothing to do and drops the index entry once it is due.
    expect(await store.get('j1')).toMatchObject({ state: 'stalled', stalls: 1 });
    expect(await store.claim('j1', { runner: 'r2', attempt: 2, leaseMs: 5000, job: { job_id: 'j1' }, announce: true })).toEqual({ kind: 'claimed', existed: true });
  });

  it('past the retries: dead letter with class stalled, then job.failed', async () => {
    const { store, events, stalling } = setup();
    await stalling('j2', 0);
    const sink = new RecordingSink();
    const outcomes: string[] = [];
    const reaper = new JobReaper({ store, sink, id: 'edge-1', intervalMs: 1000, onOutcome: (o) => outcomes.push(o) });
    expect(await reaper.sweep()).toBe(1);
    expect(sink.requeued).toEqual([]);
    expect(sink.dead).toEqual([expect.objectContaining({ job_id: 'j2', class: 'stalled', attempts: 1, runner: 'r1', source: 'reaper edge-1', job: expect.objectContaining({ job_id: 'j2' }) })]);
    const evs = await events('j2');
    expect(evs.map((e) => e.event)).toEqual(['job.queued', 'job.started', 'job.stalled', 'job.failed']);
    expect(evs.at(-1)!.data).toMatchObject({ class: 'stalled', attempts: 1 });
    expect(await store.get('j2')).toMatchObject({ state: 'failed', class: 'stalled' });
    expect(outcomes).toEqual(['stalled', 'failed']);
  });

  it('leaves a live lease alone, and moves its index entry to when it lapses', async () => {
    const { store, events } = setup();
    await store.create({ job_id: 'j3' }, 'alice', { event: 'job.queued' });
    await store.claim('j3', { runner: 'r1', attempt: 1, leaseMs: 60, job: { job_id: 'j3' }, announce: true });
    await sleep(100); // sleep-ok: lets the 60 ms lease lapse; the clock is the condition
    // The runner renews just after the entry became due.
    await store.renew('j3', 'r1', 5000);
    const reaper = new JobReaper({ store, sink: new RecordingSink(), id: 'r2', intervalMs: 1000 });
    expect(await reaper.sweep()).toBe(0);
    expect((await events('j3')).map((e) => e.event)).toEqual(['job.queued', 'job.started']);
    expect(await store.dueLeases(10)).toEqual([]);
  });

  it('a reaper that cannot settle loses its hold; another takes over without a second job.stalled', async () => {
    const { store, events, stalling } = setup();
    await stalling('j4', 1);
    const broken = new RecordingSink();
    broken.failing = true;
    const first = new JobReaper({ store, sink: broken, id: 'a', intervalMs: 1000, holdMs: 50 });
    expect((await first.reap('j4')).kind).toBe('stalled');
    expect(await store.get('j4')).toMatchObject({ state: 'stalled' });
    const sink = new RecordingSink();
    const second = new JobReaper({ store, sink, id: 'b', intervalMs: 1000 });
    expect(await second.reap('j4')).toMatchObject({ kind: 'reaping', reaper: 'a' });
    // Once the first reaper's hold lapses, the job is due again.
    await sleep(100); // sleep-ok: lets the first reaper's hold lapse; the clock is the condition
    expect((await store.dueLeases(10)).map((d) => d.jobId)).toEqual(['j4']);
    expect(await second.sweep()).toBe(1);
    expect(sink.requeued).toEqual([{ job: { job_id: 'j4', params: { x: 1 } }, attempt: 1 }]);
    expect((await events('j4')).filter((e) => e.event === 'job.stalled')).toHaveLength(1);
  });

  it('sweeps on its own once started, and stops', async () => {
    const { store, events, stalling } = setup();
    await stalling('j5', 1);
    const reaper = new JobReaper({ store, sink: new RecordingSink(), id: 'a', intervalMs: 50 });
    reaper.start();
    const deadline = Date.now() + 3000;
    while (!(await events('j5')).some((e) => e.event === 'job.stalled') && Date.now() < deadline) await sleep(20); // sleep-ok: poll interval of a bounded wait on the condition
    await reaper.stop();
    expect((await events('j5')).map((e) => e.event)).toContain('job.stalled');
    expect(() => new JobReaper({ store, sink: new RecordingSink(), id: 'x', intervalMs: 0 })).toThrow(RangeError);
  });
});
