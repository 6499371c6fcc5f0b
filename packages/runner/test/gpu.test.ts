import { describe, expect, it } from 'vitest';
import { NVIDIA_SMI_ARGS, parseGpuDevices, parseNvidiaSmiIndices, resolveSlots } from '../src/index.js';

describe('nvidia-smi discovery', () => {
  it('asks nvidia-smi for the indices only', () => {
    expect(NVIDIA_SMI_ARGS).toEqual(['--query-gpu=index', '--format=csv,noheader']);
  });

  it('parses one index per line, with blanks, CR and spaces around', () => {
    expect(parseNvidiaSmiIndices('0\n1\n')).toEqual(['0', '1']);
    expect(parseNvidiaSmiIndices(' 0 \r\n 1\r\n\r\n3\n')).toEqual(['0', '1', '3']);
    expect(parseNvidiaSmiIndices('')).toEqual([]);
    expect(parseNvidiaSmiIndices('00\n0\n')).toEqual(['0']);
  });

  it('refuses an answer that is not a list of indices (an error printed on stdout)', () => {
    expect(parseNvidiaSmiIndices('NVIDIA-SMI has failed because it couldn’t communicate with the NVIDIA driver.')).toBeUndefined();
    expect(parseNvidiaSmiIndices('0\nNo devices were found\n')).toBeUndefined();
    expect(parseNvidiaSmiIndices('0, Tesla T4\n')).toBeUndefined();
  });

  it('reads GPU_DEVICES, with none for no GPUs', () => {
    expect(parseGpuDevices(['0', '1'])).toEqual(['0', '1']);
    expect(parseGpuDevices(['none'])).toEqual([]);
    expect(parseGpuDevices(['NONE'])).toEqual([]);
  });
});

describe('resolveSlots', () => {
  const never = async () => {
    throw new Error('nvidia-smi must not be asked');
  };

  it('takes GPU_DEVICES as given, one slot each, without asking nvidia-smi', async () => {
    expect(await resolveSlots(['0', '2'], 4, never)).toEqual({ slots: [{ id: 'gpu0', gpu: '0' }, { id: 'gpu2', gpu: '2' }], source: 'GPU_DEVICES' });
  });

  it('GPU_DEVICES=none means CPU slots', async () => {
    expect(await resolveSlots(['none'], 2, never)).toEqual({ slots: [{ id: 'cpu0' }, { id: 'cpu1' }], source: 'cpu' });
  });

  it('asks nvidia-smi when GPU_DEVICES is unset', async () => {
    expect(await resolveSlots(undefined, 3, async () => '0\n1\n')).toEqual({ slots: [{ id: 'gpu0', gpu: '0' }, { id: 'gpu1', gpu: '1' }], source: 'nvidia-smi' });
  });

  it('falls back to RUNNER_CONCURRENCY CPU slots without nvidia-smi, or with no GPU, or with garbage', async () => {
    for (const answer of [undefined, '', 'No devices were found']) {
      expect(await resolveSlots(undefined, 2, async () => answer)).toEqual({ slots: [{ id: 'cpu0' }, { id: 'cpu1' }], source: 'cpu' });
    }
  });
});
