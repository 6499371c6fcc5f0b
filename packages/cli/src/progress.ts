/** The terminal view of a job for `switchyard watch`: one line with a bar, status, stage and retries. */
import type { JobState } from '@switchyard/client';

export const BAR_WIDTH = 24;

export function progressBar(fraction: number, width: number = BAR_WIDTH): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const filled = Math.round(f * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** `job-1 [##########..............]  42%  running  align: aligning reads  (retry 1, 60s: GPU out of memory)` */
export function jobLine(state: JobState): string {
  const pct = `${Math.round(state.progress * 100)}%`.padStart(4);
  const parts = [state.jobId, progressBar(state.progress), pct, state.status];
  if (state.stage !== undefined) parts.push(state.message === undefined ? state.stage : `${state.stage}: ${state.message}`);
  else if (state.message !== undefined) parts.push(state.message);
  if (state.retry !== undefined) {
    const delay = state.retry.delayMs === undefined ? '' : `, ${Math.round(state.retry.delayMs / 1000)}s`;
    parts.push(`(retry ${state.retry.attempt}${delay}${state.retry.error === undefined ? '' : `: ${state.retry.error}`})`);
  }
  if (state.status === 'failed' && state.failure !== undefined) {
    parts.push(`error: ${state.failure.error}${state.failure.class === undefined ? '' : ` (${state.failure.class})`}`);
  }
  return parts.join('  ');
}
