import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TEST_SECRET, connect, runCli, startEdge, type EdgeProcess } from '../harness/index.js';
import { CHROMIUM } from '../harness/system.js';
import { waitFor } from '../harness/ports.js';

/** `switchyard dev` as a newcomer starts it: nothing set but the port. */
const FRESH = {
  HOST: undefined,
  JWT_SECRET: undefined,
  ADMIN_API_KEY: undefined,
  CONSOLE: undefined,
  REDIS_URL: undefined,
  REDIS_CLUSTER_NODES: undefined,
  KAFKA_SERVERS: undefined,
  PIPELINE_EXECUTABLE: undefined,
  BIOGPU_EXECUTABLE: undefined,
  GPU_DEVICES: 'none',
  PROGRESS_INTERVAL_MS: '0',
};

function listeningHost(dev: EdgeProcess): string | undefined {
  const line = dev.lines.find((l) => l.includes('edge listening'));
  return line === undefined ? undefined : (JSON.parse(line) as { host?: string }).host;
}

async function banner(dev: EdgeProcess): Promise<string> {
  await waitFor(() => dev.lines.some((l) => l.includes('Health:')) || undefined, 20_000, 'the dev banner');
  return dev.lines.filter((l) => !l.startsWith('{')).join('\n');
}

describe('switchyard dev: the first five minutes', () => {
  let dev: EdgeProcess;
  let text: string;

  beforeAll(async () => {
    dev = await startEdge(FRESH, { command: 'dev', timeoutMs: 30_000 });
    text = await banner(dev);
  });
  afterAll(async () => {
    await dev?.stop();
  });

  it('listens on 127.0.0.1 when HOST is not set', () => {
    expect(listeningHost(dev)).toBe('127.0.0.1');
  });

  it('prints one token, once, as a shell variable, and every command line uses the variable', async () => {
    const exports = text.split('\n').filter((l) => l.trim().startsWith('export SWITCHYARD_TOKEN='));
    expect(exports).toHaveLength(1);
    const match = /export SWITCHYARD_TOKEN='([^']+)' SWITCHYARD_URL='(http:\/\/127\.0\.0\.1:\d+)'/.exec(exports[0]!);
    expect(match).not.toBeNull();
    const [, token, url] = match!;
    expect(url).toBe(dev.http);
    // The token itself appears nowhere else; the commands say $SWITCHYARD_TOKEN.
    expect(text.split(token!).length - 1).toBe(1);
    expect(text).toContain(`npx -y wscat -c "ws://127.0.0.1:${dev.port}/ws?token=$SWITCHYARD_TOKEN"`);
    expect(text).toContain('-H "Authorization: Bearer $SWITCHYARD_TOKEN"');
    expect(text).toMatch(/switchyard submit --watch/);
    expect(text).toContain('JWT_SECRET was generated for this run: tokens stop working when the node restarts');
    expect(text).toContain('Set JWT_SECRET to keep them valid across restarts');
    const { client, hello } = await connect(dev.url, token!);
    expect(hello).toMatchObject({ type: 'auth_success', user_id: 'dev-user' });
    client.close();
  });

  it('turns the console on and prints its address and a generated admin key that opens it', async () => {
    const m = /Console: +(http:\/\/127\.0\.0\.1:\d+\/console) +\(admin key: ([^)\s]+)\)/.exec(text);
    expect(m).not.toBeNull();
    const [, address, key] = m!;
    expect(address).toBe(`${dev.http}/console`);
    const page = await fetch(address!);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect((await fetch(`${dev.http}/admin/nodes`)).status).toBe(401);
    const nodes = await fetch(`${dev.http}/admin/nodes`, { headers: { authorization: `Bearer ${key}` } });
    expect(nodes.status).toBe(200);
    expect(((await nodes.json()) as { nodes: { id: string }[] }).nodes.map((n) => n.id)).toEqual(['dev-1']);
  });

  it('the banner’s `switchyard submit --watch` runs a demo job to completed with the exported variables', async () => {
    const exported = /export SWITCHYARD_TOKEN='([^']+)' SWITCHYARD_URL='([^']+)'/.exec(text)!;
    const run = await runCli(['submit', '--watch', '--sample', 'S1', '--params', '{"stages":3,"stage_ms":50}'], { SWITCHYARD_TOKEN: exported[1], SWITCHYARD_URL: exported[2], JWT_SECRET: undefined }, 60_000);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);
    const jobId = run.stdout.split('\n')[0]!.trim();
    const status = await fetch(`${dev.http}/jobs/${jobId}`, { headers: { authorization: `Bearer ${exported[1]}` } });
    expect(((await status.json()) as { state: string }).state).toBe('completed');
    // The console lists it.
    const key = /admin key: ([^)\s]+)\)/.exec(text)![1];
    const jobs = (await (await fetch(`${dev.http}/admin/jobs`, { headers: { authorization: `Bearer ${key}` } })).json()) as { jobs: { job_id: string; state: string }[] };
    expect(jobs.jobs).toContainEqual(expect.objectContaining({ job_id: jobId, state: 'completed' }));
  });
});

describe('switchyard dev: a newcomer follows the banner into the console, in Chromium', () => {
  let dev: EdgeProcess;
  let text: string;

  beforeAll(async () => {
    dev = await startEdge(FRESH, { command: 'dev', timeoutMs: 30_000 });
    text = await banner(dev);
  });
  afterAll(async () => {
    await dev?.stop();
  });

  it('opens the printed console address with the printed key, submits with the printed command, and watches the bar complete', async () => {
    const [, address, key] = /Console: +(\S+) +\(admin key: ([^)\s]+)\)/.exec(text)!;
    const [, token, url] = /export SWITCHYARD_TOKEN='([^']+)' SWITCHYARD_URL='([^']+)'/.exec(text)!;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const problems: string[] = [];
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(address!);
      await page.locator('#key').fill(key!);
      await page.locator('#login button[type="submit"]').click();
      await page.locator('[data-node="dev-1"]').waitFor({ timeout: 15_000 });
      await page.locator('#live[data-state="on"]').waitFor({ timeout: 15_000 });
      // The banner's command, as a person would run it (its progress bar on stderr).
      const cli = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'packages/cli/src/main.ts'), 'submit', '--watch', '--sample', 'S1', '--params', '{"stages":6,"stage_ms":400}'], {
        cwd: ROOT,
        env: { ...process.env, SWITCHYARD_TOKEN: token, SWITCHYARD_URL: url, JWT_SECRET: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => cli.on('exit', resolve));
      const jobId = await waitFor(() => (out.includes('\n') ? out.split('\n')[0]!.trim() : undefined), 20_000, 'the job id');
      const row = page.locator(`[data-job="${jobId}"]`);
      await row.waitFor({ timeout: 15_000 });
      const seen = new Set<string>();
      await waitFor(async () => {
        const v = await row.locator('[role="progressbar"]').getAttribute('aria-valuenow');
        if (v !== null) seen.add(v);
        return v === '100' ? true : undefined;
      }, 30_000, 'the bar at 100');
      expect([...seen].some((v) => Number(v) > 0 && Number(v) < 100)).toBe(true);
      await page.locator(`[data-job="${jobId}"][data-state="completed"]`).waitFor({ timeout: 15_000 });
      expect(await exited).toBe(0);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});

describe('switchyard dev with the user’s own settings', () => {
  let dev: EdgeProcess;
  let text: string;

  beforeAll(async () => {
    dev = await startEdge({ ...FRESH, HOST: '0.0.0.0', JWT_SECRET: TEST_SECRET, ADMIN_API_KEY: 'my-own-admin-key' }, { command: 'dev', timeoutMs: 30_000 });
    text = await banner(dev);
  });
  afterAll(async () => {
    await dev?.stop();
  });

  it('listens where HOST says, keeps the given secret quiet and does not echo the admin key', () => {
    expect(listeningHost(dev)).toBe('0.0.0.0');
    expect(text).not.toContain('JWT_SECRET was generated');
    expect(text).not.toContain('my-own-admin-key');
    expect(text).toContain(`Console:  http://127.0.0.1:${dev.port}/console   (admin key: your ADMIN_API_KEY)`);
  });
});
