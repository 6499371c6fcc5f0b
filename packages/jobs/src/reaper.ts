import { JobError } from './errors.js';
import { JobEvent, type JobFailureClass, type JobSpec } from './job.js';
import { NOOP_LOGGER, type JobLogger } from './logger.js';
import type { JobStore, StallOutcome } from './store.js';

/** What goes to the dead-letter topic: the job (or what was received), why, and how often it ran. */
export interface DeadLetter {
  job: JobSpec | null;
  /** For a message that is not a job: its first bytes, as text. */
  raw?: string;
  raw_bytes?: number;
  job_id?: string;
  error: string;
  class: JobFailureClass;
  attempts: number;
  failed_at: string;
  /** The runner that ran it last. */
  runner: string;
  /** Where it came from: `new_jobs[2]@1834`, or `reaper <id>` for a stalled job. */
  source: string;
}

/** Where a reaper sends the jobs it settles: the job queue again, or the dead letters. */
export interface StallSink {
  /** Queues the job again, due now, for run `attempt + 1` (Kafka: the retry topic with `x-attempt`). */
  requeue(job: JobSpec, attempt: number, error: string): Promise<void>;
  deadLetter(letter: DeadLetter): Promise<void>;
}

/** What a reaper did, for metrics. */
export type ReapOutcome = 'stalled' | 'requeued' | 'failed' | 'cancelled';

/** Lease index entries looked at per sweep; the rest wait for the next one. */
export const REAP_BATCH = 100;
/** How long a reaper holds a stalled job while it settles it, before another may take over. */
export const REAP_HOLD_MS = 15_000;
/** MAX_RETRIES for a job whose runner did not record its own (the runners' default). */
export const DEFAULT_MAX_RETRIES = 3;
/** Sweeps are spread by ±this fraction of the interval, so that reapers do not sweep in step. */
const SWEEP_JITTER = 0.2;

export interface JobReaperOptions {
  store: JobStore;
  sink: StallSink;
  /** This process's id (an edge's WORKER_ID, a runner's RUNNER_ID): who holds a job it settles. */
  id: string;
  /** JOB_REAP_INTERVAL_MS: time between two sweeps (±20 %). */
  intervalMs: number;
  /** @default DEFAULT_MAX_RETRIES */
  defaultMaxRetries?: number;
  /** How long this reaper holds a stalled job while settling it. @default REAP_HOLD_MS */
  holdMs?: number;
  logger?: JobLogger;
  onOutcome?: (outcome: ReapOutcome) => void;
  /** Math.random by default. */
  random?: () => number;
}

/**
 * A final state for every job. Runners renew the lease of each job they run; a lease that
 * lapses means the runner died or hangs. Every process that runs a reaper (edges with jobs,
 * runners) sweeps the lease index every JOB_REAP_INTERVAL_MS; for each job whose lease has
 * lapsed one of them — whichever runs the store's atomic stall transition first — marks it
 * stalled and publishes `job.stalled`, then re-queues it (`job.started` follows on some
 * runner) or, past its retries, dead-letters it and publishes `job.failed` with class
 * `stalled`. A reaper that dies half-way loses its hold after REAP_HOLD_MS and another takes
 * over. No leader, no coordination beyond the store: any number of reapers may run.
 */
export class JobReaper {
  readonly #o: JobReaperOptions;
  readonly #log: JobLogger;
  readonly #random: () => number;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<number> | undefined;
  #running = false;

  constructor(options: JobReaperOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError(`JobReaper: intervalMs must be positive, got ${options.intervalMs}`);
    this.#o = options;
    this.#log = options.logger ?? NOOP_LOGGER;
    this.#random = options.random ?? Math.random;
  }

  /** Starts sweeping. Idempotent. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  #schedule(): void {
    if (!this.#running) return;
    const delay = this.#o.intervalMs * (1 - SWEEP_JITTER + 2 * SWEEP_JITTER * this.#random());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.sweep().finally(() => this.#schedule());
    }, delay);
    this.#timer.unref();
  }

  /** Stops sweeping and waits for a sweep in progress. Idempotent. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#sweeping?.catch(() => undefined);
  }

  /** One pass over the due lease index entries; resolves with how many jobs stalled or were taken over. */
  sweep(): Promise<number> {
    this.#sweeping ??= this.#sweep().finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweep(): Promise<number> {
    let settled = 0;
    try {
      const due = await this.#o.store.dueLeases(REAP_BATCH);
      for (const entry of due) {
        const outcome = await this.reap(entry.jobId);
        // A stalled job stays indexed at its reaper's hold (the store moved it there), so a
        // reaper that dies settling it is noticed.
        if (outcome.kind === 'stalled') {
          settled++;
          continue;
        }
        const next = outcome.kind === 'alive' ? outcome.leaseUntil : outcome.kind === 'reaping' ? outcome.reapUntil : undefined;
        await this.#o.store.reindex(entry, next);
      }
    } catch (err) {
      if (err instanceof JobError) this.#log.warn({ err }, 'reaper sweep failed; trying again at the next one');
      else this.#log.error({ err }, 'reaper sweep failed unexpectedly');
    }
    return settled;
  }

  /**
   * Looks at one job now: stalls it if its lease has lapsed and settles it (re-queue or dead
   * letter). Also used by a runner whose claim found another runner's lapsed lease.
   */
  async reap(jobId: string): Promise<StallOutcome> {
    const o = this.#o;
    const outcome = await o.store.stall(jobId, o.id, { reapMs: o.holdMs ?? REAP_HOLD_MS, defaultMaxRetries: o.defaultMaxRetries ?? DEFAULT_MAX_RETRIES });
    if (outcome.kind === 'cancelled') {
      this.#log.info({ job_id: jobId }, 'job whose runner stopped renewing its lease was being cancelled: cancelled');
      o.onOutcome?.('cancelled');
      return outcome;
    }
    if (outcome.kind !== 'stalled') return outcome;
    if (outcome.takeover) this.#log.info({ job_id: jobId, decision: outcome.decision }, 'taking over a stalled job another reaper did not settle');
    else {
      this.#log.warn({ job_id: jobId, runner: outcome.runner, attempt: outcome.attempts, decision: outcome.decision }, 'job stalled: its runner stopped renewing the lease');
      o.onOutcome?.('stalled');
    }
    try {
      await this.#settle(jobId, outcome);
    } catch (err) {
      // The hold lapses after REAP_HOLD_MS and a reaper (maybe this one) tries again.
      this.#log.warn({ job_id: jobId, err }, 'stalled job not settled yet; it is tried again when the hold lapses');
    }
    return outcome;
  }

  async #settle(jobId: string, s: Extract<StallOutcome, { kind: 'stalled' }>): Promise<void> {
    const o = this.#o;
    if (s.decision === 'retry' && s.job !== undefined) {
      await o.sink.requeue(s.job, s.attempts, s.error);
      await o.store.settleStall(jobId, o.id);
      o.onOutcome?.('requeued');
      this.#log.info({ job_id: jobId, next_attempt: s.attempts + 1 }, 'stalled job re-queued');
      return;
    }
    const error = s.job === undefined && s.decision === 'retry' ? `${s.error}; its job JSON is not on record, so it cannot be run again` : s.error;
    await o.sink.deadLetter({
      job: s.job ?? null,
      job_id: jobId,
      error,
      class: 'stalled',
      attempts: s.attempts,
      failed_at: new Date().toISOString(),
      runner: s.runner,
      source: `reaper ${o.id}`,
    });
    const won = await o.store.finish(jobId, 'failed', { error, class: 'stalled', attempts: s.attempts }, { event: JobEvent.Failed, data: { error, class: 'stalled', attempts: s.attempts } });
    if (won) o.onOutcome?.('failed');
    this.#log.warn({ job_id: jobId, attempts: s.attempts }, 'stalled job failed: retries exhausted; dead-lettered');
  }
}
