import type { FailureClass } from '@switchyard/jobs';
import type { Json } from '@switchyard/protocol';
import { retryDelayMs } from './backoff.js';
import type { PipelineEnd } from './child.js';
import { classifyFailure, isRetriable } from './failure.js';

/**
 * What becomes of a job once its run ended: decided here, from the run's end and the job's
 * attempts alone, with no I/O; the runner then does it (store writes, Kafka, acks, metrics).
 *   lost         the lease was taken from this runner: another run carries the job on
 *   handback     this runner is stopping: release it, leave it unacked for another runner
 *   cancelled    a cancel stopped it
 *   completed    exit 0, no signal, no timeout, no declared error
 *   retry        a failure that gets another run after `delayMs`
 *   dead-letter  a permanent failure, or retries exhausted (`exhausted`)
 */
export type JobOutcome =
  | { kind: 'lost' }
  | { kind: 'handback' }
  | { kind: 'cancelled' }
  | { kind: 'completed'; result: Json }
  | { kind: 'retry'; delayMs: number; error: string; class: FailureClass; reason: string }
  | { kind: 'dead-letter'; error: string; class: FailureClass; reason: string; exhausted: boolean };

export interface OutcomePolicy {
  /** MAX_RETRIES: runs after the first that a retriable failure gets. */
  maxRetries: number;
  /** JOB_TIMEOUT_S, named in the error of a run that timed out. */
  jobTimeoutS: number;
  baseRetryDelayS: number;
  maxRetryDelayS: number;
  /** For tests of the backoff; Math.random by default. */
  random?: () => number;
}

/** `attempt`: the run that just ended, from 1. */
export function decideOutcome(end: PipelineEnd, attempt: number, policy: OutcomePolicy): JobOutcome {
  if (end.stopped === 'lost') return { kind: 'lost' };
  if (end.stopped === 'handback') return { kind: 'handback' };
  if (end.stopped === 'cancel') return { kind: 'cancelled' };
  if (succeeded(end)) return { kind: 'completed', result: end.result ?? null };
  const { class: cls, reason } = classifyFailure(end);
  const error = describeFailure(end, policy.jobTimeoutS);
  if (!isRetriable(cls)) return { kind: 'dead-letter', error, class: cls, reason, exhausted: false };
  if (attempt > policy.maxRetries) return { kind: 'dead-letter', error, class: cls, reason, exhausted: true };
  const delayMs = retryDelayMs(attempt, {
    baseS: policy.baseRetryDelayS,
    maxS: policy.maxRetryDelayS,
    ...(policy.random !== undefined && { random: policy.random }),
  });
  return { kind: 'retry', delayMs, error, class: cls, reason };
}

function succeeded(end: PipelineEnd): boolean {
  return end.exitCode === 0 && end.signal === null && !end.timedOut && end.spawnError === undefined && end.declaredError === undefined;
}

/** One line saying why a run failed, for job.failed, job.retrying and the DLQ. */
export function describeFailure(end: PipelineEnd, timeoutS: number): string {
  const detail = (end.declaredError ?? end.output.split('\n').map((l) => l.trim()).filter((l) => l !== '').pop() ?? '').slice(0, 500);
  let head: string;
  if (end.timedOut) head = `timed out after ${timeoutS} s (JOB_TIMEOUT_S)`;
  else if (end.spawnError !== undefined) head = `pipeline could not be started (${end.spawnError})`;
  else if (end.signal !== null) head = `pipeline killed by ${end.signal}`;
  else if (end.declaredError !== undefined && end.exitCode === 0) head = 'pipeline reported an error';
  else head = `pipeline exited with code ${end.exitCode}`;
  return detail === '' ? head : `${head}: ${detail}`;
}
