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
    expect(await store.renew(id, 'r2', 5000)).toEqual({ held: false, cancelRequested: false });
  });

  it('lets another runner take a job over once its lease has lapsed', async () => {
    const store = make();
    const id = fresh('lapse');
    expect((await claim(store, id, 'r1', 1, 150)).kind).toBe('claimed');
    await sleep(300);
    expect(await claim(store, id, 'r2', 1)).toEqual({ kind: 'claimed', existed: true });
    expect(await store.renew(id, 'r1', 5000)).toMatchObject({ held: false });
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
    await sleep(300);
    expect(await claim(store, id, 'r2', 1)).toEqual({ kind: 'cancelled', existed: true });
    expect(await store.get(id)).toMatchObject({ state: 'cancelled' });
  });
}
