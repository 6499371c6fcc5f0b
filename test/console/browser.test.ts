import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, connect, hsToken, startEdge, type EdgeProcess, type TestClient } from '../harness/index.js';
import { uniqueSub } from '../harness/keys.js';
import { waitFor } from '../harness/ports.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { CHROMIUM } from '../harness/system.js';
import { DEMO_PIPELINE, postJob } from '../jobs/helpers.js';

const ADMIN_KEY = 'admin-key-for-the-console-browser-test';
const BROADCAST_KEY = 'bk-console-browser';
/** Where the screenshots go (git-ignored); docs/img/console.png is copied from here by hand. */
const SHOTS = join(ROOT, 'test-results', 'console');

type Doc = { querySelector(s: string): { getAttribute(a: string): string | null } | null };

describe('the console in Chromium, on a two-edge Redis cluster', () => {
  let redis: RedisServer;
  let a: EdgeProcess;
  let b: EdgeProcess;
  let browser: Browser;
  const clients: TestClient[] = [];
  const problems: string[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const cluster = { REDIS_URL: redis.url, HEARTBEAT_MS: '250', CONSOLE: 'true', ADMIN_API_KEY: ADMIN_KEY, BROADCAST_API_KEY: BROADCAST_KEY, KAFKA_SERVERS: undefined };
    // Edge A runs jobs in process (the demo pipeline) with their status in Redis; B only serves.
    [a, b] = await Promise.all([
      startEdge(
        { ...cluster, WORKER_ID: 'edge-a', PIPELINE_EXECUTABLE: DEMO_PIPELINE, GPU_DEVICES: 'none', PROGRESS_INTERVAL_MS: '0', BASE_RETRY_DELAY: '0.05', MAX_RETRIES: '1' },
        { timeoutMs: 30_000 },
      ),
      startEdge({ ...cluster, WORKER_ID: 'edge-b', PIPELINE_EXECUTABLE: undefined, BIOGPU_EXECUTABLE: undefined }, { timeoutMs: 30_000 }),
    ]);
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await browser?.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  const valueOf = (page: Page, job: string) =>
    page.evaluate((j) => (globalThis as unknown as { document: Doc }).document.querySelector(`[data-job="${j}"] [role="progressbar"]`)?.getAttribute('aria-valuenow') ?? null, job);

  it('signs in, shows both edges, moves a job’s bar to completed, lists a dead letter, and drops a killed node', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`));
    page.on('request', (req) => {
      if (!req.url().startsWith(a.http) && !req.url().startsWith(a.url.replace('/ws', '')) && !req.url().startsWith('data:')) problems.push(`request elsewhere: ${req.url()}`);
    });

    await page.goto(`${a.http}/console`);
    await page.locator('#key').waitFor({ timeout: 10_000 });
    expect(problems).toEqual([]);
    // A wrong key is refused and nothing is shown (Chromium logs the 401 it got; nothing else).
    await page.locator('#key').fill('not-the-key');
    await page.locator('#login button[type="submit"]').click();
    await page.locator('#login-error', { hasText: 'not accepted' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#app').isHidden()).toBe(true);
    expect(problems).toEqual([expect.stringMatching(/^error: Failed to load resource: .*401/)]);
    problems.length = 0;

    await page.locator('#key').fill(ADMIN_KEY);
    await page.locator('#login button[type="submit"]').click();
    await page.locator('[data-node="edge-a"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-node="edge-b"]').waitFor({ timeout: 15_000 });
    await page.locator('#live[data-state="on"]').waitFor({ timeout: 15_000 });
    // The key is kept for this tab only.
    expect(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('switchyard.adminKey'))).toBe(ADMIN_KEY);

    // Clients on both edges: the node cards count them, the channels table adds them up.
    for (const [edge, n] of [[a, 2], [b, 3]] as const) {
      for (let i = 0; i < n; i++) {
        const { client } = await connect(edge.url, await hsToken({ sub: uniqueSub('viewer'), channels: ['dashboard'] }));
        clients.push(client);
        client.send({ type: 'subscribe', channel: 'dashboard' });
        await client.next('subscription_result');
      }
    }
    await page.locator('[data-node="edge-b"] [data-stat="connections"]', { hasText: /^3$/ }).waitFor({ timeout: 15_000 });
    await page.locator('[data-node="edge-a"] [data-stat="connections"]', { hasText: /^[2-9]$/ }).waitFor({ timeout: 15_000 });
    await page.locator('[data-node="edge-a"] [data-stat="cpu"]', { hasText: '%' }).waitFor({ timeout: 15_000 });
    const tick = (n: number) =>
      fetch(`${b.http}/broadcast`, {
        method: 'POST',
        headers: { authorization: `Bearer ${BROADCAST_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'dashboard', event: 'system.status', data: { ok: true, n } }),
      });
    await tick(0);
    await page.locator('#channels tr[data-channel="dashboard"] td:nth-child(2)', { hasText: /^5$/ }).waitFor({ timeout: 15_000 });

    // Following a channel: its latest events, then live ones.
    await page.locator('#channels tr[data-channel="dashboard"]').click();
    await page.locator('#events li[data-seq="1"]').waitFor({ timeout: 10_000 });
    for (let n = 1; n <= 3; n++) await tick(n);
    await page.locator('#events li[data-seq="4"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('#events li').first().getAttribute('data-seq')).toBe('4');

    // A job submitted to edge A: its bar moves (seen part-way) and ends completed at 100 %.
    const owner = await hsToken({ sub: uniqueSub('scientist') });
    const job = uniqueSub('console-job');
    expect((await postJob(a.http, owner, { job_id: job, sample_id: 'S-17', params: { stages: 8, stage_ms: 500 } })).status).toBe(202);
    await page.locator(`[data-job="${job}"]`).waitFor({ timeout: 15_000 });
    const partway = await waitFor(async () => {
      const v = Number(await valueOf(page, job));
      return v > 0 && v < 100 ? v : undefined;
    }, 20_000, 'the bar part-way');
    expect(partway).toBeGreaterThan(0);
    expect(await page.locator(`[data-job="${job}"] .pill`).textContent()).toBe('running');
    await page.locator(`[data-job="${job}"][data-state="completed"]`).waitFor({ timeout: 30_000 });
    expect(await valueOf(page, job)).toBe('100');
    expect(await page.locator(`[data-job="${job}"] .pct`).textContent()).toBe('100%');
    expect(await page.locator(`[data-job="${job}"] .attempts`).textContent()).toBe('1');

    // A permanent failure is a dead letter with its error and class.
    const bad = uniqueSub('console-bad');
    await postJob(a.http, owner, { job_id: bad, sample_id: 'S-18', params: { stages: 2, stage_ms: 50, fail: 'permanent' } });
    await page.locator(`[data-dead="${bad}"]`).waitFor({ timeout: 30_000 });
    expect(await page.locator(`[data-dead="${bad}"] .pill`).textContent()).toBe('permanent');
    expect((await page.locator(`[data-dead="${bad}"] td.err`).textContent())!.length).toBeGreaterThan(0);
    await page.locator(`[data-job="${bad}"][data-state="failed"]`).waitFor({ timeout: 10_000 });

    // A running job for the picture, next to the finished ones.
    const running = uniqueSub('console-run');
    await postJob(a.http, owner, { job_id: running, sample_id: 'S-19', params: { stages: 40, stage_ms: 500 } });
    await waitFor(async () => (Number(await valueOf(page, running)) >= 10 ? true : undefined), 30_000, 'a job part-way for the screenshot');
    await page.screenshot({ path: join(SHOTS, 'console.png'), fullPage: true, animations: 'disabled' });

    // Edge B dies: it drops out of the registry within three heartbeats, and out of the page.
    b.kill('SIGKILL');
    await b.exited;
    await page.locator('[data-node="edge-b"]').waitFor({ state: 'detached', timeout: 20_000 });
    expect(await page.locator('[data-node="edge-a"]').count()).toBe(1);
    await page.screenshot({ path: join(SHOTS, 'console-after-kill.png'), fullPage: true, animations: 'disabled' });
    expect(problems).toEqual([]);
    await page.close();
  });
});
