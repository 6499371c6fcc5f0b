/**
 * The channel of a job's events. Job events are published by the status store, each in the
 * same atomic step as the transition it announces (see `Announcement` in store.ts), so the
 * status hash always records the seq of the last event it reflects.
 */
export function jobChannelOf(jobId: string): string {
  return `job:${jobId}`;
}
