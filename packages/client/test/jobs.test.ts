import { describe, expect, it } from 'vitest';
import { applyJobSnapshot, initialJobState, isTerminal, normaliseProgress, reduceJob, type JobState } from '../src/jobs.js';

const fold = (events: [string, unknown][]): JobState =>
  events.reduce((s, [event, data], i) => reduceJob(s, { event, data, seq: i + 1, timestamp: `t${i + 1}` }), initialJobState('job-1'));

describe('reduceJob', () => {
  it('follows a job from queued to completed with progress, stage and a retry', () => {
    const s = fold([
      ['job.queued', {}],
      ['job.started', {}],
      ['job.progress', { progress: 0.25, stage: 'align', message: 'aligning' }],
      ['job.retrying', { attempt: 1, delay_ms: 60_000, error: 'GPU out of memory' }],
      ['job.started', {}],
      ['job.progress', { progress: 0.8, stage: 'call' }],
    ]);
    expect(s).toMatchObject({ status: 'running', progress: 0.8, stage: 'call', message: 'aligning', retry: { attempt: 1, delayMs: 60_000, error: 'GPU out of memory' }, events: 6, lastSeq: 6, updatedAt: 't6' });
    const done = reduceJob(s, { event: 'job.completed', data: { result: { genes: 3 } } });
    expect(done).toMatchObject({ status: 'completed', progress: 1, result: { genes: 3 } });
    expect(isTerminal(done.status)).toBe(true);
  });

  it('records a failure with its class and attempts', () => {
    const s = fold([
      ['job.started', {}],
      ['job.failed', { error: 'missing input', class: 'permanent', attempts: 1 }],
    ]);
    expect(s).toMatchObject({ status: 'failed', failure: { error: 'missing input', class: 'permanent', attempts: 1 } });
  });

  it('does not move a finished job back, and ignores events that are not job.*', () => {
    const s = fold([
      ['job.cancelled', {}],
      ['job.progress', { progress: 0.9 }],
      ['job.started', {}],
      ['chat', { progress: 1 }],
    ]);
    expect(s.status).toBe('cancelled');
    expect(s.progress).toBe(0);
  });

  it('tolerates odd payloads', () => {
    const s = fold([
      ['job.progress', null],
      ['job.progress', { progress: 'x', stage: 3 }],
      ['job.retrying', []],
      ['job.failed', 'boom'],
    ]);
    expect(s).toMatchObject({ status: 'failed', progress: 0, stage: undefined, retry: { attempt: 1 }, failure: { error: 'failed' } });
  });

  it('shows a stalled job until it runs again, or fails with class stalled', () => {
    const retried = fold([
      ['job.started', {}],
      ['job.progress', { progress: 0.5 }],
      ['job.stalled', { attempt: 1, runner: 'gpu-1', error: 'runner gpu-1 stopped renewing', will_retry: true }],
    ]);
    expect(retried).toMatchObject({ status: 'stalled', progress: 0.5, stall: { attempt: 1, willRetry: true, error: 'runner gpu-1 stopped renewing' } });
    expect(isTerminal(retried.status)).toBe(false);
    expect(reduceJob(retried, { event: 'job.started', data: { attempt: 2 } }).status).toBe('running');
    const failed = reduceJob(reduceJob(retried, { event: 'job.stalled', data: { attempt: 2, will_retry: false } }), { event: 'job.failed', data: { error: 'stalled', class: 'stalled', attempts: 2 } });
    expect(failed).toMatchObject({ status: 'failed', failure: { class: 'stalled', attempts: 2 }, stall: { attempt: 2, willRetry: false } });
  });

  it('takes a snapshot of the job status as its state, unless it already knows more', () => {
    const fromSnapshot = applyJobSnapshot(initialJobState('job-1'), {
      seq: 8,
      data: { job_id: 'job-1', state: 'completed', attempts: 1, progress: 1, stage: 'done', result: { genes: 3 }, updated_at: 'u' },
    });
    expect(fromSnapshot).toMatchObject({ status: 'completed', progress: 1, stage: 'done', result: { genes: 3 }, lastSeq: 8, updatedAt: 'u', events: 0 });
    const failed = applyJobSnapshot(initialJobState('job-2'), { seq: 4, data: { state: 'failed', error: 'boom', class: 'stalled', attempts: 2 } });
    expect(failed).toMatchObject({ status: 'failed', failure: { error: 'boom', class: 'stalled', attempts: 2 } });
    const retrying = applyJobSnapshot(initialJobState('job-3'), { seq: 4, data: { state: 'retrying', attempts: 1, error: 'exit 75', progress: 0.3 } });
    expect(retrying).toMatchObject({ status: 'retrying', progress: 0.3, retry: { attempt: 1, error: 'exit 75' } });
    // Then events fold on top.
    expect(reduceJob(retrying, { event: 'job.started', data: {}, seq: 5 })).toMatchObject({ status: 'running', lastSeq: 5 });
    // An older snapshot than what the state reflects changes nothing; odd data changes little.
    const ahead = fold([['job.started', {}], ['job.progress', { progress: 0.9 }]]);
    expect(applyJobSnapshot(ahead, { seq: 1, data: { state: 'queued' } })).toBe(ahead);
    expect(applyJobSnapshot(initialJobState('x'), { seq: 1, data: 'nonsense' })).toMatchObject({ status: 'unknown', lastSeq: 1 });
  });

  it('normalises progress to a fraction', () => {
    expect([0, 0.5, 1, 42, 100, -1, 250, Number.NaN, '0.5'].map(normaliseProgress)).toEqual([0, 0.5, 1, 0.42, 1, 0, 1, undefined, undefined]);
  });
});
