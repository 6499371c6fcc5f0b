import { execFile } from 'node:child_process';

/** How long `nvidia-smi` may take to answer. */
export const NVIDIA_SMI_TIMEOUT_MS = 5000;
export const NVIDIA_SMI_ARGS = ['--query-gpu=index', '--format=csv,noheader'] as const;

/** A place to run one job: a GPU (its index) or, without GPUs, a CPU slot. */
export interface Slot {
  readonly id: string;
  /** The GPU index given to the job as GPU_DEVICE_ID / CUDA_VISIBLE_DEVICES; none for CPU slots. */
  readonly gpu?: string;
}

/**
 * Reads `nvidia-smi --query-gpu=index --format=csv,noheader`: one index per line. Blank
 * lines, whitespace and CR are ignored; anything that is not a non-negative integer
 * (an error message printed on stdout) makes the whole answer unusable.
 */
export function parseNvidiaSmiIndices(output: string): string[] | undefined {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0) return [];
  if (!lines.every((l) => /^\d{1,4}$/.test(l))) return undefined;
  return [...new Set(lines.map((l) => String(Number(l))))];
}

/** GPU indices from GPU_DEVICES: `0,1`; `none` (or empty) for no GPUs. */
export function parseGpuDevices(list: readonly string[]): string[] {
  if (list.length === 1 && list[0]!.toLowerCase() === 'none') return [];
  return [...list];
}

export type Discover = () => Promise<string | undefined>;

/** Runs nvidia-smi; undefined when it is missing, fails or hangs. */
export const runNvidiaSmi: Discover = () =>
  new Promise((resolve) => {
    execFile('nvidia-smi', [...NVIDIA_SMI_ARGS], { timeout: NVIDIA_SMI_TIMEOUT_MS, encoding: 'utf8' }, (err, stdout) => {
      resolve(err === null ? stdout : undefined);
    });
  });

/**
 * The runner's slots: one per GPU from GPU_DEVICES, else one per GPU nvidia-smi reports,
 * else RUNNER_CONCURRENCY CPU slots.
 */
export async function resolveSlots(gpuDevices: readonly string[] | undefined, concurrency: number, discover: Discover = runNvidiaSmi): Promise<{ slots: Slot[]; source: 'GPU_DEVICES' | 'nvidia-smi' | 'cpu' }> {
  let gpus: string[] | undefined;
  let source: 'GPU_DEVICES' | 'nvidia-smi' | 'cpu' = 'cpu';
  if (gpuDevices !== undefined) {
    gpus = parseGpuDevices(gpuDevices);
    source = 'GPU_DEVICES';
  } else {
    const out = await discover();
    gpus = out === undefined ? undefined : parseNvidiaSmiIndices(out);
    if (gpus !== undefined && gpus.length > 0) source = 'nvidia-smi';
  }
  if (gpus !== undefined && gpus.length > 0) return { slots: gpus.map((g) => ({ id: `gpu${g}`, gpu: g })), source };
  return { slots: Array.from({ length: concurrency }, (_, i) => ({ id: `cpu${i}` })), source: 'cpu' };
}
