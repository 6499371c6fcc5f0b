#!/usr/bin/env node
// Startup time and idle memory of one edge node, from the TypeScript sources through tsx
// versus the compiled JavaScript of an installed package:
//   node scripts/bench-startup.mjs <dir with node_modules/@switchyard/cli installed> [runs]
// Each run: spawn `switchyard edge` (in-memory broker), time until GET /health answers 200,
// then read VmRSS after IDLE_MS idle. Prints a Markdown table of medians.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const IDLE_MS = 3000;
const installed = process.argv[2];
const runs = Number(process.argv[3] ?? 5);
if (!installed) {
  process.stderr.write('usage: node scripts/bench-startup.mjs <install dir> [runs]\n');
  process.exit(2);
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssMiB = (pid) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function once(args, cwd) {
  const port = await freePort();
  const env = { ...process.env, PORT: String(port), HOST: '127.0.0.1', JWT_SECRET: 'startup-bench-secret-0123456789abcdef', LOG_LEVEL: 'warn', NODE_ENV: 'production' };
  const t0 = performance.now();
  const proc = spawn(process.execPath, args, { cwd, env, stdio: 'ignore' });
  try {
    for (;;) {
      if (performance.now() - t0 > 60_000) throw new Error('no /health within 60 s');
      try {
        if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break;
      } catch {
        /* not yet */
      }
      await sleep(10);
    }
    const startMs = performance.now() - t0;
    await sleep(IDLE_MS);
    return { startMs, rss: rssMiB(proc.pid) };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
}

const variants = [
  ['tsx (sources)', ['--import', 'tsx', join(ROOT, 'packages/cli/src/main.ts'), 'edge'], ROOT],
  ['compiled (installed package)', [join(installed, 'node_modules/@switchyard/cli/bin/switchyard.mjs'), 'edge'], installed],
];
const rows = [];
for (const [name, args, cwd] of variants) {
  await once(args, cwd); // warm the disk cache (and tsx's transform cache)
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(await once(args, cwd));
  rows.push(`| ${name} | ${median(samples.map((s) => s.startMs)).toFixed(0)} | ${median(samples.map((s) => s.rss)).toFixed(1)} |`);
}
process.stdout.write(`| edge node | start to /health 200 (ms, median of ${runs}) | RSS idle ${IDLE_MS / 1000} s later (MiB, median) |\n| --- | --- | --- |\n${rows.join('\n')}\n`);
