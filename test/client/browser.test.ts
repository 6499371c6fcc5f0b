import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hsToken, startEdge, type EdgeProcess } from '../harness/index.js';
import { uniqueSub } from '../harness/keys.js';
import { CHROMIUM } from '../harness/system.js';
import { BROADCAST_KEY, broadcast } from './helpers.js';

const ENTRY = fileURLToPath(new URL('./browser/page.ts', import.meta.url));

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchyard jobs</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; background: #f6f7f9; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .connection { color: #5b6475; margin: 0 0 16px; }
  .jobs { list-style: none; padding: 0; margin: 0; width: 520px; }
  .job { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 12px 14px; margin-bottom: 12px; }
  .head { display: flex; justify-content: space-between; font-weight: 600; margin-bottom: 8px; }
  .status { font-weight: 500; color: #5b6475; }
  .completed .status { color: #1a7f37; } .failed .status { color: #cf222e; } .retrying .status { color: #9a6700; }
  .bar { height: 12px; background: #e8ebf0; border-radius: 6px; overflow: hidden; }
  .fill { height: 100%; background: #3b82f6; }
  .completed .fill { background: #22a06b; } .failed .fill { background: #e5484d; }
  .meta { display: flex; gap: 12px; margin-top: 6px; font-size: 13px; color: #5b6475; }
  .pct { font-variant-numeric: tabular-nums; min-width: 3em; }
</style></head>
<body><div id="root"></div><script type="module" src="/app.js"></script></body></html>`;

describe('a browser page follows jobs with the SDK and shows them', () => {
  let edge: EdgeProcess;
  let server: Server;
  let base: string;
  let browser: Browser;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    edge = await startEdge({ BROADCAST_API_KEY: BROADCAST_KEY });
    // The SDK and React bundled for the browser, as an application would ship them.
    const bundle = await build({
      entryPoints: [ENTRY],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'silent',
    });
    const js = bundle.outputFiles[0]!.text;
    expect(js).not.toMatch(/from\s*["']ws["']/);
    server = createServer((req, res) => {
      if (req.url?.startsWith('/app.js')) res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
      else if (req.url === '/' || req.url?.startsWith('/?')) res.writeHead(200, { 'content-type': 'text/html' }).end(HTML);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await edge?.stop();
  });

  const bar = (page: Page, job: string) => page.locator(`[data-job="${job}"] [role="progressbar"]`);
  const waitForValue = (page: Page, job: string, value: number) =>
    page.waitForFunction(
      ([j, v]) => (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(a: string): string | null } | null } }).document.querySelector(`[data-job="${j}"] [role="progressbar"]`)?.getAttribute('aria-valuenow') === String(v),
      [job, value] as const,
      { timeout: 10_000 },
    );

  it('shows a progress bar per job, updated live, until each completes', async () => {
    const a = uniqueSub('job-a');
    const b = uniqueSub('job-b');
    const token = await hsToken({ sub: uniqueSub('browser'), channels: ['job:*'], expiresIn: 600 });
    const page = await browser.newPage({ viewport: { width: 600, height: 360 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const query = new URLSearchParams({ ws: edge.url, token, jobs: `${a},${b}` });
    await page.goto(`${base}/?${query}`);
    await page.locator('[data-connection="connected"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-job]').count()).toBe(2);

    await broadcast(edge, `job:${a}`, {}, 'job.queued');
    await broadcast(edge, `job:${b}`, {}, 'job.queued');
    await page.locator(`[data-job="${a}"][data-status="queued"]`).waitFor({ timeout: 10_000 });
    await broadcast(edge, `job:${a}`, {}, 'job.started');
    await broadcast(edge, `job:${a}`, { progress: 0.2, stage: 'align', message: 'aligning reads' }, 'job.progress');
    await waitForValue(page, a, 20);
    expect(await page.locator(`[data-job="${a}"] .detail`).textContent()).toBe('align — aligning reads');
    await broadcast(edge, `job:${b}`, {}, 'job.started');
    await broadcast(edge, `job:${b}`, { progress: 0.5, stage: 'call' }, 'job.progress');
    await broadcast(edge, `job:${a}`, { progress: 0.6, stage: 'call', message: 'calling variants' }, 'job.progress');
    await waitForValue(page, a, 60);
    await waitForValue(page, b, 50);
    expect(await page.locator(`[data-job="${a}"]`).getAttribute('data-status')).toBe('running');
    expect(await page.locator(`[data-job="${a}"] .fill`).evaluate((el) => (el as unknown as { style: { width: string } }).style.width)).toBe('60%');
    await broadcast(edge, `job:${b}`, { attempt: 1, delay_ms: 1000, error: 'GPU out of memory' }, 'job.retrying');
    await page.locator(`[data-job="${b}"][data-status="retrying"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator(`[data-job="${b}"] .retry`).textContent()).toBe('retry 1: GPU out of memory');
    await broadcast(edge, `job:${a}`, { result: { variants: 7 } }, 'job.completed');
    await broadcast(edge, `job:${b}`, { progress: 0.9, stage: 'report' }, 'job.progress');
    await broadcast(edge, `job:${b}`, { result: { variants: 3 } }, 'job.completed');

    for (const job of [a, b]) {
      await page.locator(`[data-job="${job}"][data-status="completed"]`).waitFor({ timeout: 10_000 });
      expect(await bar(page, job).getAttribute('aria-valuenow')).toBe('100');
      expect(await page.locator(`[data-job="${job}"] .pct`).textContent()).toBe('100%');
      expect(await page.locator(`[data-job="${job}"] .status`).textContent()).toBe('completed');
      expect(await page.locator(`[data-job="${job}"] .fill`).evaluate((el) => (el as unknown as { style: { width: string } }).style.width)).toBe('100%');
    }
    // What a person sees: each bar's fill spans its whole track.
    for (const job of [a, b]) {
      const track = await bar(page, job).boundingBox();
      const fill = await page.locator(`[data-job="${job}"] .fill`).boundingBox();
      expect(track!.width).toBeGreaterThan(100);
      expect(Math.abs(fill!.width - track!.width)).toBeLessThan(1);
    }
    const shot = join(tmpdir(), `switchyard-browser-${process.pid}.png`);
    await page.screenshot({ path: shot, animations: 'disabled' });
    console.log(`browser test screenshot: ${shot}`);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('useChannel shows a channel’s latest events, in order, live', async () => {
    const channel = `feed:${uniqueSub('b')}`;
    const token = await hsToken({ sub: uniqueSub('browser'), channels: ['feed:*'], expiresIn: 600 });
    const page = await browser.newPage();
    await page.goto(`${base}/?${new URLSearchParams({ ws: edge.url, token, channel })}`);
    await page.locator(`[data-feed="${channel}"][data-status="subscribed"]`).waitFor({ timeout: 10_000 });
    for (let i = 1; i <= 7; i++) await broadcast(edge, channel, { i }, 'tick');
    await page.locator(`[data-feed="${channel}"] li[data-seq="7"]`).waitFor({ timeout: 10_000 });
    // limit: 5 — the newest five, oldest first.
    expect(await page.locator(`[data-feed="${channel}"] li`).allTextContents()).toEqual([3, 4, 5, 6, 7].map((i) => `${i} tick {"i":${i}}`));
    await page.close();
  });

  it('a page opened after a job finished shows it completed (history replay)', async () => {
    const job = uniqueSub('job-late');
    await broadcast(edge, `job:${job}`, {}, 'job.started');
    await broadcast(edge, `job:${job}`, { progress: 0.4 }, 'job.progress');
    await broadcast(edge, `job:${job}`, { result: null }, 'job.completed');
    const token = await hsToken({ sub: uniqueSub('browser'), channels: ['job:*'], expiresIn: 600 });
    const page = await browser.newPage();
    await page.goto(`${base}/?${new URLSearchParams({ ws: edge.url, token, jobs: job })}`);
    await page.locator(`[data-job="${job}"][data-status="completed"]`).waitFor({ timeout: 10_000 });
    expect(await bar(page, job).getAttribute('aria-valuenow')).toBe('100');
    await page.close();
  });
});
