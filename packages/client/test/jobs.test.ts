import { describe, expect, it } from 'vitest';
import { initialJobState, isTerminal, normaliseProgress, reduceJob, type JobState } from '../src/jobs.js';

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

  it('normalises progress to a fraction', () => {
    expect([0, 0.5, 1, 42, 100, -1, 250, Number.NaN, '0.5'].map(normaliseProgress)).toEqual([0, 0.5, 1, 0.42, 1, 0, 1, undefined, undefined]);
  });
});
