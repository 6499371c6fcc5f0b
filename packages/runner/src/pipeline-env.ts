/**
 * The pipeline's environment, built from an allow-list rather than the runner's whole
 * environment: a runner holds REDIS_URL (with its password), Kafka credentials, cloud keys; a
 * pipeline needs none of them. Entries are names, or prefixes ending in `*` (`CUDA_*`).
 */

/** What a CUDA / Python pipeline needs from its host when PIPELINE_ENV_ALLOW is unset. */
export const DEFAULT_PIPELINE_ENV_ALLOW: readonly string[] = [
  'PATH',
  'HOME',
  'USER',
  'LANG',
  'LANGUAGE',
  'LC_*',
  'TZ',
  'TMPDIR',
  'SHELL',
  'LD_LIBRARY_PATH',
  'CUDA_*',
  'NVIDIA_*',
  'PYTHON*',
  'VIRTUAL_ENV',
  'CONDA_*',
  'OMP_NUM_THREADS',
];

/** Switchyard's own secrets: never passed on, whatever the allow-list says. */
const ALWAYS_WITHHELD = new Set(['JWT_SECRET', 'BROADCAST_API_KEY', 'ADMIN_API_KEY', 'REDIS_URL', 'REDIS_CLUSTER_NODES']);

function allowed(name: string, allow: readonly string[]): boolean {
  for (const entry of allow) {
    if (entry.endsWith('*') ? name.startsWith(entry.slice(0, -1)) : name === entry) return true;
  }
  return false;
}

/**
 * The runner's variables that `allow` names, then the job's own (`JOB_ID`, `GPU_DEVICE_ID`,
 * `CUDA_VISIBLE_DEVICES`, `REFERENCE_DB_PATH`, ...), which always pass and win.
 */
export function pipelineEnv(parent: NodeJS.ProcessEnv, allow: readonly string[], job: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value !== undefined && !ALWAYS_WITHHELD.has(name) && allowed(name, allow)) env[name] = value;
  }
  return { ...env, ...job };
}
