/** The events published on `job:<id>` (PROTOCOL.md §7). */
export const JobEvent = {
  Queued: 'job.queued',
  Started: 'job.started',
  Progress: 'job.progress',
  Retrying: 'job.retrying',
  /** The runner stopped renewing its lease (it died or hung); published once per stall. */
  Stalled: 'job.stalled',
  Completed: 'job.completed',
  Failed: 'job.failed',
  Cancelled: 'job.cancelled',
} as const;
export type JobEvent = (typeof JobEvent)[keyof typeof JobEvent];
