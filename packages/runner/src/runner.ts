import {
  DEFAULT_JOB_REAP_INTERVAL_MS,
  JobError,
  JobEvent,
  JobReaper,
  parseJobMessage,
  preview,
  type ClaimOutcome,
  type JobControl,
  type JobLogger,
  type JobSpec,
  type JobStore,
  type ReapOutcome,
} from '@switchyard/jobs';
import { startPipeline, type PipelineEnd, type PipelineRun } from './child.js';
import type { RunnerConfig } from './config.js';
import type { Slot } from './gpu.js';
import type { RunnerMetrics } from './metrics.js';
import { decideOutcome } from './outcome.js';
import { SlotPool } from './pool.js';
import { ProgressReporter } from './progress.js';
import type { DeadLetter, Delivery, JobTransport } from './transport.js';

/** Tries of a produce (retry or dead letter) before the job is left unacked for redelivery. */
const PRODUCE_TRIES = 5;
const PRODUCE_RETRY_MS = 500;
/** While the status store is unreachable, how long before a claim is tried again. */
const STORE_RETRY_MS = 1000;
/** Extra time, past KILL_GRACE_S, that stop() gives stopped jobs to wind up. */
const STOP_SLACK_MS = 3000;

export type RunnerConfigSlice = Pick<
  RunnerConfig,
  | 'runnerId'
  | 'pipelineExecutable'
  | 'referenceDbPath'
  | 'resistanceDbPath'
  | 'jobTimeoutS'
  | 'maxRetries'
  | 'baseRetryDelayS'
  | 'maxRetryDelayS'
  | 'jobLeaseS'
  | 'killGraceS'
  | 'shutdownGraceS'
  | 'progressIntervalMs'
  | 'maxLineBytes'
  | 'maxJobBytes'
> &
  Partial<Pick<RunnerConfig, 'jobReaper' | 'jobReapIntervalMs' | 'pipelineEnvAllow'>>;

export interface RunnerDeps {
  transport: JobTransport;
  /** Built with the broker: the runner's transitions publish their job events through it. */
  store: JobStore;
  control: JobControl;
  slots: readonly Slot[];
  metrics: RunnerMetrics;
  logger: JobLogger;
  /** For tests of the backoff; Math.random by default. */
  random?: () => number;
}

type TaskState = 'delayed' | 'waiting' | 'watching' | 'running' | 'finishing';

interface Task {
  readonly jobId: string;
  readonly job: JobSpec;
  /** Runs made before this delivery. */
  readonly attempt: number;
  readonly notBefore: number | undefined;
  /** This delivery and any duplicates of it that came while it was in hand. */
  readonly deliveries: Delivery[];
  state: TaskState;
  run?: PipelineRun;
  cancelRequested: boolean;
  /** Ends a wait (delay, lease watch) early. */
  wake?: () => void;
}

/**
 * The job runner: takes deliveries from a transport, runs each job's pipeline on a slot,
 * reports on `job:<id>` and in the status store, and decides retry or dead letter.
 *
 * Flow control: a delivery is accepted at once (the transport's loop never waits on a job)
 * and waits here for a slot; when as many jobs wait or run as there are slots, the transport
 * is paused. Scheduled retries wait out their delay here without a slot.
 */
export class Runner {
  readonly #c: RunnerConfigSlice;
  readonly #d: RunnerDeps;
  readonly #log: JobLogger;
  readonly #pool: SlotPool;
  readonly #tasks = new Map<string, Task>();
  readonly #inFlight = new Set<Promise<void>>();
  /** Settles stalled jobs: those this runner's claims find, and (JOB_REAPER) those its sweeps find. */
  readonly #reaper: JobReaper;
  #stopping = false;
  #started = false;
  #stopped: Promise<void> | undefined;

  constructor(config: RunnerConfigSlice, deps: RunnerDeps) {
    const transport = deps.transport;
    this.#pool = new SlotPool(deps.slots, transport);
    this.#c = config;
    this.#d = deps;
    this.#log = deps.logger;
    deps.metrics.slots.set(deps.slots.length);
    this.#reaper = new JobReaper({
      store: deps.store,
      id: config.runnerId,
      intervalMs: config.jobReapIntervalMs ?? DEFAULT_JOB_REAP_INTERVAL_MS,
      defaultMaxRetries: config.maxRetries,
      logger: deps.logger,
      onOutcome: (o) => this.#countReap(o),
      sink: {
        requeue: (job, attempt, error) => transport.retry({ job, attempt, notBefore: Date.now(), error, class: 'stalled' }),
        deadLetter: (letter) => transport.deadLetter(letter),
      },
    });
  }

  #countReap(outcome: ReapOutcome): void {
    const m = this.#d.metrics;
    if (outcome === 'stalled') m.count('stalled');
    else if (outcome === 'failed') {
      m.count('failed');
      m.count('dead_lettered');
    } else if (outcome === 'cancelled') m.count('cancelled');
  }

  get running(): number {
    let n = 0;
    for (const t of this.#tasks.values()) if (t.state === 'running') n++;
    return n;
  }

  get slotCount(): number {
    return this.#d.slots.length;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error('runner already started');
    this.#started = true;
    this.#d.control.onCancel((jobId) => this.#onCancel(jobId));
    await this.#d.transport.start((delivery) => this.#offer(delivery));
    if (this.#c.jobReaper ?? true) this.#reaper.start();
  }

  // ───────────────────────────── intake and flow control ─────────────────────────────

  #offer(d: Delivery): void {
    if (this.#stopping) return; // not acked: it goes to another runner
    const parsed = parseJobMessage(d.value, this.#c.maxJobBytes);
    if (!parsed.ok) {
      this.#track(this.#refuse(d, parsed.error, parsed.bytes, parsed.jobId));
      return;
    }
    const job = parsed.job;
    const same = this.#tasks.get(job.job_id);
    if (same !== undefined) {
      // The same job again while in hand: after a rebalance, or a retry of a stale run.
      if (d.attempt === same.attempt) {
        same.deliveries.push(d);
        this.#log.debug({ job_id: job.job_id, source: d.source }, 'duplicate delivery joined to the job in hand');
        return;
      }
    }
    const task: Task = {
      jobId: job.job_id,
      job,
      attempt: d.attempt,
      notBefore: d.notBefore !== undefined && d.notBefore > Date.now() ? d.notBefore : undefined,
      deliveries: [d],
      state: 'waiting',
      cancelRequested: false,
    };
    if (same === undefined) this.#tasks.set(job.job_id, task);
    if (task.notBefore !== undefined) {
      task.state = 'delayed';
      this.#pool.delay();
    } else {
      this.#pool.enter();
    }
    this.#track(this.#process(task));
  }

  #track(p: Promise<void>): void {
    const tracked = p.catch((err: unknown) => this.#log.error({ err }, 'job task failed unexpectedly'));
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
  }

  /** Waits `ms` unless woken (cancel, stop). */
  #sleep(task: Task, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(timer);
        task.wake = undefined;
        resolve();
      }
      task.wake = done;
    });
  }

  // ───────────────────────────── one job ─────────────────────────────

  async #process(task: Task): Promise<void> {
    let slot: Slot | undefined;
    let counted = task.state !== 'delayed';
    try {
      if (task.state === 'delayed') {
        await this.#sleep(task, task.notBefore! - Date.now());
        this.#pool.undelay();
        if (this.#stopping) return;
        task.state = 'waiting';
        this.#pool.enter();
        counted = true;
      }
      let claimed: Extract<ClaimOutcome, { kind: 'claimed' }> | undefined;
      let reaped = false;
      while (claimed === undefined) {
        slot = await this.#pool.acquire();
        if (slot === undefined) return;
        const outcome = await this.#claim(task, slot);
        if (outcome === undefined) return;
        switch (outcome.kind) {
          case 'claimed':
            claimed = outcome;
            break;
          case 'final':
            this.#log.info({ job_id: task.jobId, final: outcome.final, source: task.deliveries[0]!.source }, 'job already finished; not run again');
            this.#d.metrics.count('duplicate');
            return this.#ackAll(task);
          case 'stale':
            this.#log.info({ job_id: task.jobId, attempt: task.attempt, attempts: outcome.attempts }, 'stale delivery of a job with a later run; dropped');
            this.#d.metrics.count('duplicate');
            return this.#ackAll(task);
          case 'cancelled':
            // The claim announced it (job.cancelled).
            this.#d.metrics.count('cancelled');
            return this.#ackAll(task);
          case 'expired':
            // Its runner stopped renewing the lease: the job stalled. Reap it (job.stalled, then
            // re-queued or failed; exactly one process does), then look again: this delivery is
            // then stale or final. Should it still be expired (the store failed), wait a little.
            this.#pool.release(slot);
            slot = undefined;
            if (reaped) await this.#sleep(task, STORE_RETRY_MS);
            if (this.#stopping) return;
            reaped = true;
            this.#log.info({ job_id: task.jobId, runner: outcome.runner }, 'job held by a runner whose lease lapsed: reaping it');
            await this.#reaper.reap(task.jobId).catch((err: unknown) => this.#log.warn({ job_id: task.jobId, err }, 'reaping failed'));
            break;
          case 'leased': {
            // Another runner is running it (we got it in a rebalance): wait, without a slot,
            // until it finishes or its lease lapses.
            this.#pool.release(slot);
            slot = undefined;
            task.state = 'watching';
            this.#pool.leave();
            counted = false;
            const leaseMs = this.#c.jobLeaseS * 1000;
            await this.#sleep(task, Math.min(outcome.remainingMs + 50, leaseMs / 3));
            if (this.#stopping) return;
            task.state = 'waiting';
            this.#pool.enter();
            counted = true;
            break;
          }
        }
      }
      await this.#run(task, slot!, claimed.existed);
    } finally {
      if (slot !== undefined) this.#pool.release(slot);
      if (this.#tasks.get(task.jobId) === task) this.#tasks.delete(task.jobId);
      if (counted) this.#pool.leave();
    }
  }

  /** Claims in the store, waiting out store outages; undefined when stopping meanwhile. */
  async #claim(task: Task, slot: Slot): Promise<ClaimOutcome | undefined> {
    for (;;) {
      try {
        return await this.#d.store.claim(task.jobId, {
          runner: this.#c.runnerId,
          attempt: task.attempt + 1,
          leaseMs: this.#c.jobLeaseS * 1000,
          job: task.job,
          ...(slot.gpu !== undefined && { gpu: slot.gpu }),
          maxRetries: this.#c.maxRetries,
          announce: true,
        });
      } catch (err) {
        if (!(err instanceof JobError)) throw err;
        this.#log.warn({ job_id: task.jobId, err }, 'claim failed; retrying');
        await this.#sleep(task, STORE_RETRY_MS);
        if (this.#stopping) return undefined;
      }
    }
  }

  async #run(task: Task, slot: Slot, existed: boolean): Promise<void> {
    const { jobId, job } = task;
    const attemptNo = task.attempt + 1;
    const m = this.#d.metrics;
    const runnerId = this.#c.runnerId;
    // The claim announced job.queued (a job first seen here) and job.started.
    if (!existed) m.count('queued');
    m.count('started');
    task.state = 'running';
    m.running.inc();

    const progress = new ProgressReporter(this.#c.progressIntervalMs, async (p) => {
      try {
        await this.#d.store.progress(jobId, p, { runner: runnerId, announce: { event: JobEvent.Progress, data: p } });
        m.count('progress');
      } catch (err) {
        this.#log.debug({ job_id: jobId, err }, 'progress not recorded');
      }
    });
    const env: Record<string, string> = { JOB_ID: jobId, JOB_ATTEMPT: String(attemptNo) };
    if (slot.gpu !== undefined) {
      env['GPU_DEVICE_ID'] = slot.gpu;
      env['CUDA_VISIBLE_DEVICES'] = slot.gpu;
    }
    if (this.#c.referenceDbPath !== undefined) env['REFERENCE_DB_PATH'] = this.#c.referenceDbPath;
    if (this.#c.resistanceDbPath !== undefined) env['RESISTANCE_DB_PATH'] = this.#c.resistanceDbPath;
    this.#log.info({ job_id: jobId, attempt: attemptNo, slot: slot.id, source: task.deliveries[0]!.source }, 'job started');

    const run = startPipeline({
      executable: this.#c.pipelineExecutable,
      job,
      env,
      timeoutMs: this.#c.jobTimeoutS * 1000,
      killGraceMs: this.#c.killGraceS * 1000,
      maxLineBytes: this.#c.maxLineBytes,
      ...(this.#c.pipelineEnvAllow !== undefined && { envAllow: this.#c.pipelineEnvAllow }),
      onProgress: (p) => progress.update(p),
    });
    task.run = run;
    if (task.cancelRequested) run.stop('cancel');
    const leaseMs = this.#c.jobLeaseS * 1000;
    const renewer = setInterval(() => {
      this.#d.store.renew(jobId, this.#c.runnerId, leaseMs).then(
        (r) => {
          if (r.cancelRequested) run.stop('cancel');
          else if (r.lost === true) {
            // Our lease lapsed (this process was stalled, or cut off from Redis) and the job was
            // reaped: another run carries it on. Stop this one.
            this.#log.warn({ job_id: jobId }, 'lease lost: the job was taken from this runner; stopping its run');
            run.stop('lost');
          } else if (!r.held) this.#log.warn({ job_id: jobId }, 'lease not renewed: the job has no status record (Redis lost its data?)');
        },
        (err: unknown) => this.#log.warn({ job_id: jobId, err }, 'lease renewal failed'),
      );
    }, leaseMs / 3);

    let end: PipelineEnd;
    try {
      end = await run.done;
    } finally {
      clearInterval(renewer);
      task.run = undefined;
      task.state = 'finishing';
      m.running.dec();
    }
    await progress.close();
    await this.#conclude(task, end);
  }

  /** Completion, cancel, hand-back, retry or dead letter, from how the run ended. */
  async #conclude(task: Task, end: PipelineEnd): Promise<void> {
    const { jobId, job } = task;
    const attemptNo = task.attempt + 1;
    const m = this.#d.metrics;
    const store = this.#d.store;
    const seconds = end.durationMs / 1000;
    if (end.overlongLines > 0) this.#log.warn({ job_id: jobId, lines: end.overlongLines }, 'pipeline printed lines over MAX_LINE_BYTES; they were skipped');

    const outcome = decideOutcome(end, attemptNo, {
      maxRetries: this.#c.maxRetries,
      jobTimeoutS: this.#c.jobTimeoutS,
      baseRetryDelayS: this.#c.baseRetryDelayS,
      maxRetryDelayS: this.#c.maxRetryDelayS,
      ...(this.#d.random !== undefined && { random: this.#d.random }),
    });
    switch (outcome.kind) {
      case 'lost':
        m.duration.labels('lost').observe(seconds);
        return this.#ackAll(task);
      case 'handback':
        await store.release(jobId, this.#c.runnerId, 'queued', undefined, { event: JobEvent.Queued, data: { attempt: attemptNo, reason: 'runner_shutdown' } }).catch(warnStore(this.#log, jobId));
        m.count('handed_back');
        m.duration.labels('handed_back').observe(seconds);
        this.#log.info({ job_id: jobId }, 'job handed back (runner stopping)');
        return; // not acked: redelivered to another runner
      case 'cancelled':
        await store.finish(jobId, 'cancelled', { attempts: attemptNo }, { event: JobEvent.Cancelled }).catch(warnStore(this.#log, jobId));
        m.count('cancelled');
        m.duration.labels('cancelled').observe(seconds);
        this.#log.info({ job_id: jobId }, 'job cancelled');
        return this.#ackAll(task);
      case 'completed': {
        const result = outcome.result;
        const completed = { event: JobEvent.Completed, data: { result, attempts: attemptNo, duration_s: Math.round(seconds * 1000) / 1000 } };
        const won = await this.#untilStored(task, () => store.finish(jobId, 'completed', { result, attempts: attemptNo, progress: 1 }, completed));
        if (won === undefined) return;
        m.count(won ? 'completed' : 'duplicate');
        m.duration.labels('completed').observe(seconds);
        this.#log.info({ job_id: jobId, attempt: attemptNo, seconds, counted: won }, 'job completed');
        return this.#ackAll(task);
      }
    }

    const { error, class: cls, reason } = outcome;
    m.duration.labels('failed').observe(seconds);
    if (outcome.kind === 'retry') {
      const delayMs = outcome.delayMs;
      const produced = await this.#produce(jobId, 'retry', () =>
        this.#d.transport.retry({ job, attempt: attemptNo, notBefore: Date.now() + delayMs, error, class: cls }),
      );
      if (!produced) {
        await store.release(jobId, this.#c.runnerId, 'queued', { error, class: cls, attempts: attemptNo }).catch(warnStore(this.#log, jobId));
        return; // unacked: redelivered, and retried then
      }
      // Released and announced in one step while the lease is still ours, so job.retrying
      // always precedes the retry's job.started (whose claim waits for our lease).
      const retrying = { event: JobEvent.Retrying, data: { attempt: attemptNo, delay_ms: delayMs, error, class: cls, max_retries: this.#c.maxRetries } };
      await store.release(jobId, this.#c.runnerId, 'retrying', { error, class: cls, attempts: attemptNo }, retrying).catch(warnStore(this.#log, jobId));
      m.count('retrying');
      this.#log.info({ job_id: jobId, attempt: attemptNo, class: cls, reason, delay_ms: delayMs, error }, 'job failed; retry scheduled');
      return this.#ackAll(task);
    }
    const letter: DeadLetter = {
      job,
      job_id: jobId,
      error,
      class: cls,
      attempts: attemptNo,
      failed_at: new Date().toISOString(),
      runner: this.#c.runnerId,
      source: task.deliveries[0]!.source,
    };
    if (!(await this.#produce(jobId, 'dead letter', () => this.#d.transport.deadLetter(letter)))) {
      await store.release(jobId, this.#c.runnerId, 'queued', { error, class: cls, attempts: attemptNo }).catch(warnStore(this.#log, jobId));
      return;
    }
    const failed = { error, class: cls, attempts: attemptNo };
    await store.finish(jobId, 'failed', failed, { event: JobEvent.Failed, data: failed }).catch(warnStore(this.#log, jobId));
    m.count('failed');
    m.count('dead_lettered');
    this.#log.warn({ job_id: jobId, attempts: attemptNo, class: cls, reason, error }, outcome.exhausted ? 'job failed; retries exhausted, dead-lettered' : 'job failed permanently; dead-lettered');
    return this.#ackAll(task);
  }

  /** A message that is not a job (bad JSON, too large, invalid): straight to the DLQ. */
  async #refuse(d: Delivery, error: string, bytes: number, jobId: string | undefined): Promise<void> {
    const letter: DeadLetter = {
      job: null,
      raw: preview(d.value),
      raw_bytes: bytes,
      ...(jobId !== undefined && { job_id: jobId }),
      error,
      class: 'permanent',
      attempts: d.attempt,
      failed_at: new Date().toISOString(),
      runner: this.#c.runnerId,
      source: d.source,
    };
    this.#log.warn({ source: d.source, error, bytes, job_id: jobId }, 'message refused: not a valid job');
    if (!(await this.#produce(jobId ?? d.source, 'dead letter', () => this.#d.transport.deadLetter(letter)))) return;
    if (jobId !== undefined) {
      const failed = { error, class: 'permanent', attempts: d.attempt } as const;
      await this.#d.store.finish(jobId, 'failed', failed, { event: JobEvent.Failed, data: failed }).catch(warnStore(this.#log, jobId));
    }
    this.#d.metrics.count('dead_lettered');
    d.ack();
  }

  async #produce(jobId: string, what: string, send: () => Promise<void>): Promise<boolean> {
    for (let i = 1; ; i++) {
      try {
        await send();
        return true;
      } catch (err) {
        if (i >= PRODUCE_TRIES || this.#stopping) {
          this.#log.error({ job_id: jobId, err }, `${what} could not be produced; the job stays unacked and comes back`);
          return false;
        }
        await new Promise((r) => setTimeout(r, PRODUCE_RETRY_MS * i));
      }
    }
  }

  /** Retries a store write through outages; undefined when stopping meanwhile (left unacked). */
  async #untilStored<T>(task: Task, write: () => Promise<T>): Promise<T | undefined> {
    for (;;) {
      try {
        return await write();
      } catch (err) {
        if (!(err instanceof JobError)) throw err;
        this.#log.warn({ job_id: task.jobId, err }, 'status store unreachable; retrying');
        if (this.#stopping) return undefined;
        await this.#sleep(task, STORE_RETRY_MS);
      }
    }
  }

  #ackAll(task: Task): void {
    for (const d of task.deliveries) d.ack();
  }

  #onCancel(jobId: string): void {
    const task = this.#tasks.get(jobId);
    if (task === undefined) return;
    task.cancelRequested = true;
    if (task.run !== undefined) task.run.stop('cancel');
    // A job waiting out a delay or a lease learns at its claim that it was cancelled.
    else if (task.state === 'delayed' || task.state === 'watching') task.wake?.();
  }

  // ───────────────────────────── shutdown ─────────────────────────────

  /** Hands every running job back now (a second SIGTERM); a stop() in progress then ends sooner. */
  hurry(): void {
    this.#stopping = true;
    this.#pool.close();
    for (const t of this.#tasks.values()) t.run?.stop('handback');
    if (this.#stopped === undefined) void this.stop({ graceMs: 0 });
  }

  /**
   * SIGTERM: take no more jobs, let running ones finish for up to SHUTDOWN_GRACE_S, hand the
   * rest back (stopped, released, unacked, so another runner takes them), then leave the
   * consumer group. Idempotent.
   */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    this.#stopped ??= this.#stop(options.graceMs ?? this.#c.shutdownGraceS * 1000);
    return this.#stopped;
  }

  async #stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    // Intake pauses for good and tasks waiting for a slot give up (their deliveries stay unacked).
    this.#pool.close();
    await this.#reaper.stop();
    for (const t of this.#tasks.values()) if (t.state === 'delayed' || t.state === 'watching') t.wake?.();
    const running = () => [...this.#tasks.values()].filter((t) => t.run !== undefined).length;
    this.#log.info({ running: running(), grace_ms: graceMs }, 'runner stopping: no new jobs');
    await settleWithin(this.#inFlight, graceMs);
    if (this.#inFlight.size > 0) {
      this.#log.info({ running: running() }, 'handing back the jobs still running');
      for (const t of this.#tasks.values()) t.run?.stop('handback');
      await settleWithin(this.#inFlight, this.#c.killGraceS * 1000 + STOP_SLACK_MS);
    }
    await this.#d.transport.stop();
    this.#log.info({}, 'runner stopped');
  }
}

/** Logs a status write that failed; the caller goes on (the lease lapses and a reaper steps in). */
function warnStore(log: JobLogger, jobId: string): (err: unknown) => undefined {
  return (err) => {
    log.warn({ job_id: jobId, err }, 'job status not recorded (Redis unreachable?)');
    return undefined;
  };
}

async function settleWithin(promises: Set<Promise<void>>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled([...promises]), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
