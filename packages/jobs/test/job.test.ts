import { describe, expect, it } from 'vitest';
import { JobError, isValidJobId, newJobId, parseJobMessage, preview, sniffJobId, validateJob } from '../src/index.js';

describe('job validation', () => {
  it('accepts the contract’s job, keeping extra fields', () => {
    const job = { job_id: 'job-123', owner: 'alice', sample_id: 'S1', path_to_r1: '/d/r1.fq', path_to_r2: '/d/r2.fq', output_path: '/out', params: { k: 31 }, extra: [1] };
    expect(validateJob(job)).toEqual({ ok: true, job });
  });

  it('refuses what is not a job, with the id when it had a usable one', () => {
    expect(validateJob([1])).toMatchObject({ ok: false, error: 'a job must be a JSON object' });
    expect(validateJob({})).toMatchObject({ ok: false, error: expect.stringMatching(/job_id/) });
    expect(validateJob({ job_id: 'has space' })).toMatchObject({ ok: false });
    expect(validateJob({ job_id: 'x'.repeat(129) })).toMatchObject({ ok: false });
    expect(validateJob({ job_id: 'j1', params: [] })).toEqual({ ok: false, error: '"params" must be a JSON object', jobId: 'j1' });
    expect(validateJob({ job_id: 'j1', path_to_r1: 5 })).toMatchObject({ ok: false, jobId: 'j1' });
    expect(validateJob({ job_id: 'j1', owner: '' })).toMatchObject({ ok: false, jobId: 'j1' });
  });

  it('makes ids that are valid job ids', () => {
    for (let i = 0; i < 50; i++) expect(isValidJobId(newJobId())).toBe(true);
    expect(isValidJobId('a:b.c_d-1')).toBe(true);
    // Not in the safe alphabet (issue 11): `/` and `@` could reach a file name through JOB_ID.
    expect(isValidJobId('a:b/c@d.e_f-1')).toBe(false);
    expect(isValidJobId('')).toBe(false);
    expect(isValidJobId(7)).toBe(false);
  });
});

describe('parseJobMessage', () => {
  it('checks the size before parsing, and still finds a leading job_id', () => {
    const big = JSON.stringify({ job_id: 'big-1', pad: 'x'.repeat(2000) });
    expect(parseJobMessage(big, 1000)).toMatchObject({ ok: false, jobId: 'big-1', error: expect.stringMatching(/more than MAX_JOB_BYTES \(1000\)/) });
    expect(parseJobMessage(JSON.stringify({ pad: 'x'.repeat(2000), job_id: 'late' }), 1000)).not.toHaveProperty('jobId');
  });

  it('says what is wrong with a message', () => {
    expect(parseJobMessage(null, 100)).toMatchObject({ ok: false, error: 'empty message (no value)' });
    expect(parseJobMessage(Buffer.from('{"job_id":'), 100)).toMatchObject({ ok: false, error: expect.stringMatching(/not valid JSON/) });
    expect(parseJobMessage(Buffer.from('{"job_id":"ok-1"}'), 100)).toEqual({ ok: true, job: { job_id: 'ok-1' }, bytes: 17 });
  });

  it('sniffs only a well-formed leading id', () => {
    expect(sniffJobId('{"job_id":"a-1","x":')).toBe('a-1');
    expect(sniffJobId('  { "job_id" : "a-2"')).toBe('a-2');
    expect(sniffJobId('{"job_id":"bad id"')).toBeUndefined();
    expect(sniffJobId('{"x":1,"job_id":"a"}')).toBeUndefined();
  });

  it('previews at most the given bytes', () => {
    expect(preview(Buffer.alloc(5000, 0x61)).length).toBe(1024);
    expect(preview(null)).toBe('');
  });
});

describe('JobError', () => {
  it('carries a stable code, an HTTP status and whether to retry', () => {
    const e = new JobError('unavailable', 'kafka down');
    expect([e.code, e.httpStatus, e.retriable, e.name]).toEqual(['unavailable', 503, true, 'JobError']);
    expect(new JobError('job_exists', 'x').httpStatus).toBe(409);
    expect(new JobError('bad_job', 'x').retriable).toBe(false);
  });
});

describe('job ids', () => {
  it('are 1–128 characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit, without ".."', () => {
    for (const ok of ['a', 'job-123', 'J_1.2:3', '9', 'x'.repeat(128), 'a.b.c']) expect(isValidJobId(ok), ok).toBe(true);
    for (const bad of ['', '../etc', 'a/../b', 'a..b', '.hidden', '-flag', 'a/b', 'a@b', 'a b', 'x'.repeat(129), 'é', 'a\nb', 42, null]) {
      expect(isValidJobId(bad), String(bad)).toBe(false);
    }
  });

  it('a job with an unsafe id is refused with its reason (it would go to the DLQ from Kafka)', () => {
    expect(validateJob({ job_id: '../../etc/passwd' })).toMatchObject({ ok: false, error: expect.stringMatching(/"job_id" must be/) });
  });
});
