import type { Json } from '@switchyard/protocol';
import type { FinalState, JobEvent, JobFailureClass, JobSpec, JobState } from './job.js';

/** A job's status, as kept in the hash `job:<id>` and answered by `GET /jobs/:id`. */
export interface JobRecord {
  job_id: string;
  owner?: string;
  state: JobState;
  /** Runs started so far. */
  attempts: number;
  progress?: number;
  stage?: string;
  message?: string;
  error?: string;
  class?: JobFailureClass;
  result?: Json;
  created_at?: string;
  updated_at?: string;
  started_at?: string;
  finished_at?: string;
  /** The runner that holds (or last held) the job. */
  runner?: string;
  gpu?: string;
  cancel_requested?: boolean;
  /** The sample, for people looking at a list of jobs. */
  sample_id?: string;
  /** Times a runner stopped renewing its lease while running this job (job.stalled). */
  stalls?: number;
}

/**
 * An event published on `job:<id>` in the same atomic step as the status transition it
 * announces; the status hash then records its seq (`seq`, `epoch` fields), so a snapshot of
 * the hash says exactly which events it reflects. `data` gets `job_id` added; undefined
 * values are left out.
 */
export interface Announcement {
  event: JobEvent | string;
  data?: { [key: string]: Json | undefined };
}

/** `job:<id>`'s status and the seq (in `epoch`) of the last job event it reflects. */
export interface JobSnapshot {
  record: JobRecord;
  seq: number;
  epoch: string;
}

export type ClaimOutcome =
  /** This runner now holds the job; `existed` is false for a job first seen on the topic. */
  | { kind: 'claimed'; existed: boolean }
  /** The job reached a terminal state before (completion marker): do not run it again. */
  | { kind: 'final'; final: FinalState }
  /**
   * This delivery is older than the job's latest run: a retry of it is scheduled, or a later
   * run exists, whose own message carries the job on. Drop this one.
   */
  | { kind: 'stale'; attempts: number }
  /** Another runner holds a live lease on it. */
  | { kind: 'leased'; runner: string; remainingMs: number }
  /** A cancel was asked for before it could run: it is now cancelled (announced with the claim). */
  | { kind: 'cancelled'; existed: boolean }
  /**
   * Another runner held it and stopped renewing its lease (it died, or hangs): the job has
   * stalled. Reap it (JobReaper.reap: job.stalled, then re-queued or failed), then claim again.
   */
  | { kind: 'expired'; runner: string };

export interface ClaimRequest {
  runner: string;
  /** The run about to start, from 1. */
  attempt: number;
  leaseMs: number;
  job: JobSpec;
  gpu?: string;
  /** The runner's MAX_RETRIES, recorded so that a reaper elsewhere decides a stall the same way. */
  maxRetries?: number;
  /**
   * Publish the claim's events with it: `job.queued` for a job first seen here, then
   * `job.started` (claimed) or `job.cancelled` (a cancel was waiting).
   */
  announce?: boolean;
}

/** What a cancel found: `requested` means a runner holds the job and is told to stop it. */
export type CancelOutcome = 'not_found' | 'forbidden' | 'finished' | 'cancelled' | 'requested';

export interface RenewOutcome {
  /** The lease was extended. */
  held: boolean;
  cancelRequested: boolean;
  /** The job is no longer this runner's (another runner's, stalled, or finished): stop running it. */
  lost?: true;
}

/** What a reaper found when it looked at a job whose lease (or reaping) was due. */
export type StallOutcome =
  /**
   * This caller now reaps the job (`takeover`: a reaper before it stopped half-way; else it
   * just stalled and job.stalled went out): re-queue it for run `attempts + 1`
   * (`decision: retry`), or dead-letter and fail it (`fail`), then `settleStall`.
   */
  | { kind: 'stalled'; decision: 'retry' | 'fail'; attempts: number; runner: string; error: string; job: JobSpec | undefined; takeover: boolean; reapUntil: number }
  /** Its runner's lease is still good (until `leaseUntil`, ms on the Redis clock). */
  | { kind: 'alive'; leaseUntil: number }
  /** Another reaper is on it (until `reapUntil`). */
  | { kind: 'reaping'; reaper: string; reapUntil: number }
  /** Its runner died after a cancel was asked for: now cancelled (job.cancelled went out). */
  | { kind: 'cancelled' }
  /** Nothing to do: finished, not running, or gone. */
  | { kind: 'idle' };

export interface StallOptions {
  /** How long this reaper holds the job before another may take over. */
  reapMs: number;
  /** MAX_RETRIES for a job whose runner did not record its own. */
  defaultMaxRetries: number;
}

/** One entry of the lease index that is due: a lease (or a reaping) that may have lapsed. */
export interface DueLease {
  jobId: string;
  /** The entry's score (ms), to update it only if nobody else did meanwhile. */
  score: number;
}

export interface ProgressUpdate {
  progress?: number;
  stage?: string;
  message?: string;
}

export interface FinishFields {
  error?: string;
  class?: JobFailureClass;
  attempts?: number;
  result?: Json;
  progress?: number;
}

/**
 * The job status store shared by edges and runners. Every transition that decides who does
 * what is atomic (one Lua script on Redis): a claim against the completion marker and other
 * runners' leases, the first terminal state (`finish` returns true for exactly one caller),
 * a cancel against a claim, a stall against a lease renewal. A transition given an
 * Announcement publishes it in the same step (a store built with a broker) and records its
 * seq in the status: a snapshot never runs ahead of, or behind, the events it reflects.
 *
 * Running jobs are also kept in a lease index (job id → when its lease lapses) that reapers
 * sweep (`dueLeases`); the index only points, the status hash decides.
 */
export interface JobStore {
  readonly kind: 'memory' | 'redis';
  /** Records a newly submitted job as queued; false when the id is taken. */
  create(job: JobSpec, owner: string, announce?: Announcement): Promise<boolean>;
  get(jobId: string): Promise<JobRecord | undefined>;
  /** The status and the seq of the last job event it reflects; undefined without a record or a recorded seq. */
  snapshot(jobId: string): Promise<JobSnapshot | undefined>;
  claim(jobId: string, request: ClaimRequest): Promise<ClaimOutcome>;
  /** Extends this runner's lease; says whether a cancel was asked for meanwhile. */
  renew(jobId: string, runner: string, leaseMs: number): Promise<RenewOutcome>;
  /** Records progress; with `runner`, only while that runner holds the job. */
  progress(jobId: string, update: ProgressUpdate, options?: { runner?: string; announce?: Announcement }): Promise<void>;
  /** Gives the job up without finishing it (a retry is scheduled, or it is handed back). */
  release(jobId: string, runner: string, state: 'queued' | 'retrying', fields?: FinishFields, announce?: Announcement): Promise<void>;
  /** Records a terminal state unless one was recorded before; true for the one caller that did. */
  finish(jobId: string, final: FinalState, fields?: FinishFields, announce?: Announcement): Promise<boolean>;
  /** `byUser` undefined skips the owner check (the caller checked rights itself). */
  cancel(jobId: string, byUser: string | undefined, announce?: Announcement): Promise<CancelOutcome>;
  /**
   * A reaper looks at a job whose lease index entry is due: a running job whose lease has
   * lapsed becomes `stalled` (publishing job.stalled, once) and this reaper holds it for
   * `reapMs`; see StallOutcome.
   */
  stall(jobId: string, reaper: string, options: StallOptions): Promise<StallOutcome>;
  /** The reaper re-queued a stalled job: it is free for its next run. */
  settleStall(jobId: string, reaper: string): Promise<void>;
  /** Lease index entries due now (by the store's clock), oldest first. */
  dueLeases(limit: number): Promise<DueLease[]>;
  /** Moves an index entry to `score`, or drops it (undefined), unless it changed since it was read. */
  reindex(entry: DueLease, score: number | undefined): Promise<void>;
  /** The latest job statuses, newest first (the operators' console); bounded work, at most `limit`. */
  recent?(limit: number): Promise<JobRecord[]>;
  close(): Promise<void>;
}

/** Status fields as strings, the way the Redis hash holds them. */
export type RawRecord = Record<string, string>;

const FINAL_STATES = new Set<string>(['completed', 'failed', 'cancelled']);
const STATES = new Set<string>(['queued', 'running', 'retrying', 'stalled', 'completed', 'failed', 'cancelled']);
const CLASSES = new Set<string>(['transient', 'permanent', 'unknown', 'stalled']);

export function isFinalState(value: string | undefined): value is FinalState {
  return value !== undefined && FINAL_STATES.has(value);
}

/** Turns hash fields into a JobRecord; unknown or malformed fields are left out. */
export function recordFromHash(raw: RawRecord): JobRecord | undefined {
  const id = raw['job_id'];
  if (id === undefined) return undefined;
  const state = raw['state'];
  const record: JobRecord = { job_id: id, state: state !== undefined && STATES.has(state) ? (state as JobState) : 'queued', attempts: Number(raw['attempts'] ?? 0) || 0 };
  for (const key of ['owner', 'stage', 'message', 'error', 'created_at', 'updated_at', 'started_at', 'finished_at', 'runner', 'gpu', 'sample_id'] as const) {
    const v = raw[key];
    if (v !== undefined && v !== '') record[key] = v;
  }
  if (raw['progress'] !== undefined && raw['progress'] !== '' && Number.isFinite(Number(raw['progress']))) record.progress = Number(raw['progress']);
  if (raw['class'] !== undefined && CLASSES.has(raw['class'])) record.class = raw['class'] as JobFailureClass;
  const stalls = Number(raw['stalls'] ?? 0);
  if (Number.isInteger(stalls) && stalls > 0) record.stalls = stalls;
  if (raw['result'] !== undefined && raw['result'] !== '') {
    try {
      record.result = JSON.parse(raw['result']) as Json;
    } catch {
      /* written by us as JSON; anything else is dropped */
    }
  }
  if (raw['cancel_requested'] === '1') record.cancel_requested = true;
  return record;
}

/** The hash fields to write for finish/release fields. */
export function finishFieldsToHash(fields: FinishFields | undefined): RawRecord {
  const out: RawRecord = {};
  if (fields === undefined) return out;
  if (fields.error !== undefined) out['error'] = fields.error;
  if (fields.class !== undefined) out['class'] = fields.class;
  if (fields.attempts !== undefined) out['attempts'] = String(fields.attempts);
  if (fields.result !== undefined) out['result'] = JSON.stringify(fields.result);
  if (fields.progress !== undefined) out['progress'] = String(fields.progress);
  return out;
}

export function progressToHash(update: ProgressUpdate): RawRecord {
  const out: RawRecord = {};
  if (update.progress !== undefined) out['progress'] = String(update.progress);
  if (update.stage !== undefined) out['stage'] = update.stage;
  if (update.message !== undefined) out['message'] = update.message;
  return out;
}

/** An announcement's `data` as JSON: `job_id` first, undefined values left out. */
export function announcementJson(jobId: string, a: Announcement): string {
  const payload: { [key: string]: Json } = { job_id: jobId };
  for (const [k, v] of Object.entries(a.data ?? {})) if (v !== undefined) payload[k] = v;
  return JSON.stringify(payload);
}

/** The snapshot of a raw status: undefined without a record or a recorded seq. */
export function snapshotFromHash(raw: RawRecord): JobSnapshot | undefined {
  const record = recordFromHash(raw);
  const seq = Number(raw['seq']);
  const epoch = raw['epoch'];
  if (record === undefined || !Number.isInteger(seq) || seq < 0 || epoch === undefined || epoch === '') return undefined;
  return { record, seq, epoch };
}
