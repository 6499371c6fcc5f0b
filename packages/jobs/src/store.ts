import type { Json } from '@switchyard/protocol';
import type { FailureClass, FinalState, JobSpec, JobState } from './job.js';

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
  class?: FailureClass;
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
  /** A cancel was asked for before it could run: it is now cancelled (this caller should announce it). */
  | { kind: 'cancelled'; existed: boolean };

export interface ClaimRequest {
  runner: string;
  /** The run about to start, from 1. */
  attempt: number;
  leaseMs: number;
  job: JobSpec;
  gpu?: string;
}

/** What a cancel found: `requested` means a runner holds the job and is told to stop it. */
export type CancelOutcome = 'not_found' | 'forbidden' | 'finished' | 'cancelled' | 'requested';

export interface RenewOutcome {
  /** False when another runner took the job over (our lease had lapsed). */
  held: boolean;
  cancelRequested: boolean;
}

export interface ProgressUpdate {
  progress?: number;
  stage?: string;
  message?: string;
}

export interface FinishFields {
  error?: string;
  class?: FailureClass;
  attempts?: number;
  result?: Json;
}

/**
 * The job status store shared by edges and runners. Every transition that decides who does
 * what is atomic (one Lua script on Redis): a claim against the completion marker and other
 * runners' leases, the first terminal state (`finish` returns true for exactly one caller),
 * and a cancel against a claim.
 */
export interface JobStore {
  readonly kind: 'memory' | 'redis';
  /** Records a newly submitted job as queued; false when the id is taken. */
  create(job: JobSpec, owner: string): Promise<boolean>;
  get(jobId: string): Promise<JobRecord | undefined>;
  claim(jobId: string, request: ClaimRequest): Promise<ClaimOutcome>;
  /** Extends this runner's lease; says whether a cancel was asked for meanwhile. */
  renew(jobId: string, runner: string, leaseMs: number): Promise<RenewOutcome>;
  progress(jobId: string, update: ProgressUpdate): Promise<void>;
  /** Gives the job up without finishing it (a retry is scheduled, or it is handed back). */
  release(jobId: string, runner: string, state: 'queued' | 'retrying', fields?: FinishFields): Promise<void>;
  /** Records a terminal state unless one was recorded before; true for the one caller that did. */
  finish(jobId: string, final: FinalState, fields?: FinishFields): Promise<boolean>;
  /** `byUser` undefined skips the owner check (the caller checked rights itself). */
  cancel(jobId: string, byUser: string | undefined): Promise<CancelOutcome>;
  close(): Promise<void>;
}

/** Status fields as strings, the way the Redis hash holds them. */
export type RawRecord = Record<string, string>;

const FINAL_STATES = new Set<string>(['completed', 'failed', 'cancelled']);
const STATES = new Set<string>(['queued', 'running', 'retrying', 'completed', 'failed', 'cancelled']);
const CLASSES = new Set<string>(['transient', 'permanent', 'unknown']);

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
  if (raw['class'] !== undefined && CLASSES.has(raw['class'])) record.class = raw['class'] as FailureClass;
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
  return out;
}

export function progressToHash(update: ProgressUpdate): RawRecord {
  const out: RawRecord = {};
  if (update.progress !== undefined) out['progress'] = String(update.progress);
  if (update.stage !== undefined) out['stage'] = update.stage;
  if (update.message !== undefined) out['message'] = update.message;
  return out;
}
