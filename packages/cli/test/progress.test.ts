import { initialJobState, reduceJob } from '@switchyard/client';
import { describe, expect, it } from 'vitest';
import { jobLine, progressBar } from '../src/progress.js';
import { endpoints } from '../src/remote.js';

describe('watch: the job line', () => {
  it('draws a bar of fixed width, clamped', () => {
    expect(progressBar(0, 10)).toBe('[..........]');
    expect(progressBar(0.42, 10)).toBe('[####......]');
    expect(progressBar(1, 10)).toBe('[##########]');
    expect(progressBar(7, 4)).toBe('[####]');
    expect(progressBar(Number.NaN, 4)).toBe('[....]');
  });

  it('shows progress, status, stage, message and the last retry', () => {
    let s = initialJobState('job-7');
    s = reduceJob(s, { event: 'job.progress', data: { progress: 0.5, stage: 'align', message: 'reads 1/2' } });
    s = reduceJob(s, { event: 'job.retrying', data: { attempt: 2, delay_ms: 120_000, error: 'timeout' } });
    expect(jobLine(s)).toBe('job-7  [############............]   50%  retrying  align: reads 1/2  (retry 2, 120s: timeout)');
    s = reduceJob(s, { event: 'job.failed', data: { error: 'exhausted', class: 'transient', attempts: 4 } });
    expect(jobLine(s)).toMatch(/failed .* error: exhausted \(transient\)$/);
  });
});

describe('--url', () => {
  it('derives the HTTP base and the WebSocket URLs', () => {
    expect(endpoints('http://127.0.0.1:8765', {})).toEqual({ http: 'http://127.0.0.1:8765', ws: ['ws://127.0.0.1:8765/ws'] });
    expect(endpoints('ws://h:1/ws', {})).toEqual({ http: 'http://h:1', ws: ['ws://h:1/ws'] });
    expect(endpoints('https://rt.example.com/switchyard/', {})).toEqual({ http: 'https://rt.example.com/switchyard', ws: ['wss://rt.example.com/switchyard/ws'] });
    expect(endpoints('a:1, b:2', {}).ws).toEqual(['ws://a:1/ws', 'ws://b:2/ws']);
    expect(endpoints(undefined, { SWITCHYARD_URL: 'wss://x' })).toEqual({ http: 'https://x', ws: ['wss://x/ws'] });
    expect(endpoints(undefined, {}).http).toBe('http://127.0.0.1:8765');
    expect(() => endpoints('ftp://x', {})).toThrow(/http\(s\)/);
  });
});
