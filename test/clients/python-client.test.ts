import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startEdge, TEST_SECRET, type EdgeProcess } from '../harness/index.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { DEMO_PIPELINE } from '../jobs/helpers.js';

/**
 * The Python client (packages/client-python) against real edges on a real Redis: this file
 * makes the package's own virtual environment when it is missing (pip install -e, with the test
 * extras from PyPI), starts the cluster, and runs the package's pytest suite against it.
 */
const PKG = join(ROOT, 'packages/client-python');
const VENV = join(PKG, '.cache/venv');
const VENV_PY = join(VENV, 'bin/python');
const STAMP = join(VENV, '.switchyard-installed');
const KEY = 'bk-python-client';
const HISTORY_SIZE = 20;

/** The first Python ≥ 3.11 on PATH with venv and pip, or why there is none. */
function findPython(): { python: string } | { missing: string } {
  for (const candidate of ['python3', 'python3.13', 'python3.12', 'python3.11']) {
    const probe = spawnSync(candidate, ['-c', 'import sys, venv, ensurepip; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
    if (probe.status !== 0) continue;
    const [major, minor] = probe.stdout.trim().split('.').map(Number);
    if (major === 3 && minor! >= 11) return { python: candidate };
  }
  return { missing: 'no python3 (3.11 or newer) with the venv and ensurepip modules on PATH' };
}

const found = findPython();

/** Creates (or refreshes, when pyproject.toml changed) the package's venv. */
function ensureVenv(python: string): void {
  const want = createHash('sha256').update(readFileSync(join(PKG, 'pyproject.toml'))).digest('hex');
  if (existsSync(STAMP) && readFileSync(STAMP, 'utf8') === want && existsSync(VENV_PY)) return;
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { cwd: PKG, encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  };
  if (!existsSync(VENV_PY)) {
    rmSync(VENV, { recursive: true, force: true });
    run(python, ['-m', 'venv', VENV]);
  }
  run(VENV_PY, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-e', '.[test]']);
  writeFileSync(STAMP, want);
}

function pytest(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const proc = spawn(VENV_PY, ['-m', 'pytest', '-p', 'no:cacheprovider', '-q', '-rA', '--color=no', ...args], {
      cwd: PKG,
      env: { ...process.env, ...env, PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    proc.on('exit', (code) => resolve({ code, output }));
  });
}

describe.skipIf('missing' in found)(`Python client (packages/client-python)${'missing' in found ? `: skipped, ${found.missing}` : ''}`, () => {
  let redis: RedisServer;
  const edges: EdgeProcess[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    ensureVenv((found as { python: string }).python);
    redis = await startRedis();
    const common = {
      REDIS_URL: redis.url,
      BROADCAST_API_KEY: KEY,
      HEARTBEAT_MS: '300',
      HISTORY_SIZE: String(HISTORY_SIZE),
      PRESENCE_CHANNELS: 'room:*',
    };
    // Node A also runs jobs in process (no Kafka), with the demo pipeline at test speed.
    const jobs = { PIPELINE_EXECUTABLE: DEMO_PIPELINE, GPU_DEVICES: 'none', BASE_RETRY_DELAY: '0.05', MAX_RETRIES: '1', PROGRESS_INTERVAL_MS: '0', KAFKA_SERVERS: undefined };
    edges.push(
      ...(await Promise.all([
        startEdge({ ...common, ...jobs, WORKER_ID: 'py-a' }, { timeoutMs: 30_000 }),
        startEdge({ ...common, WORKER_ID: 'py-b' }, { timeoutMs: 30_000 }),
        startEdge({ ...common, WORKER_ID: 'py-victim' }, { timeoutMs: 30_000 }),
        startEdge({ ...common, WORKER_ID: 'py-drained', DRAIN_TIMEOUT_MS: '10000' }, { timeoutMs: 30_000 }),
      ])),
    );
    const [a, b, victim, drained] = edges;
    env = {
      SWITCHYARD_URLS: `${a!.url},${b!.url}`,
      SWITCHYARD_VICTIM_URL: victim!.url,
      SWITCHYARD_VICTIM_PID: String(victim!.proc.pid),
      SWITCHYARD_DRAIN_URL: drained!.url,
      SWITCHYARD_DRAIN_PID: String(drained!.proc.pid),
      SWITCHYARD_JWT_SECRET: TEST_SECRET,
      SWITCHYARD_BROADCAST_KEY: KEY,
      SWITCHYARD_HISTORY_SIZE: String(HISTORY_SIZE),
    };
  }, 400_000);

  afterAll(async () => {
    await Promise.all(edges.map((e) => e.stop()));
    await redis?.stop();
  });

  it('passes its pytest suite: round trip, direct, token refresh, exactly-once resume after kill -9 and after a drain, gaps, jobs, typed errors', async () => {
    const { code, output } = await pytest(['-m', 'not needs_v11'], env);
    console.log(output);
    expect(code, output).toBe(0);
    expect(output).toMatch(/\d+ passed/);
    expect(output).not.toMatch(/skipped|xfail/);
    // The suite's kill -9 and drain really happened.
    expect((await edges[2]!.exited).signal).toBe('SIGKILL');
    expect(await edges[3]!.exited).toEqual({ code: 0, signal: null });
  }, 300_000);

  it('type-checks with mypy --strict (the package ships py.typed)', () => {
    const r = spawnSync(VENV_PY, ['-m', 'mypy'], { cwd: PKG, encoding: 'utf8', timeout: 180_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/Success: no issues found in \d+ source files/);
    expect(existsSync(join(PKG, 'src/switchyard/py.typed'))).toBe(true);
  }, 200_000);

  it('passes the v1.1 contract tests (presence, resume positions, refresh removing rights)', async () => {
    const { code, output } = await pytest(['-m', 'needs_v11'], env);
    console.log(output);
    expect(code, output).toBe(0);
    expect(output).toMatch(/\d+ passed/);
  }, 200_000);
});
