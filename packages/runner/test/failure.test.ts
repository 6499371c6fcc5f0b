import { describe, expect, it } from 'vitest';
import { classifyFailure, isRetriable, type RunEnd } from '../src/index.js';

const end = (over: Partial<RunEnd>): RunEnd => ({ exitCode: 1, signal: null, timedOut: false, output: '', ...over });

describe('classifyFailure (PROTOCOL.md §7)', () => {
  it.each([
    [{ exitCode: 75 }, 'transient', 'EX_TEMPFAIL'],
    [{ exitCode: 64 }, 'permanent', 'sysexits'],
    [{ exitCode: 65 }, 'permanent', 'sysexits'],
    [{ exitCode: 66 }, 'permanent', 'sysexits'],
    [{ exitCode: 74 }, 'permanent', 'sysexits'],
    [{ exitCode: 76 }, 'permanent', 'sysexits'],
    [{ exitCode: 78 }, 'permanent', 'sysexits'],
    [{ exitCode: 63, output: '' }, 'unknown', 'exit code 63'],
    [{ exitCode: 79, output: '' }, 'unknown', 'exit code 79'],
    [{ exitCode: 1, output: 'RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB' }, 'transient', 'GPU out of memory'],
    [{ exitCode: 1, output: 'cudaErrorMemoryAllocation' }, 'transient', 'GPU out of memory'],
    [{ exitCode: 1, output: 'fetch failed: ECONNRESET' }, 'transient', 'network'],
    [{ exitCode: 1, output: 'Temporary failure in name resolution' }, 'transient', 'network'],
    [{ exitCode: 2, output: "open('/data/r1.fq'): No such file or directory" }, 'permanent', 'missing file'],
    [{ exitCode: 1, output: 'Permission denied' }, 'permanent', 'permission'],
    [{ exitCode: 1, output: 'Segmentation fault' }, 'unknown', 'exit code 1'],
    [{ exitCode: null, signal: 'SIGKILL' as NodeJS.Signals }, 'unknown', 'SIGKILL'],
  ])('%j is %s', (over, cls, reason) => {
    const c = classifyFailure(end(over));
    expect(c.class).toBe(cls);
    expect(c.reason).toContain(reason.split(' ')[0]!);
  });

  it('puts a timeout before the exit code and the output', () => {
    expect(classifyFailure(end({ timedOut: true, exitCode: null, signal: 'SIGTERM', output: 'No such file or directory' }))).toEqual({ class: 'transient', reason: 'timeout' });
  });

  it('puts the exit code before the output: 65 with an OOM message is still permanent', () => {
    expect(classifyFailure(end({ exitCode: 65, output: 'CUDA out of memory' })).class).toBe('permanent');
    expect(classifyFailure(end({ exitCode: 75, output: 'invalid input' })).class).toBe('transient');
  });

  it('lets the pipeline declare the class itself', () => {
    expect(classifyFailure(end({ exitCode: 75, declaredClass: 'permanent' }))).toEqual({ class: 'permanent', reason: 'declared by the pipeline' });
  });

  it('classes a pipeline that cannot be started: missing or not executable is permanent, out of resources transient', () => {
    expect(classifyFailure(end({ exitCode: null, spawnError: 'ENOENT' })).class).toBe('permanent');
    expect(classifyFailure(end({ exitCode: null, spawnError: 'EACCES' })).class).toBe('permanent');
    expect(classifyFailure(end({ exitCode: null, spawnError: 'EAGAIN' })).class).toBe('transient');
  });

  it('retries transient and unknown failures, never permanent ones', () => {
    expect(isRetriable('transient')).toBe(true);
    expect(isRetriable('unknown')).toBe(true);
    expect(isRetriable('permanent')).toBe(false);
  });
});
