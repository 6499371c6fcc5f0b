import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TEST_SECRET, hsToken, runCli, startEdge, type EdgeProcess } from '../harness/index.js';
import { childEnv } from '../harness/env.js';
import { uniqueSub } from '../harness/keys.js';
import { waitFor } from '../harness/ports.js';
import { BROADCAST_KEY, broadcast } from './helpers.js';

const CLI = fileURLToPath(new URL('../../packages/cli/src/main.ts', import.meta.url));

/** A CLI process whose output can be read while it runs. */
function startCli(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000) {
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return {
    exited,
    stdoutLines: () => stdout.split('\n').filter((l) => l !== ''),
    stderrText: () => stderr,
    kill: (signal: NodeJS.Signals) => proc.kill(signal),
  };
}

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

// Every case starts `switchyard` processes (node + tsx): slow on a loaded 2-core machine.
describe('switchyard watch / submit against a real edge', { timeout: 60_000 }, () => {
  let edge: EdgeProcess;
  let reader: string;

  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: BROADCAST_KEY });
    reader = await hsToken({ sub: uniqueSub('watcher'), channels: ['job:*', 'feed:*'], expiresIn: 600 });
  });
  afterAll(async () => {
    await edge?.stop();
  });

  it('watch channel:<name> prints replayed and live events as JSON lines, then exits after --count', async () => {
    const channel = `feed:${uniqueSub('c')}`;
    await broadcast(edge, channel, { n: 1 }, 'first');
    const cli = startCli(['watch', `channel:${channel}`, '--url', edge.http, '--token', reader, '--since', '0', '--count', '4']);
    // The replayed event shows the subscription is live; the rest are published after it.
    await waitFor(() => (cli.stdoutLines().length >= 1 ? true : undefined), 15_000, 'the first line');
    for (let n = 2; n <= 5; n++) await broadcast(edge, channel, { n }, 'later');
    const { code, stdout, stderr } = await cli.exited;
    expect(code, stderr).toBe(0);
    const lines = jsonLines(stdout);
    expect(lines.map((l) => [l['seq'], l['event'], l['data']])).toEqual([
      [1, 'first', { n: 1 }],
      [2, 'later', { n: 2 }],
      [3, 'later', { n: 3 }],
      [4, 'later', { n: 4 }],
    ]);
    expect(lines[0]).toMatchObject({ channel, timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
  });

  it('watch <job> shows live progress with stage and retries, and exits 0 when the job completes', async () => {
    const job = uniqueSub('job');
    const channel = `job:${job}`;
    await broadcast(edge, channel, {}, 'job.queued');
    const cli = startCli(['watch', job, '--url', edge.url, '--token', reader]);
    await waitFor(() => (cli.stderrText().includes('queued') ? true : undefined), 15_000, 'the queued line');
    await broadcast(edge, channel, {}, 'job.started');
    await broadcast(edge, channel, { progress: 0.3, stage: 'align', message: 'aligning reads' }, 'job.progress');
    await broadcast(edge, channel, { attempt: 1, delay_ms: 2000, error: 'GPU out of memory' }, 'job.retrying');
    await broadcast(edge, channel, {}, 'job.started');
    await broadcast(edge, channel, { progress: 0.9, stage: 'call', message: 'calling' }, 'job.progress');
    await broadcast(edge, channel, { result: { genes: 12 } }, 'job.completed');
    const { code, stdout, stderr } = await cli.exited;
    expect(code, stderr).toBe(0);
    expect(jsonLines(stdout)).toEqual([{ job_id: job, status: 'completed', progress: 1, stage: 'call', retries: 1, result: { genes: 12 } }]);
    // Not a TTY here: one line per change, in order.
    const lines = stderr.split('\n').filter((l) => l.startsWith(job));
    expect(lines[0]).toMatch(/\[\.+\]\s+0%\s+queued/);
    expect(lines.some((l) => /\[#{7}\.{17}\]\s+30%\s+running\s+align: aligning reads/.test(l))).toBe(true);
    expect(lines.some((l) => /retrying .*\(retry 1, 2s: GPU out of memory\)/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/\[#{24}\]\s+100%\s+completed/);
  });

  it('exits 1 for a failed job and 3 for a cancelled one, replaying jobs that finished before the watch began', async () => {
    const failed = uniqueSub('job');
    await broadcast(edge, `job:${failed}`, {}, 'job.started');
    await broadcast(edge, `job:${failed}`, { error: 'input file missing', class: 'permanent', attempts: 1 }, 'job.failed');
    const f = await runCli(['watch', failed, '--url', edge.http, '--token', reader, '--quiet']);
    expect(f.code, f.stderr).toBe(1);
    expect(jsonLines(f.stdout)).toEqual([{ job_id: failed, status: 'failed', progress: 0, error: 'input file missing', class: 'permanent', attempts: 1 }]);
    expect(f.stderr).toBe('');

    const cancelled = uniqueSub('job');
    await broadcast(edge, `job:${cancelled}`, {}, 'job.queued');
    await broadcast(edge, `job:${cancelled}`, {}, 'job.cancelled');
    const c = await runCli(['watch', `job:${cancelled}`, '--url', edge.http, '--token', reader]);
    expect(c.code, c.stderr).toBe(3);
    expect(jsonLines(c.stdout)[0]).toMatchObject({ status: 'cancelled' });
  });

  it('mints its own token from JWT_SECRET for --user', async () => {
    const job = uniqueSub('job');
    await broadcast(edge, `job:${job}`, { result: 'ok' }, 'job.completed');
    const r = await runCli(['watch', job, '--url', edge.http, '--user', 'minted-user'], { JWT_SECRET: TEST_SECRET, SWITCHYARD_TOKEN: undefined });
    expect(r.code, r.stderr).toBe(0);
    expect(jsonLines(r.stdout)[0]).toMatchObject({ status: 'completed', result: 'ok' });
  });

  it('exits 4 at once for a refused token or a forbidden channel (no retry loop)', async () => {
    const bad = await hsToken({ sub: 'x', channels: ['job:*'], secret: 'a-different-secret-that-is-long-enough!!' });
    const refused = await runCli(['watch', 'job-none', '--url', edge.http, '--token', bad], {}, 10_000);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('bad_signature');

    const noRight = await hsToken({ sub: uniqueSub('nr') });
    const forbidden = await runCli(['watch', 'channel:secret', '--url', edge.http, '--token', noRight], {}, 10_000);
    expect(forbidden.code).toBe(4);
    expect(forbidden.stderr).toContain('forbidden');
  });

  it('exits 2 for bad usage, naming what is wrong', async () => {
    const usage = await runCli(['watch', '--url', edge.http, '--token', reader]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('watch takes one target');
    expect((await runCli(['watch', 'channel:bad channel', '--token', reader])).code).toBe(2);
    expect((await runCli(['watch', 'job-1'], { SWITCHYARD_TOKEN: undefined, JWT_SECRET: undefined })).stderr).toContain('needs a token');
  });

  it('watch channel:<name> --timeout without --count ends quietly with 0', async () => {
    const r = await runCli(['watch', `channel:feed:${uniqueSub('t')}`, '--url', edge.http, '--token', reader, '--timeout', '0.5']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
  });
});

describe('switchyard submit', { timeout: 60_000 }, () => {
  let dir: string;
  let edge: EdgeProcess;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sy-submit-'));
    // A pipeline in the contract's shape (PROTOCOL.md §7): progress lines on stdout, exit 0.
    const pipeline = join(dir, 'pipeline.mjs');
    writeFileSync(
      pipeline,
      [
        '#!/usr/bin/env node',
        "let input = ''; process.stdin.on('data', (d) => (input += d));",
        "process.stdin.on('end', async () => {",
        "  for (const [p, stage] of [[0.25, 'align'], [0.75, 'call']]) {",
        "    console.log(JSON.stringify({ progress: p, stage, message: 'sample ' + (JSON.parse(input).sample_id ?? '?') }));",
        // sleep-ok: a pipeline's own pace between progress lines, not a wait of the test
        '    await new Promise((r) => setTimeout(r, 100));',
        '  }',
        '});',
      ].join('\n'),
    );
    chmodSync(pipeline, 0o755);
    edge = await startEdge({ BROADCAST_API_KEY: BROADCAST_KEY, PIPELINE_EXECUTABLE: pipeline, GPU_DEVICES: '0' });
  });
  afterAll(async () => {
    await edge?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('submits a job, prints its id, and --watch follows it to completion', async () => {
    const r = await runCli(['submit', '--url', edge.http, '--user', 'submitter', '--sample', 'S1', '--params', '{"min_quality":20}', '--watch'], { JWT_SECRET: TEST_SECRET, SWITCHYARD_TOKEN: undefined }, 30_000);
    expect(r.code, r.stderr).toBe(0);
    const [idLine, final] = r.stdout.split('\n');
    expect(idLine).toMatch(/^\S+$/);
    expect(JSON.parse(final!)).toMatchObject({ job_id: idLine, status: 'completed', progress: 1 });
    expect(r.stderr).toMatch(/25%\s+running\s+align: sample S1/);
  });

  it('reports a refused submission with the server’s code and exits 4', async () => {
    const bare = await startEdge({});
    try {
      const r = await runCli(['submit', '--url', bare.http, '--token', await hsToken({ sub: 'u' }), '--sample', 'S2']);
      expect(r.code).toBe(4);
      // The route exists on every edge; one without a pipeline refuses the job, it does not 404.
      expect(r.stderr).toMatch(/POST \/jobs answered 503 jobs_disabled/);
      expect(r.stdout).toBe('');
    } finally {
      await bare.stop();
    }
    expect((await runCli(['submit', '--params', '[1]', '--token', 't'])).code).toBe(2);
  });
});
