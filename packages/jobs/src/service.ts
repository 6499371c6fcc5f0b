import type { Json } from '@switchyard/protocol';
import type { JobControl } from './control.js';
import { JobError } from './errors.js';
import { JobEvent, newJobId, validateJob, type JobSpec } from './job.js';
import { NOOP_LOGGER, type JobLogger } from './logger.js';
import type { JobQueue, QueueStatus } from './queue.js';
import type { JobReaper } from './reaper.js';
import type { JobRecord, JobStore } from './store.js';

export interface JobServiceOptions {
  /** Built with the node's broker: the transitions it makes publish their events on `job:<id>`. */
  store: JobStore;
  queue: JobQueue;
  control: JobControl;
  /** This node's reaper (JOB_REAPER), stopped by `close()`. */
  reaper?: JobReaper;
  /** Largest job JSON accepted (MAX_JOB_BYTES). */
  maxJobBytes: number;
  logger?: JobLogger;
  /** Called once by `close()` after the service's own parts (e.g. an in-process runner). */
  onClose?: () => Promise<void>;
}

export type CancelResult = 'cancelled' | 'not_found' | 'forbidden' | 'finished';

/** A job's status as a `snapshot` frame carries it: reflects every event up to `seq` (in `epoch`). */
export interface JobSnapshotView {
  seq: number;
  epoch: string;
  data: Json;
}

/**
 * What an edge does with jobs: submit (validate, record, announce `job.queued`, enqueue),
 * read a job's status, tell who owns it, cancel it. It fits the edge's `JobAccess`.
 */
export class JobService {
  readonly #o: JobServiceOptions;
  readonly #log: JobLogger;
  #closing: Promise<void> | undefined;

  constructor(options: JobServiceOptions) {
    this.#o = options;
    this.#log = options.logger ?? NOOP_LOGGER;
  }

  /**
   * Accepts a job for `owner` (the token's `sub`, which always wins over an `owner` in the
   * body). `job_id` is generated unless given. Throws JobError (`bad_job`, `too_large`,
   * `job_exists`, `unavailable`).
   */
  async submit(body: Record<string, unknown>, owner: string): Promise<{ jobId: string }> {
    const candidate = { ...body, job_id: body['job_id'] ?? newJobId(), owner };
    const checked = validateJob(candidate);
    if (!checked.ok) throw new JobError('bad_job', checked.error);
    const job: JobSpec = checked.job;
    const bytes = Buffer.byteLength(JSON.stringify(job));
    if (bytes > this.#o.maxJobBytes) throw new JobError('too_large', `the job is ${bytes} bytes, more than MAX_JOB_BYTES (${this.#o.maxJobBytes})`);
    // Recorded and announced in one step, before it is queued: job.queued always comes before job.started.
    if (!(await this.#o.store.create(job, owner, { event: JobEvent.Queued, data: { owner, attempt: 0 } }))) {
      throw new JobError('job_exists', `a job ${job.job_id} exists already`);
    }
    try {
      await this.#o.queue.submit(job);
    } catch (err) {
      const error = `could not queue the job: ${(err as Error).message}`;
      this.#log.warn({ job_id: job.job_id, err }, 'job not queued');
      const failed = { error, class: 'transient', attempts: 0 } as const;
      await this.#o.store.finish(job.job_id, 'failed', failed, { event: JobEvent.Failed, data: failed }).catch(() => false);
      throw err instanceof JobError ? err : new JobError('unavailable', error, { cause: err });
    }
    this.#log.info({ job_id: job.job_id, owner, queue: this.#o.queue.kind }, 'job submitted');
    return { jobId: job.job_id };
  }

  status(jobId: string): Promise<JobRecord | undefined> {
    return this.#o.store.get(jobId);
  }

  /** The latest jobs, newest first (the operators' console); empty where the store cannot list. */
  recent(limit: number): Promise<JobRecord[]> {
    return this.#o.store.recent?.(limit) ?? Promise.resolve([]);
  }

  async ownerOf(jobId: string): Promise<string | undefined> {
    return (await this.#o.store.get(jobId))?.owner;
  }

  /**
   * The job's status and the seq of the last job event it reflects, for the `snapshot` frame;
   * undefined when there is no record (or it predates seq stamping).
   */
  async snapshot(jobId: string): Promise<JobSnapshotView | undefined> {
    const s = await this.#o.store.snapshot(jobId);
    // A JobRecord is plain JSON (strings, numbers, booleans and the pipeline's JSON result).
    return s === undefined ? undefined : { seq: s.seq, epoch: s.epoch, data: s.record as unknown as Json };
  }

  /**
   * Cancels a job for `byUser` (its owner; undefined when the caller has checked rights
   * itself). A queued or waiting job is cancelled here and now (`job.cancelled`); a running
   * one is stopped by the runner holding it, which then announces `job.cancelled`.
   */
  async cancel(jobId: string, byUser: string | undefined): Promise<CancelResult> {
    const outcome = await this.#o.store.cancel(jobId, byUser, { event: JobEvent.Cancelled, data: { by: byUser } });
    if (outcome === 'cancelled' || outcome === 'requested') {
      // Also for 'cancelled': a runner may be between its claim and the child's start.
      await this.#o.control.requestCancel(jobId).catch((err: unknown) => {
        this.#log.warn({ job_id: jobId, err }, 'cancel message not sent; the runner will see the cancel at its next lease renewal');
      });
      this.#log.info({ job_id: jobId, by: byUser, outcome }, 'job cancel');
      return 'cancelled';
    }
    return outcome;
  }

  health(): { status: QueueStatus } {
    return this.#o.queue.health();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#o.reaper?.stop();
      await this.#o.onClose?.().catch((err: unknown) => this.#log.warn({ err }, 'job service close hook failed'));
      await Promise.allSettled([this.#o.queue.close(), this.#o.control.close(), this.#o.store.close()]);
    })();
    return this.#closing;
  }
}
