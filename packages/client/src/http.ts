/**
 * What a node offers only over HTTP, next to the WebSocket: submitting a job (`POST /jobs`,
 * authenticated like the socket, by `Authorization: Bearer <jwt>`). Uses the platform's
 * `fetch` (browsers, Node 18+), or the one given.
 */
import { InvalidArgumentError, ServerError, SwitchyardError } from './errors.js';

/** A job as `POST /jobs` takes it (PROTOCOL.md §7); `job_id` is generated when absent. */
export interface JobRequest {
  job_id?: string;
  sample_id?: string;
  path_to_r1?: string;
  path_to_r2?: string;
  output_path?: string;
  params?: Record<string, unknown>;
}

export interface SubmittedJob {
  /** The job's id: follow it with `followJob` / `useJob`, cancel it with `cancelJob`. */
  jobId: string;
}

export type FetchLike = (input: string, init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal }) => Promise<{
  status: number;
  text(): Promise<string>;
}>;

/** The node answered `POST /jobs` with an error status: `status` is the HTTP status, `serverCode` its `code`. */
export class HttpError extends ServerError {
  override name = 'HttpError';
  readonly status: number;
  constructor(status: number, serverCode: string, message: string) {
    super(serverCode, message);
    this.status = status;
  }
}

/**
 * The HTTP base (`http://host:port`) of a node's WebSocket URL (`ws://host:port/ws`):
 * ws → http, wss → https, and the `/ws` path (and any query) dropped. A proxy that serves
 * the socket under a prefix (`wss://example.com/rt/ws`) keeps it: `https://example.com/rt`.
 */
export function httpBaseOf(wsUrl: string): string {
  let u: URL;
  try {
    u = new URL(wsUrl);
  } catch {
    throw new InvalidArgumentError('url', `"${wsUrl}" is not a URL`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new InvalidArgumentError('url', `must start with ws:// or wss://, got "${wsUrl}"`);
  const path = u.pathname.replace(/\/ws\/?$/, '').replace(/\/$/, '');
  return `${u.protocol === 'wss:' ? 'https' : 'http'}://${u.host}${path}`;
}

/** Checks an `httpUrl` option: an http(s):// base, without a trailing slash. */
export function normaliseHttpBase(value: string): string {
  if (typeof value !== 'string' || !/^https?:\/\/[^/]/.test(value)) throw new InvalidArgumentError('httpUrl', `must be an http:// or https:// URL, got ${JSON.stringify(value)}`);
  return value.replace(/\/+$/, '');
}

function checkJob(job: JobRequest): void {
  if (job === null || typeof job !== 'object' || Array.isArray(job)) throw new InvalidArgumentError('job', 'must be an object (job_id, sample_id, path_to_r1, path_to_r2, output_path, params)');
  if (job.job_id !== undefined && (typeof job.job_id !== 'string' || job.job_id === '')) throw new InvalidArgumentError('job.job_id', 'must be a non-empty string when given');
  if (job.params !== undefined && (job.params === null || typeof job.params !== 'object' || Array.isArray(job.params))) {
    throw new InvalidArgumentError('job.params', 'must be an object when given');
  }
}

/** `POST <base>/jobs` with the token; resolves with the job id the node answered (202). */
export async function postJob(base: string, token: string, job: JobRequest, options: { fetch?: FetchLike | undefined; timeoutMs: number }): Promise<SubmittedJob> {
  checkJob(job);
  const doFetch = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
  if (typeof doFetch !== 'function') throw new InvalidArgumentError('fetch', 'no global fetch on this platform: pass the "fetch" option');
  const url = `${base}/jobs`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs);
  let status: number;
  let text: string;
  try {
    const res = await doFetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(job),
      signal: abort.signal,
    });
    status = res.status;
    text = await res.text();
  } catch (err) {
    const why = abort.signal.aborted ? `no answer within ${options.timeoutMs} ms` : ((err as Error)?.message ?? String(err));
    // Sent or not, the outcome is unknown: a retry with the same job_id is answered job_exists if it went through.
    throw new SwitchyardError('connection_lost', `submit job: POST ${url} failed (${why}); it may or may not have been queued — retry with the same job_id (job_exists then means it was)`, {
      retriable: true,
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    /* not JSON: reported below by status, or as a reply without job_id */
  }
  if (status < 200 || status > 299) {
    const code = typeof body['code'] === 'string' ? body['code'] : typeof body['error'] === 'string' ? body['error'] : `http_${status}`;
    const message = typeof body['error'] === 'string' ? body['error'] : text.slice(0, 200);
    throw new HttpError(status, code, `submit job: POST ${url} answered ${status} ${code}${message === '' || message === code ? '' : `: ${message}`}`);
  }
  const jobId = body['job_id'];
  if (typeof jobId !== 'string' || jobId === '') throw new HttpError(status, 'bad_reply', `submit job: POST ${url} answered ${status} without a job_id`);
  return { jobId };
}
