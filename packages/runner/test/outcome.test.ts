import { describe, expect, it } from 'vitest';
import { decideOutcome, describeFailure, type PipelineEnd } from '../src/index.js';

const POLICY = { maxRetries: 2, jobTimeoutS: 60, baseRetryDelayS: 1, maxRetryDelayS: 30, random: () => 0.5 };

function end(over: Partial<PipelineEnd> = {}): PipelineEnd {
  return { exitCode: 0, signal: null, timedOut: false, output: '', durationMs: 10, overlongLines: 0, ...over };
}

describe('decideOutcome: what becomes of a job once its run ended', () => {
  it('completes a clean exit, with the declared result or null', () => {
    expect(decideOutcome(end({ result: { n: 1 } }), 1, POLICY)).toEqual({ kind: 'completed', result: { n: 1 } });
    expect(decideOutcome(end(), 3, POLICY)).toEqual({ kind: 'completed', result: null });
  });

  it('puts why the runner stopped the run first, whatever the exit', () => {
    expect(decideOutcome(end({ stopped: 'lost', exitCode: 1 }), 1, POLICY)).toEqual({ kind: 'lost' });
    expect(decideOutcome(end({ stopped: 'handback', signal: 'SIGTERM', exitCode: null }), 1, POLICY)).toEqual({ kind: 'handback' });
    expect(decideOutcome(end({ stopped: 'cancel', signal: 'SIGTERM', exitCode: null }), 1, POLICY)).toEqual({ kind: 'cancelled' });
  });

  it('retries a transient failure with the backoff of its attempt while retries remain', () => {
    const first = decideOutcome(end({ exitCode: 75, output: 'busy' }), 1, POLICY);
    expect(first).toEqual({ kind: 'retry', delayMs: 1000, error: 'pipeline exited with code 75: busy', class: 'transient', reason: 'exit code 75 (EX_TEMPFAIL)' });
    const second = decideOutcome(end({ timedOut: true, signal: 'SIGTERM', exitCode: null }), 2, POLICY);
    expect(second).toMatchObject({ kind: 'retry', delayMs: 2000, class: 'transient', error: 'timed out after 60 s (JOB_TIMEOUT_S)' });
  });

  it('retries an unknown failure (a signal, an odd exit code) like a transient one', () => {
    expect(decideOutcome(end({ exitCode: null, signal: 'SIGKILL' }), 1, POLICY)).toMatchObject({ kind: 'retry', class: 'unknown', error: 'pipeline killed by SIGKILL' });
    expect(decideOutcome(end({ exitCode: 0, declaredError: 'bad sample' }), 1, POLICY)).toMatchObject({ kind: 'retry', error: 'pipeline reported an error: bad sample' });
  });

  it('dead-letters once retries are exhausted, and says so', () => {
    expect(decideOutcome(end({ exitCode: 75 }), 3, POLICY)).toMatchObject({ kind: 'dead-letter', class: 'transient', exhausted: true });
    expect(decideOutcome(end({ exitCode: 75 }), 1, { ...POLICY, maxRetries: 0 })).toMatchObject({ kind: 'dead-letter', exhausted: true });
  });

  it('dead-letters a permanent failure at once, declared or classified', () => {
    expect(decideOutcome(end({ exitCode: 65 }), 1, POLICY)).toMatchObject({ kind: 'dead-letter', class: 'permanent', exhausted: false });
    expect(decideOutcome(end({ exitCode: 1, declaredClass: 'permanent', declaredError: 'nope' }), 1, POLICY)).toMatchObject({
      kind: 'dead-letter',
      class: 'permanent',
      error: 'pipeline exited with code 1: nope',
      exhausted: false,
    });
    expect(decideOutcome(end({ exitCode: null, spawnError: 'ENOENT' }), 1, POLICY)).toMatchObject({ kind: 'dead-letter', error: 'pipeline could not be started (ENOENT)' });
  });

  it('describes a failure by its last non-empty output line, at most 500 characters of it', () => {
    expect(describeFailure(end({ exitCode: 2, output: 'a\nlast words\n\n  ' }), 60)).toBe('pipeline exited with code 2: last words');
    expect(describeFailure(end({ exitCode: 2, output: 'x'.repeat(900) }), 60)).toHaveLength('pipeline exited with code 2: '.length + 500);
  });
});
