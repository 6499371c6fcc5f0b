/**
 * Jobs as the client sees them: the events on channel `job:<id>` (job.queued, job.started,
 * job.progress, job.retrying, job.stalled, job.completed, job.failed, job.cancelled) folded
 * into one state. `reduceJob` is pure, and so is `applyJobSnapshot`, which takes the
 * server's `snapshot` of the job's status. `followJob` subscribes with `since: 0`: the server
 * answers with the snapshot and then the events after it, so a job followed late — even days
 * after it finished, long after its events left the history — shows its true state.
 */
import type { SwitchyardClient } from './client.js';
import type { ChannelSnapshot } from './types.js';
import { ClientClosedError, type SwitchyardError } from './errors.js';
import { jobChannelName as jobChannel } from '@switchyard/protocol';
import { acquireChannel, type ChannelLease } from './lease.js';
import type { ChannelEvent } from './stream.js';

/** `stalled`: the job's runner stopped renewing its lease; the job is being run again elsewhere, or failed. */
export type JobStatus = 'unknown' | 'queued' | 'running' | 'retrying' | 'stalled' | 'completed' | 'failed' | 'cancelled';

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

export interface JobRetry {
  attempt: number;
  delayMs: number | undefined;
  error: string | undefined;
}

export interface JobFailure {
  error: string;
  /** `transient`, `permanent`, `unknown`, or `stalled` (its runner died and its retries ran out). */
  class: string | undefined;
  attempts: number | undefined;
}

/** The last `job.stalled`: the run whose runner stopped renewing its lease. */
export interface JobStall {
  attempt: number | undefined;
  error: string | undefined;
  /** The job is run again (else `job.failed` follows); undefined when known only from a snapshot. */
  willRetry: boolean | undefined;
}

export interface JobState {
  jobId: string;
  status: JobStatus;
  /** From 0 to 1. */
  progress: number;
  stage: string | undefined;
  message: string | undefined;
  /** The last `job.retrying`, if any. */
  retry: JobRetry | undefined;
  /** The last `job.stalled`, if any. */
  stall: JobStall | undefined;
  /** `job.completed`'s result. */
  result: unknown;
  /** `job.failed`'s error. */
  failure: JobFailure | undefined;
  /** job.* events folded in so far. */
  events: number;
  /** Seq of the last event folded in. */
  lastSeq: number | null;
  /** Timestamp of the last event folded in. */
  updatedAt: string | undefined;
  /**
   * Why the job cannot be followed (set by `followJob`): its channel was refused (`forbidden`:
   * not this user's job, or no such job), or the client failed or was closed. Cleared by the
   * next snapshot or event (after `setToken` and a reconnect, say).
   */
  error: SwitchyardError | undefined;
}

export function initialJobState(jobId: string): JobState {
  return {
    jobId,
    status: 'unknown',
    progress: 0,
    stage: undefined,
    message: undefined,
    retry: undefined,
    stall: undefined,
    result: undefined,
    failure: undefined,
    events: 0,
    lastSeq: null,
    updatedAt: undefined,
    error: undefined,
  };
}

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_JOB_STATUSES.includes(status);
}

function obj(data: unknown): Record<string, unknown> {
  return typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
}
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** A fraction from 0 to 1 (a value from 1 to 100 is read as a percentage). */
export function normaliseProgress(value: unknown): number | undefined {
  const n = num(value);
  if (n === undefined) return undefined;
  const fraction = n > 1 && n <= 100 ? n / 100 : n;
  return Math.min(1, Math.max(0, fraction));
}

/**
 * Folds one event into a job's state. Unknown events are ignored; once a job has reached a
 * terminal state (completed, failed, cancelled), later non-terminal events do not move it back.
 */
export function reduceJob(state: JobState, event: Pick<ChannelEvent, 'event' | 'data'> & Partial<Pick<ChannelEvent, 'seq' | 'timestamp'>>): JobState {
  if (!event.event.startsWith('job.')) return state;
  const data = obj(event.data);
  const next: JobState = { ...state, events: state.events + 1, lastSeq: event.seq ?? state.lastSeq, updatedAt: event.timestamp ?? state.updatedAt };
  const terminal = isTerminal(state.status);
  switch (event.event) {
    case 'job.queued':
      if (!terminal) next.status = 'queued';
      break;
    case 'job.started':
      if (!terminal) next.status = 'running';
      next.stage = str(data['stage']) ?? next.stage;
      break;
    case 'job.progress': {
      if (!terminal) next.status = 'running';
      const p = normaliseProgress(data['progress']);
      if (p !== undefined && !terminal) next.progress = p;
      next.stage = str(data['stage']) ?? next.stage;
      next.message = str(data['message']) ?? next.message;
      break;
    }
    case 'job.retrying':
      if (!terminal) next.status = 'retrying';
      next.retry = {
        attempt: num(data['attempt']) ?? (state.retry?.attempt ?? 0) + 1,
        delayMs: num(data['delay_ms']),
        error: str(data['error']),
      };
      break;
    case 'job.stalled':
      if (!terminal) next.status = 'stalled';
      next.stall = { attempt: num(data['attempt']), error: str(data['error']), willRetry: data['will_retry'] === true };
      break;
    case 'job.completed':
      next.status = 'completed';
      next.progress = 1;
      next.result = data['result'];
      break;
    case 'job.failed':
      next.status = 'failed';
      next.failure = { error: str(data['error']) ?? 'failed', class: str(data['class']), attempts: num(data['attempts']) };
      break;
    case 'job.cancelled':
      next.status = 'cancelled';
      break;
    default:
      return { ...state, events: next.events, lastSeq: next.lastSeq, updatedAt: next.updatedAt };
  }
  return next;
}

const SNAPSHOT_STATUSES = new Set<string>(['queued', 'running', 'retrying', 'stalled', 'completed', 'failed', 'cancelled']);

/**
 * Takes the server's `snapshot` of a job (its status record, as of the event with seq
 * `snapshot.seq`) as the job's state. A snapshot older than what the state already reflects
 * is ignored.
 */
export function applyJobSnapshot(state: JobState, snapshot: Pick<ChannelSnapshot, 'seq' | 'data'>): JobState {
  if (state.lastSeq !== null && snapshot.seq < state.lastSeq) return state;
  const d = obj(snapshot.data);
  const raw = str(d['state']);
  const status: JobStatus = raw !== undefined && SNAPSHOT_STATUSES.has(raw) ? (raw as JobStatus) : state.status;
  const attempts = num(d['attempts']);
  const error = str(d['error']);
  return {
    ...state,
    status,
    progress: status === 'completed' ? 1 : (normaliseProgress(d['progress']) ?? state.progress),
    stage: str(d['stage']) ?? state.stage,
    message: str(d['message']) ?? state.message,
    retry: status === 'retrying' && attempts !== undefined ? { attempt: attempts, delayMs: undefined, error } : state.retry,
    stall: status === 'stalled' ? { attempt: attempts, error, willRetry: undefined } : state.stall,
    result: status === 'completed' ? d['result'] : state.result,
    failure: status === 'failed' ? { error: error ?? 'failed', class: str(d['class']), attempts } : state.failure,
    lastSeq: snapshot.seq,
    updatedAt: str(d['updated_at']) ?? state.updatedAt,
  };
}

export interface JobFollower {
  readonly jobId: string;
  /** The state so far. */
  readonly state: JobState;
  /**
   * Resolves with the final state once the job completes, fails or is cancelled; rejects when
   * the subscription is refused or the client fails or is closed first.
   */
  readonly done: Promise<JobState>;
  /** Called on every change; returns the function that stops it. */
  onUpdate(listener: (state: JobState) => void): () => void;
  /** Stops following (the last follower of the job unsubscribes). Idempotent. */
  stop(): void;
}

interface Tracker {
  state: JobState;
  readonly listeners: Set<(state: JobState) => void>;
  readonly done: Promise<JobState>;
  holders: number;
  close(): void;
}

const trackers = new WeakMap<SwitchyardClient, Map<string, Tracker>>();

function startTracker(client: SwitchyardClient, jobId: string, onEmpty: () => void): Tracker {
  const channel = jobChannel(jobId);
  let settle: { resolve(s: JobState): void; reject(e: unknown): void } | undefined;
  const done = new Promise<JobState>((resolve, reject) => {
    settle = { resolve, reject };
  });
  done.catch(() => undefined);
  const tracker: Tracker = {
    state: initialJobState(jobId),
    listeners: new Set(),
    done,
    holders: 0,
    close: () => undefined,
  };
  const finish = (outcome: JobState | SwitchyardError) => {
    const s = settle;
    settle = undefined;
    if (s === undefined) return;
    if (outcome instanceof Error) s.reject(outcome);
    else s.resolve(outcome);
  };
  const update = (next: JobState) => {
    if (next === tracker.state) return;
    tracker.state = next;
    for (const l of [...tracker.listeners]) l(next);
    if (isTerminal(next.status)) finish(next);
  };
  const fine = (s: JobState): JobState => (s.error === undefined ? s : { ...s, error: undefined });
  const failed = (error: SwitchyardError) => {
    update({ ...tracker.state, error });
    finish(error);
  };
  const offEvent = client.onChannel(channel, (e) => update(fine(reduceJob(tracker.state, e))));
  const offSnapshot = client.onSnapshot(channel, (snap) => update(fine(applyJobSnapshot(tracker.state, snap))));
  const offState = client.on('state', (s) => {
    if (s.status === 'failed') failed(s.error);
    else if (s.status === 'closed') failed(new ClientClosedError(`following job ${jobId}`));
  });
  // Subscribed after the listener is in place, with the whole retained history.
  const lease: ChannelLease = acquireChannel(client, channel, { since: 0 });
  lease.ready.catch((err: unknown) => {
    // A subscribe that timed out stays wanted and may still come through; a refusal is final.
    if ((err as SwitchyardError)?.code !== 'timeout' && !stopped) failed(err as SwitchyardError);
  });
  let stopped = false;
  tracker.close = () => {
    stopped = true;
    offEvent();
    offSnapshot();
    offState();
    lease.release();
    finish(new ClientClosedError(`following job ${jobId} (stopped)`));
    onEmpty();
  };
  return tracker;
}

/**
 * Follows a job's events on `job:<id>` (needs the right to read that channel: the job's
 * owner, or a token whose `channels` match it). Followers of one job on one client share
 * a single subscription and state.
 */
export function followJob(client: SwitchyardClient, jobId: string, options: { onUpdate?: (state: JobState) => void } = {}): JobFollower {
  let map = trackers.get(client);
  if (map === undefined) {
    map = new Map();
    trackers.set(client, map);
  }
  const byJob = map;
  let tracker = byJob.get(jobId);
  if (tracker === undefined) {
    tracker = startTracker(client, jobId, () => byJob.delete(jobId));
    byJob.set(jobId, tracker);
  }
  const t = tracker;
  t.holders++;
  const mine = new Set<(state: JobState) => void>();
  const add = (listener: (state: JobState) => void) => {
    mine.add(listener);
    t.listeners.add(listener);
    return () => {
      mine.delete(listener);
      t.listeners.delete(listener);
    };
  };
  if (options.onUpdate !== undefined) add(options.onUpdate);
  let stopped = false;
  return {
    jobId,
    get state() {
      return t.state;
    },
    done: t.done,
    onUpdate: add,
    stop() {
      if (stopped) return;
      stopped = true;
      for (const l of mine) t.listeners.delete(l);
      t.holders--;
      if (t.holders === 0) t.close();
    },
  };
}
