import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
    const exe = script('stubborn.mjs', `process.on('SIGTERM', () => {}); console.log('{"progress":0}'); setInterval(() => {}, 1000);`);
    let started = false;
    const run = startPipeline(options(exe, { timeoutMs: 300, killGraceMs: 200, onProgress: () => (started = true) }));
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
