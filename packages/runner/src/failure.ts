import type { FailureClass } from '@switchyard/jobs';

/** sysexits.h EX_TEMPFAIL: "try again later". */
export const EX_TEMPFAIL = 75;
/** sysexits.h EX_USAGE … EX_CONFIG: the job or its setup is wrong; running it again will not help. */
export const EX_FIRST = 64;
export const EX_LAST = 78;

/** How a pipeline run ended, as far as classification needs to know. */
export interface RunEnd {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Killed for running past JOB_TIMEOUT_S. */
  timedOut: boolean;
  /** The executable could not be started: its error code (ENOENT, EACCES, ...). */
  spawnError?: string;
  /** The last bytes of stderr (and stray stdout), where the reason usually is. */
  output: string;
  /** A class the pipeline declared itself on stdout (`{"error":"...","class":"permanent"}`). */
  declaredClass?: FailureClass;
}

export interface Classified {
  class: FailureClass;
  /** Which rule decided, for logs and the DLQ. */
  reason: string;
}

const GPU_OOM = /CUDA out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|out of memory on device|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED|RESOURCE_EXHAUSTED/i;
const NETWORK = /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|connection (reset|refused|timed out)|network is unreachable|temporary failure in name resolution|timed? ?out|503 Service Unavailable|broken pipe/i;
const PERMANENT = /no such file or directory|ENOENT|permission denied|EACCES|invalid input|invalid argument|malformed|not a valid|unsupported format/i;

/**
 * Classes a failed run (PROTOCOL.md §7). In order: what the pipeline declared; a timeout
 * (transient); a start failure (missing or not executable: permanent); the exit code —
 * 75 transient, 64–78 otherwise permanent; then the output — GPU out of memory and network
 * errors transient, missing files, permissions and invalid input permanent; anything else
 * `unknown`, which callers retry like a transient failure.
 */
export function classifyFailure(end: RunEnd): Classified {
  if (end.declaredClass !== undefined) return { class: end.declaredClass, reason: 'declared by the pipeline' };
  if (end.timedOut) return { class: 'transient', reason: 'timeout' };
  if (end.spawnError !== undefined) {
    return end.spawnError === 'EAGAIN' || end.spawnError === 'ENOMEM' || end.spawnError === 'EMFILE'
      ? { class: 'transient', reason: `could not start (${end.spawnError})` }
      : { class: 'permanent', reason: `could not start (${end.spawnError})` };
  }
  if (end.exitCode === EX_TEMPFAIL) return { class: 'transient', reason: 'exit code 75 (EX_TEMPFAIL)' };
  if (end.exitCode !== null && end.exitCode >= EX_FIRST && end.exitCode <= EX_LAST) return { class: 'permanent', reason: `exit code ${end.exitCode} (sysexits)` };
  if (GPU_OOM.test(end.output)) return { class: 'transient', reason: 'GPU out of memory' };
  if (NETWORK.test(end.output)) return { class: 'transient', reason: 'network error' };
  if (PERMANENT.test(end.output)) return { class: 'permanent', reason: 'invalid input, missing file or permission' };
  return { class: 'unknown', reason: end.signal !== null ? `killed by ${end.signal}` : `exit code ${end.exitCode ?? '?'}` };
}

/** True when a failure of this class gets another try (while retries remain). */
export function isRetriable(cls: FailureClass): boolean {
  return cls !== 'permanent';
}
