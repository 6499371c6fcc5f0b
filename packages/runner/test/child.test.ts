import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commandFor, startPipeline, type PipelineOptions } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sy-child-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
}

const options = (executable: string, over: Partial<PipelineOptions> = {}): PipelineOptions => ({
  executable,
  job: { job_id: 'c1', params: { x: 1 } },
  env: { JOB_ID: 'c1' },
  timeoutMs: 10_000,
  killGraceMs: 500,
  maxLineBytes: 1024,
  onProgress: () => {},
  ...over,
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startPipeline', () => {
  it('runs .mjs files with this Node and anything else directly', () => {
    expect(commandFor('/x/p.mjs')).toEqual([process.execPath, ['/x/p.mjs']]);
    expect(commandFor('/usr/local/bin/biogpu')).toEqual(['/usr/local/bin/biogpu', []]);
  });

  it('gives the job on stdin and the environment, and reads progress, result and the stderr tail', async () => {
    const exe = script(
      'echo.mjs',
      `let s=''; process.stdin.on('data',c=>s+=c); process.stdin.on('end',()=>{
         const job = JSON.parse(s);
         console.log(JSON.stringify({progress:0.5, stage:'echo', message: process.env.JOB_ID}));
         console.log('x'.repeat(5000));
         console.log(JSON.stringify({result:{got:job.params, secret: process.env.JWT_SECRET ?? null}}));
         console.error('all good'); });`,
    );
    const progress: unknown[] = [];
    process.env['JWT_SECRET'] = 'must-not-leak-to-pipelines-0123456789';
    try {
      const end = await startPipeline(options(exe, { onProgress: (p) => progress.push(p) })).done;
      expect(end).toMatchObject({ exitCode: 0, signal: null, timedOut: false, result: { got: { x: 1 }, secret: null }, overlongLines: 1 });
      expect(end.output).toContain('all good');
      expect(progress).toEqual([{ kind: 'progress', progress: 0.5, stage: 'echo', message: 'c1' }]);
    } finally {
      delete process.env['JWT_SECRET'];
    }
  });

  it('stops the whole process group: the pipeline and what it started', async () => {
    const exe = script(
      'tree.mjs',
      `import { spawn } from 'node:child_process';
       const c = spawn('sleep', ['30'], { stdio: 'ignore' });
       console.log(JSON.stringify({ message: String(c.pid) }));
       setInterval(() => {}, 1000);`,
    );
    let grandchild = 0;
    const run = startPipeline(options(exe, { onProgress: (p) => (grandchild = Number(p.message)) }));
    const deadline = Date.now() + 5000;
    while (grandchild === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20)); // sleep-ok: poll interval of a bounded wait on the condition
    expect(alive(grandchild)).toBe(true);
    run.stop('cancel');
    const end = await run.done;
    expect(end.stopped).toBe('cancel');
    expect(end.signal).toBe('SIGTERM');
    const gone = Date.now() + 3000;
    while (alive(grandchild) && Date.now() < gone) await new Promise((r) => setTimeout(r, 20)); // sleep-ok: poll interval of a bounded wait on the condition
    expect(alive(grandchild)).toBe(false);
  });

  it('SIGKILLs a pipeline that ignores SIGTERM, after the grace', async () => {
    // A shell script, not Node: it prints within milliseconds even on a loaded machine, so the
    // short timeout always lands after the first progress line. SIG_IGN is inherited by `sleep`.
    const exe = script('stubborn.sh', `#!/bin/sh\ntrap '' TERM\necho '{"progress":0}'\nwhile :; do sleep 1; done\n`);
    chmodSync(exe, 0o755);
    let started = false;
    const run = startPipeline(options(exe, { timeoutMs: 1000, killGraceMs: 200, onProgress: () => (started = true) }));
    const end = await run.done;
    expect(started).toBe(true);
    expect(end).toMatchObject({ timedOut: true, stopped: 'timeout', signal: 'SIGKILL' });
  });

  it('reports an executable that cannot be started', async () => {
    const end = await startPipeline(options(join(dir, 'missing'))).done;
    expect(end).toMatchObject({ exitCode: null, spawnError: 'ENOENT' });
    const notExec = script('plain.txt', 'hello');
    expect((await startPipeline(options(notExec)).done).spawnError).toBe('EACCES');
  });
});

describe('the pipeline environment (PIPELINE_ENV_ALLOW)', () => {
  const dump = () => script('env.mjs', `process.stdin.resume(); process.stdin.on('end',()=>console.log(JSON.stringify({result: process.env})));`);
  const planted: Record<string, string> = {
    REDIS_URL: 'redis://:hunter2@redis:6379',
    KAFKA_SASL_PASSWORD: 'kafka-secret',
    AWS_SECRET_ACCESS_KEY: 'aws-secret',
    JWT_SECRET: 'must-not-leak-to-pipelines-0123456789',
    CUDA_HOME: '/usr/local/cuda',
    PYTHONPATH: '/opt/lib',
    LC_ALL: 'C.UTF-8',
  };
  const withPlanted = async <T>(fn: () => Promise<T>): Promise<T> => {
    const before = { ...process.env };
    Object.assign(process.env, planted);
    try {
      return await fn();
    } finally {
      for (const k of Object.keys(planted)) if (before[k] === undefined) delete process.env[k];
    }
  };

  it('by default: what a CUDA/Python pipeline needs and the job’s own variables, none of the runner’s secrets', async () => {
    const end = await withPlanted(() => startPipeline(options(dump(), { env: { JOB_ID: 'c1', GPU_DEVICE_ID: '1', CUDA_VISIBLE_DEVICES: '1' } })).done);
    const env = end.result as Record<string, string>;
    expect(env).toMatchObject({ JOB_ID: 'c1', GPU_DEVICE_ID: '1', CUDA_VISIBLE_DEVICES: '1', CUDA_HOME: '/usr/local/cuda', PYTHONPATH: '/opt/lib', LC_ALL: 'C.UTF-8' });
    expect(env['PATH']).toBe(process.env['PATH']);
    for (const secret of ['REDIS_URL', 'KAFKA_SASL_PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'JWT_SECRET']) expect(env[secret], secret).toBeUndefined();
  });

  it('an explicit allow-list is all that passes, and never Switchyard’s own secrets', async () => {
    const end = await withPlanted(() => startPipeline(options(dump(), { envAllow: ['PATH', 'AWS_*', 'REDIS_URL', 'JWT_SECRET'] })).done);
    const env = end.result as Record<string, string>;
    expect(env).toMatchObject({ AWS_SECRET_ACCESS_KEY: 'aws-secret', JOB_ID: 'c1' });
    expect(Object.keys(env).filter((k) => !k.startsWith('AWS_') && k !== 'PATH' && k !== 'JOB_ID')).toEqual([]);
    for (const secret of ['REDIS_URL', 'JWT_SECRET']) expect(env[secret], secret).toBeUndefined();
  });
});
