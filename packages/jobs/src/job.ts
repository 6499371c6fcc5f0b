import { randomBytes } from 'node:crypto';
import { jobChannel, type Json } from '@switchyard/protocol';

/**
 * A job as it travels on the `new_jobs` topic and reaches the pipeline's stdin
 * (PROTOCOL.md §7). Fields beyond these are kept and passed on untouched.
 */
export interface JobSpec {
  job_id: string;
  owner?: string;
  sample_id?: string;
  path_to_r1?: string;
  path_to_r2?: string;
  output_path?: string;
  params?: { [key: string]: Json };
  [extra: string]: Json | undefined;
}

/**
 * Where a job stands; also the `state` field of its status hash. `stalled`: its runner
 * stopped renewing its lease; it is being handed to another runner or failed (job.stalled).
 */
export type JobState = 'queued' | 'running' | 'retrying' | 'stalled' | 'completed' | 'failed' | 'cancelled';

/** The terminal states; reaching one is recorded once (the completion marker). */
export type FinalState = 'completed' | 'failed' | 'cancelled';

/** How a failure is treated (PROTOCOL.md §7): transient and unknown ones are retried. */
export type FailureClass = 'transient' | 'permanent' | 'unknown';

/**
 * The class a failed job carries (in `job.failed`, its status, its dead letter): a pipeline
 * failure's class, or `stalled` — its runner stopped renewing its lease and its retries ran
 * out (the cluster's reaper failed it).
 */
export type JobFailureClass = FailureClass | 'stalled';

/** The events published on `job:<id>`: the wire vocabulary's, so server and SDK share one list. */
export { JobEvent } from '@switchyard/protocol';

/** Longest job id: `job:<id>` must stay a valid channel name (200 characters). */
export const MAX_JOB_ID_LENGTH = 128;
/** Longest owner (a token's `sub`). */
export const MAX_OWNER_LENGTH = 200;
/** Longest path or sample id. */
export const MAX_FIELD_LENGTH = 4096;
/** The default for MAX_JOB_BYTES: jobs are paths and parameters, not data. */
export const DEFAULT_MAX_JOB_BYTES = 65_536;

const STRING_FIELDS = ['sample_id', 'path_to_r1', 'path_to_r2', 'output_path'] as const;

export function newJobId(): string {
  return `j_${randomBytes(12).toString('base64url')}`;
}

/**
 * A job id's safe alphabet: it names a channel (`job:<id>`), a Redis key, and reaches the
 * pipeline as JOB_ID (often a file name), so no `/`, no `..`, no leading dot or dash.
 */
const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const JOB_ID_ALPHABET = '1–128 characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit, without ".."';

/** True when `id` can name a job (JOB_ID_ALPHABET). */
export function isValidJobId(id: unknown): id is string {
  return typeof id === 'string' && id.length <= MAX_JOB_ID_LENGTH && JOB_ID.test(id) && !id.includes('..') && jobChannel(id) !== undefined;
}

export type JobCheck = { ok: true; job: JobSpec } | { ok: false; error: string; jobId?: string };

/**
 * Validates a decoded job. `job_id` must be a valid id; the known fields must have their
 * types. Returns the job (the same object) or why it is refused, with its id when it had a
 * usable one, so its failure can still be reported on `job:<id>`.
 */
export function validateJob(value: unknown): JobCheck {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, error: 'a job must be a JSON object' };
  const job = value as Record<string, unknown>;
  const id = job['job_id'];
  if (!isValidJobId(id)) {
    return { ok: false, error: `"job_id" must be ${JOB_ID_ALPHABET}` };
  }
  const fail = (error: string): JobCheck => ({ ok: false, error, jobId: id });
  const owner = job['owner'];
  if (owner !== undefined && (typeof owner !== 'string' || owner.length === 0 || owner.length > MAX_OWNER_LENGTH)) {
    return fail(`"owner" must be a string of 1–${MAX_OWNER_LENGTH} characters`);
  }
  for (const field of STRING_FIELDS) {
    const v = job[field];
    if (v !== undefined && (typeof v !== 'string' || v.length > MAX_FIELD_LENGTH)) return fail(`"${field}" must be a string of at most ${MAX_FIELD_LENGTH} characters`);
  }
  const params = job['params'];
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) return fail('"params" must be a JSON object');
  return { ok: true, job: job as JobSpec };
}

export type JobMessageCheck = JobCheck & { bytes: number };

/**
 * Decodes a job message from the topic (or any byte source): size first, so an oversized
 * value is refused without being parsed, then JSON, then `validateJob`.
 */
export function parseJobMessage(value: Buffer | string | null | undefined, maxBytes: number): JobMessageCheck {
  if (value === null || value === undefined) return { ok: false, error: 'empty message (no value)', bytes: 0 };
  const bytes = typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength;
  if (bytes > maxBytes) {
    const jobId = sniffJobId(preview(value, SNIFF_BYTES));
    return { ok: false, error: `job message is ${bytes} bytes, more than MAX_JOB_BYTES (${maxBytes})`, bytes, ...(jobId !== undefined && { jobId }) };
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (err) {
    return { ok: false, error: `job message is not valid JSON: ${(err as Error).message}`, bytes };
  }
  return { ...validateJob(decoded), bytes };
}

/** How much of an oversized message is searched for its job id. */
const SNIFF_BYTES = 1024;

/**
 * The job id of a message too large to be parsed, when it shows near the start (a job
 * written with `job_id` first): its failure can then still be reported on `job:<id>`.
 */
export function sniffJobId(head: string): string | undefined {
  const m = /^\s*\{\s*"job_id"\s*:\s*"([^"\\]{1,128})"/.exec(head);
  return m !== null && isValidJobId(m[1]) ? m[1] : undefined;
}

/** The first `max` bytes of a message as text, for dead letters and logs. */
export function preview(value: Buffer | string | null | undefined, max = 1024): string {
  if (value === null || value === undefined) return '';
  const buf = typeof value === 'string' ? Buffer.from(value) : value;
  return buf.subarray(0, max).toString('utf8');
}
