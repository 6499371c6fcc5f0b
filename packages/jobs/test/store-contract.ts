import { expect, it } from 'vitest';
import type { JobSpec, JobStore } from '../src/index.js';

let n = 0;
const fresh = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++n}`;
const job = (id: string, extra: Partial<JobSpec> = {}): JobSpec => ({ job_id: id, ...extra });
const claim = (store: JobStore, id: string, runner: string, attempt = 1, leaseMs = 5000, spec: JobSpec = job(id)) =>
  store.claim(id, { runner, attempt, leaseMs, job: spec });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What every JobStore must do, run against the memory store (unit tests) and the Redis
 * store (integration tests, real Redis): the same transitions, atomically.
 */
export function jobStoreContract(make: () => JobStore): void {
  it('creates a queued job once, and reads it back', async () => {
    const store = make();
    const id = fresh('create');
    expect(await store.create(job(id, { sample_id: 'S1' }), 'alice')).toBe(true);
    expect(await store.create(job(id), 'bob')).toBe(false);
    expect(await store.get(id)).toMatchObject({ job_id: id, owner: 'alice', state: 'queued', attempts: 0, sample_id: 'S1' });
    expect(await store.get(fresh('missing'))).toBeUndefined();
  });

  it('lists the latest jobs, newest change first, at most `limit` (the console)', async () => {
    const store = make();
    const ids = [fresh('recent-a'), fresh('recent-b'), fresh('recent-c')];
    for (const id of ids) {
      await store.create(job(id, { sample_id: id }), 'alice');
      // sleep-ok: distinct update timestamps, so the order "newest change first" is defined
      await sleep(5);
    }
    // The first one changes last: it becomes the newest.
    expect(await store.finish(ids[0]!, 'failed', { error: 'bad input', class: 'permanent', attempts: 1 })).toBe(true);
    const all = await store.recent!(500);
    const mine = all.filter((r) => ids.includes(r.job_id)).map((r) => r.job_id);
    expect(mine).toEqual([ids[0], ids[2], ids[1]]);
    expect(all.find((r) => r.job_id === ids[0])).toMatchObject({ state: 'failed', error: 'bad input', class: 'permanent', attempts: 1, owner: 'alice' });
    const stamps = all.map((r) => r.updated_at ?? r.created_at ?? '');
    expect([...stamps].sort().reverse()).toEqual(stamps);
    expect(await store.recent!(1)).toEqual([all[0]]);
  });

  it('gives a job to one runner at a time, by lease', async () => {
    const store = make();
    const id = fresh('claim');
    await store.create(job(id), 'alice');
    expect(await claim(store, id, 'r1')).toEqual({ kind: 'claimed', existed: true });
    const other = await claim(store, id, 'r2');
    expect(other.kind).toBe('leased');
    if (other.kind === 'leased') {
      expect(other.runner).toBe('r1');
      expect(other.remainingMs).toBeGreaterThan(0);
      expect(other.remainingMs).toBeLessThanOrEqual(5000);
    }
    expect(await store.get(id)).toMatchObject({ state: 'running', attempts: 1, runner: 'r1' });
    expect(await store.renew(id, 'r1', 5000)).toEqual({ held: true, cancelRequested: false });
    expect(await store.renew(id, 'r2', 5000)).toEqual({ held: false, cancelRequested: false, lost: true });
    expect(await store.renew(fresh('nothing'), 'r1', 5000)).toEqual({ held: false, cancelRequested: false });
  });

  it('does not let a claim take over a lapsed lease: the job has stalled, and a reaper settles it first', async () => {
    const store = make();
    const id = fresh('lapse');
    expect((await store.create(job(id), 'alice'))).toBe(true);
    expect((await claim(store, id, 'r1', 1, 150)).kind).toBe('claimed');
    await sleep(300); // sleep-ok: lets the 150 ms lease lapse; the clock is the condition
    expect(await claim(store, id, 'r2', 1)).toEqual({ kind: 'expired', runner: 'r1' });
    const stalled = await store.stall(id, 'reaper-a', { reapMs: 5000, defaultMaxRetries: 2 });
    expect(stalled).toMatchObject({ kind: 'stalled', decision: 'retry', attempts: 1, runner: 'r1', takeover: false, job: { job_id: id } });
    expect(await store.get(id)).toMatchObject({ state: 'stalled', class: 'stalled', stalls: 1, error: expect.stringMatching(/runner r1 stopped renewing/) });
    // Exactly one reaper has it; the stalled runner's lease is gone for good.
    expect(await store.stall(id, 'reaper-b', { reapMs: 5000, defaultMaxRetries: 2 })).toMatchObject({ kind: 'reaping', reaper: 'reaper-a' });
    expect(await store.renew(id, 'r1', 5000)).toEqual({ held: false, cancelRequested: false, lost: true });
    await store.progress(id, { progress: 0.9 }, { runner: 'r1' });
    expect((await store.get(id))?.progress).not.toBe(0.9);
    await store.release(id, 'r1', 'queued');
    expect(await store.get(id)).toMatchObject({ state: 'stalled' });
    // The delivery of run 1 is stale now; the re-queued run 2 is claimed once the reaper settled.
    expect(await claim(store, id, 'r2', 1)).toEqual({ kind: 'stale', attempts: 1 });
    await store.settleStall(id, 'reaper-b');
    expect(await store.stall(id, 'reaper-b', { reapMs: 5000, defaultMaxRetries: 2 })).toMatchObject({ kind: 'reaping' });
    await store.settleStall(id, 'reaper-a');
    expect(await store.stall(id, 'reaper-b', { reapMs: 5000, defaultMaxRetries: 2 })).toEqual({ kind: 'idle' });
    expect(await claim(store, id, 'r2', 2)).toEqual({ kind: 'claimed', existed: true });
    expect(await store.get(id)).toMatchObject({ state: 'running', runner: 'r2', attempts: 2, stalls: 1 });
  });

  it('fails a stalled job past its retries (the runner\'s MAX_RETRIES, recorded at its claim); a lapsed reaper is taken over', async () => {
    const store = make();
    const id = fresh('stall-out');
    await store.create(job(id), 'alice');
    expect((await store.claim(id, { runner: 'r1', attempt: 1, leaseMs: 100, job: job(id), maxRetries: 0 })).kind).toBe('claimed');
    expect(await store.stall(id, 'reaper-a', { reapMs: 5000, defaultMaxRetries: 5 })).toMatchObject({ kind: 'alive' });
    await sleep(250); // sleep-ok: lets the 100 ms lease lapse; the clock is the condition
    expect(await store.stall(id, 'reaper-a', { reapMs: 100, defaultMaxRetries: 5 })).toMatchObject({ kind: 'stalled', decision: 'fail', attempts: 1, takeover: false });
    // A run that was never queued cannot be claimed.
    expect((await claim(store, id, 'r2', 2)).kind).toBe('stale');
    await sleep(250); // sleep-ok: lets the 100 ms reaping hold lapse; the clock is the condition
    expect(await store.stall(id, 'reaper-b', { reapMs: 5000, defaultMaxRetries: 5 })).toMatchObject({ kind: 'stalled', decision: 'fail', takeover: true });
    expect(await store.finish(id, 'failed', { error: 'stalled', class: 'stalled', attempts: 1 })).toBe(true);
    expect(await store.get(id)).toMatchObject({ state: 'failed', class: 'stalled' });
    expect(await store.stall(id, 'reaper-b', { reapMs: 5000, defaultMaxRetries: 5 })).toEqual({ kind: 'idle' });
  });

  it('cancels, rather than stalls, a job whose runner died after a cancel was asked for', async () => {
    const store = make();
    const id = fresh('stall-cancel');
    await store.create(job(id), 'alice');
    await claim(store, id, 'r1', 1, 100);
    expect(await store.cancel(id, 'alice')).toBe('requested');
    await sleep(250); // sleep-ok: lets the 100 ms lease lapse; the clock is the condition
    expect(await store.stall(id, 'reaper-a', { reapMs: 5000, defaultMaxRetries: 3 })).toEqual({ kind: 'cancelled' });
    expect(await store.get(id)).toMatchObject({ state: 'cancelled' });
  });

  it('keeps running jobs in a lease index that reapers sweep; entries move only if unchanged', async () => {
    const store = make();
    const id = fresh('index');
    await claim(store, id, 'r1', 1, 100);
    const mine = async () => (await store.dueLeases(1000)).filter((d) => d.jobId === id);
    expect(await mine()).toEqual([]);
    await sleep(250); // sleep-ok: lets the 100 ms lease lapse; the clock is the condition
    const [due] = await mine();
    expect(due).toMatchObject({ jobId: id });
    // A renewal moved it meanwhile: the stale entry is not touched.
    await store.renew(id, 'r1', 100);
    await store.reindex(due!, undefined);
    await sleep(250); // sleep-ok: lets the renewed 100 ms lease lapse; the clock is the condition
    const [again] = await mine();
    expect(again!.score).toBeGreaterThan(due!.score);
    await store.reindex(again!, undefined);
    expect(await mine()).toEqual([]);
    // A job its runner finished or released leaves the index at once.
    const done = fresh('index-done');
    const released = fresh('index-released');
    await claim(store, done, 'r1', 1, 100);
    await claim(store, released, 'r1', 1, 100);
    await store.finish(done, 'completed', { attempts: 1 });
    await store.release(released, 'r1', 'queued');
    await sleep(250); // sleep-ok: lets the 100 ms leases lapse; the clock is the condition
    expect((await store.dueLeases(1000)).filter((d) => d.jobId === done || d.jobId === released)).toEqual([]);
  });

  it('records a job first seen on the topic, with the owner from its JSON', async () => {
    const store = make();
    const id = fresh('topic');
    expect(await claim(store, id, 'r1', 1, 5000, job(id, { owner: 'carol', sample_id: 'T' }))).toEqual({ kind: 'claimed', existed: false });
    expect(await store.get(id)).toMatchObject({ job_id: id, owner: 'carol', sample_id: 'T', state: 'running' });
  });

  it('finishes once: the completion marker stops a second finish and any later claim', async () => {
    const store = make();
    const id = fresh('finish');
    await store.create(job(id), 'alice');
    await claim(store, id, 'r1');
    await store.progress(id, { progress: 0.5, stage: 'align', message: 'half' });
    expect(await store.get(id)).toMatchObject({ progress: 0.5, stage: 'align', message: 'half' });
    expect(await store.finish(id, 'completed', { result: { reads: 3 }, attempts: 1 })).toBe(true);
    expect(await store.finish(id, 'failed', { error: 'late', class: 'transient' })).toBe(false);
    expect(await store.get(id)).toMatchObject({ state: 'completed', result: { reads: 3 } });
    expect(await claim(store, id, 'r2')).toEqual({ kind: 'final', final: 'completed' });
    expect(await claim(store, id, 'r1')).toEqual({ kind: 'final', final: 'completed' });
  });

  it('drops a stale delivery once a retry is scheduled or a later run exists', async () => {
    const store = make();
    const id = fresh('stale');
    await store.create(job(id), 'alice');
    await claim(store, id, 'r1', 1);
    await store.release(id, 'r1', 'retrying', { error: 'exit 75', class: 'transient', attempts: 1 });
    expect(await store.get(id)).toMatchObject({ state: 'retrying', error: 'exit 75', class: 'transient', attempts: 1 });
    // The original message again (run 1 again): stale. The retry message (run 2): claimed.
    expect(await claim(store, id, 'r2', 1)).toEqual({ kind: 'stale', attempts: 1 });
    expect(await claim(store, id, 'r2', 2)).toEqual({ kind: 'claimed', existed: true });
    expect(await claim(store, id, 'r3', 1)).toEqual({ kind: 'stale', attempts: 2 });
    // A release by a runner that does not hold the job changes nothing.
    await store.release(id, 'r1', 'queued');
    expect(await store.get(id)).toMatchObject({ state: 'running', runner: 'r2' });
  });

  it('cancels: owner only, at once when not running, by request when running, never after the end', async () => {
    const store = make();
    expect(await store.cancel(fresh('none'), 'alice')).toBe('not_found');
    const queued = fresh('cq');
    await store.create(job(queued), 'alice');
    expect(await store.cancel(queued, 'bob')).toBe('forbidden');
    expect(await store.cancel(queued, 'alice')).toBe('cancelled');
    expect(await store.get(queued)).toMatchObject({ state: 'cancelled', cancel_requested: true });
    expect(await claim(store, queued, 'r1')).toEqual({ kind: 'final', final: 'cancelled' });
    expect(await store.cancel(queued, 'alice')).toBe('finished');

    const running = fresh('cr');
    await store.create(job(running), 'alice');
    await claim(store, running, 'r1');
    expect(await store.cancel(running, undefined)).toBe('requested');
    expect(await store.renew(running, 'r1', 5000)).toEqual({ held: true, cancelRequested: true });
    expect(await store.finish(running, 'cancelled')).toBe(true);
    expect(await store.cancel(running, 'alice')).toBe('finished');
  });

  it('cancels a job whose runner died, when it is claimed again', async () => {
    const store = make();
    const id = fresh('cdead');
    await store.create(job(id), 'alice');
    await claim(store, id, 'r1', 1, 150);
    expect(await store.cancel(id, 'alice')).toBe('requested');
    await sleep(300); // sleep-ok: lets the 150 ms lease lapse; the clock is the condition
    expect(await claim(store, id, 'r2', 1)).toEqual({ kind: 'cancelled', existed: true });
    expect(await store.get(id)).toMatchObject({ state: 'cancelled' });
  });
}

export interface AnnouncingStore {
  store: JobStore;
  /** The event frames published on `job:<id>` so far, from the broker's history. */
  frames(jobId: string): Promise<string[]>;
}

/**
 * A store built with a broker publishes the events it is given in the same step as the
 * transition, and its status records the seq of the last one: a snapshot says exactly
 * which events it reflects.
 */
export function announcingStoreContract(build: () => AnnouncingStore): void {
  const make = () => {
    const { store, frames } = build();
    const events = async (jobId: string) =>
      (await frames(jobId)).map((f) => {
        const { seq, event, data } = JSON.parse(f) as { seq: number; event: string; data: Record<string, unknown> };
        return { seq, event, data };
      });
    return { store, events };
  };
  it('publishes each transition’s event with it, and records its seq for the snapshot', async () => {
    const { store, events } = make();
    const id = fresh('announce');
    expect(await store.create(job(id, { sample_id: 'S' }), 'alice', { event: 'job.queued', data: { owner: 'alice', attempt: 0, none: undefined } })).toBe(true);
    expect(await events(id)).toEqual([{ seq: 1, event: 'job.queued', data: { job_id: id, owner: 'alice', attempt: 0 } }]);
    expect(await store.snapshot(id)).toMatchObject({ seq: 1, record: { job_id: id, state: 'queued', owner: 'alice' } });

    expect(await store.claim(id, { runner: 'r1', attempt: 1, leaseMs: 5000, job: job(id), announce: true, gpu: '0' })).toEqual({ kind: 'claimed', existed: true });
    // The same claim again, as a call retried after a lost reply: no second job.started.
    expect(await store.claim(id, { runner: 'r1', attempt: 1, leaseMs: 5000, job: job(id), announce: true, gpu: '0' })).toEqual({ kind: 'claimed', existed: true });
    await store.progress(id, { progress: 0.5, stage: 'align' }, { runner: 'r1', announce: { event: 'job.progress', data: { progress: 0.5, stage: 'align' } } });
    // Not the holder: neither recorded nor published.
    await store.progress(id, { progress: 0.7 }, { runner: 'r9', announce: { event: 'job.progress', data: { progress: 0.7 } } });
    const mid = await store.snapshot(id);
    expect(mid).toMatchObject({ seq: 3, record: { state: 'running', progress: 0.5, stage: 'align', runner: 'r1', gpu: '0' } });
    // The second claim is refused and announces nothing.
    expect((await store.claim(id, { runner: 'r2', attempt: 1, leaseMs: 5000, job: job(id), announce: true })).kind).toBe('leased');
    expect(await store.finish(id, 'completed', { result: { n: 1 }, attempts: 1, progress: 1 }, { event: 'job.completed', data: { result: { n: 1 }, attempts: 1 } })).toBe(true);
    expect(await store.finish(id, 'failed', {}, { event: 'job.failed', data: {} })).toBe(false);
    const evs = await events(id);
    expect(evs.map((e) => [e.seq, e.event])).toEqual([
      [1, 'job.queued'],
      [2, 'job.started'],
      [3, 'job.progress'],
      [4, 'job.completed'],
    ]);
    expect(evs[1]!.data).toEqual({ job_id: id, attempt: 1, runner: 'r1', gpu: '0' });
    const end = await store.snapshot(id);
    expect(end).toMatchObject({ seq: 4, record: { state: 'completed', progress: 1, result: { n: 1 } } });
    expect(end!.epoch).toEqual(mid!.epoch);
  });

  it('announces a claim of a job first seen on the topic, a cancel, and a stall', async () => {
    const { store, events } = make();
    const fromTopic = fresh('announce-topic');
    await store.claim(fromTopic, { runner: 'r1', attempt: 1, leaseMs: 100, job: job(fromTopic, { owner: 'carol' }), announce: true, maxRetries: 1 });
    expect((await events(fromTopic)).map((e) => e.event)).toEqual(['job.queued', 'job.started']);
    await sleep(250); // sleep-ok: lets the 100 ms lease lapse; the clock is the condition
    expect(await store.stall(fromTopic, 'reaper', { reapMs: 5000, defaultMaxRetries: 3 })).toMatchObject({ kind: 'stalled', decision: 'retry' });
    const stalled = (await events(fromTopic)).at(-1)!;
    expect(stalled).toMatchObject({ seq: 3, event: 'job.stalled', data: { job_id: fromTopic, attempt: 1, runner: 'r1', will_retry: true, max_retries: 1 } });
    expect(await store.snapshot(fromTopic)).toMatchObject({ seq: 3, record: { state: 'stalled' } });
    // A stall is announced once.
    expect((await store.stall(fromTopic, 'reaper-2', { reapMs: 5000, defaultMaxRetries: 3 })).kind).toBe('reaping');
    expect((await events(fromTopic)).filter((e) => e.event === 'job.stalled')).toHaveLength(1);

    const cancelled = fresh('announce-cancel');
    await store.create(job(cancelled), 'alice');
    expect(await store.cancel(cancelled, 'alice', { event: 'job.cancelled', data: { by: 'alice' } })).toBe('cancelled');
    expect(await events(cancelled)).toEqual([{ seq: 1, event: 'job.cancelled', data: { job_id: cancelled, by: 'alice' } }]);
    expect(await store.snapshot(cancelled)).toMatchObject({ seq: 1, record: { state: 'cancelled' } });
  });

  it('has no snapshot without a record, or before any event was recorded with it', async () => {
    const { store } = make();
    expect(await store.snapshot(fresh('none'))).toBeUndefined();
    const quiet = fresh('quiet');
    await store.create(job(quiet), 'alice');
    expect(await store.snapshot(quiet)).toBeUndefined();
  });
}
