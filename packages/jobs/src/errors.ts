import { SwitchyardError } from '@switchyard/protocol';

/** Stable codes of job failures seen by API callers (HTTP bodies) and logs. */
export type JobErrorCode =
  /** The job JSON is not acceptable (400). */
  | 'bad_job'
  /** The job JSON is larger than MAX_JOB_BYTES (413). */
  | 'too_large'
  /** A job with this id exists already (409). */
  | 'job_exists'
  /** No such job (404). */
  | 'not_found'
  /** Not the owner, and no right on `job:<id>` (403). */
  | 'forbidden'
  /** The queue or the status store cannot be reached; retry later (503). */
  | 'unavailable'
  /** This node runs no job queue (503). */
  | 'jobs_disabled';

const HTTP_STATUS: Record<JobErrorCode, number> = {
  bad_job: 400,
  too_large: 413,
  job_exists: 409,
  not_found: 404,
  forbidden: 403,
  unavailable: 503,
  jobs_disabled: 503,
};

/** One class for every job API failure; `code` is stable, `message` is for people. */
export class JobError extends SwitchyardError<JobErrorCode> {
  override readonly name = 'JobError';
  readonly httpStatus: number;

  constructor(code: JobErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { ...options, retriable: code === 'unavailable' });
    this.httpStatus = HTTP_STATUS[code];
  }
}
