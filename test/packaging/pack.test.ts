/**
 * The packages as people get them: every publishable package built and packed (`pnpm pack`,
 * as the registry would get it), installed with npm from the tarballs into a directory
 * outside the workspace, and used there — `npx switchyard dev` serving, a plain Node ESM
 * script and a CommonJS one receiving an event through the SDK (the ESM one also submits a
 * job and follows it to completion), and the official Vite React TypeScript template,
 * untouched but for its App.tsx, type-checking and bundling an app that uses the SDK.
 *
 * npm downloads are cached in .cache/npm (git-ignored); every step is bounded in time.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../harness/edge.js';
import { freePort, waitFor } from '../harness/ports.js';

const CACHE = join(ROOT, '.cache', 'npm');
const PUBLISHED = ['bench', 'broker', 'cli', 'client', 'config', 'edge', 'jobs', 'protocol', 'runner', 'sessions'];
const BROADCAST_KEY = 'bk-pack-test';

/** Runs a command to completion within `timeoutMs`; fails the test with its output otherwise. */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, npm_config_cache: CACHE, npm_config_yes: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', ...env },
  });
  const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.slice(-6000);
  expect(r.error, `${cmd} ${args.join(' ')} (in ${cwd}):\n${out}`).toBeUndefined();
  expect(r.status, `${cmd} ${args.join(' ')} (in ${cwd}):\n${out}`).toBe(0);
  return r;
}

/** A child process whose output is collected; `stop` ends its whole process group. */
function start(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const proc: ChildProcess = spawn(cmd, args, { cwd, env: { ...process.env, npm_config_cache: CACHE, npm_config_yes: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    get out() {
      return out;
    },
    exited,
    get running() {
      return proc.exitCode === null && proc.signalCode === null;
    },
    /** SIGTERM to the group (npx and the node it started), SIGKILL past 45 s; resolves once the whole group is gone. */
    async stop() {
      const group = -proc.pid!;
      const alive = () => {
        try {
          process.kill(group, 0);
          return true;
        } catch {
          return false;
        }
      };
      if (!alive()) return;
      process.kill(group, 'SIGTERM');
      const deadline = Date.now() + 45_000;
      while (alive()) {
        if (Date.now() > deadline) process.kill(group, 'SIGKILL');
        // sleep-ok: the poll interval of a bounded wait for the process group to exit
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
type Started = ReturnType<typeof start>;

const ESM_SCRIPT = `import { SwitchyardClient, followJob } from '@switchyard/client';
const client = new SwitchyardClient({ url: process.env.SY_URL, token: process.env.SY_TOKEN });
const got = new Promise((resolve) => client.onChannel('demo', resolve));
await client.subscribe('demo');
console.log('ready');
const event = await got;
console.log(JSON.stringify({ event: event.event, data: event.data, id: event.id }));
const { jobId } = await client.submitJob({ sample_id: 'S1', params: { stages: 2, stage_ms: 50 } });
const job = await followJob(client, jobId).done;
console.log(JSON.stringify({ job: job.status, progress: job.progress }));
await client.close();
`;

const CJS_SCRIPT = `const { SwitchyardClient } = require('@switchyard/client');
const client = new SwitchyardClient({ url: process.env.SY_URL, token: process.env.SY_TOKEN });
client.onChannel('demo', (event) => {
  console.log(JSON.stringify({ event: event.event, data: event.data, id: event.id }));
  client.close();
});
client.subscribe('demo').then(() => console.log('ready'), (err) => { console.error(err); process.exit(1); });
`;

/** Compiled as ESM (.mts) and as CommonJS (.cts): both must find the package's types. */
const TYPED_CONSUMER = `import { SwitchyardClient, HttpError, type ChannelEvent, type JobState } from '@switchyard/client';
import { useJob } from '@switchyard/client/react';
const client = new SwitchyardClient({ url: 'ws://127.0.0.1:8765/ws', token: 'x', autoConnect: false });
client.onChannel('demo', (e: ChannelEvent) => e.id.length);
export const submitted: Promise<{ jobId: string }> = client.submitJob({ sample_id: 'S1' });
export const refused = (e: unknown) => e instanceof HttpError && e.status === 403;
export const hook: (id: string) => JobState = useJob;
`;

/** The template's App.tsx replaced by one that uses the provider, the hooks and submitJob. */
const APP_TSX = `import { useState } from 'react'
import { SwitchyardProvider, useChannel, useConnectionState, useJob, useSwitchyard } from '@switchyard/client/react'
import type { JobState } from '@switchyard/client'

function Live() {
  const connection = useConnectionState()
  const { events, status, error } = useChannel('demo')
  const client = useSwitchyard()
  const [jobId, setJobId] = useState<string | null>(null)
  const job: JobState = useJob(jobId)
  const submit = async () => setJobId((await client.submitJob({ sample_id: 'S1' })).jobId)
  return (
    <section>
      <p>{connection.status}{connection.status === 'reconnecting' && \` (closed by \${connection.closedBy})\`}</p>
      <p>{status}{error && \` — \${error.message}\`}</p>
      <ul>{events.map((e) => <li key={e.id}>{e.event}</li>)}</ul>
      <button onClick={submit}>submit</button>
      {jobId && <p>{job.status} {Math.round(job.progress * 100)} %{job.error && \` — \${job.error.message}\`}</p>}
    </section>
  )
}

export default function App() {
  return (
    <SwitchyardProvider url="ws://127.0.0.1:8765/ws" token={() => fetch('/token').then((r) => r.text())}>
      <Live />
    </SwitchyardProvider>
  )
}
`;

describe('the packages, packed and installed outside the workspace', () => {
  const work = mkdtempSync(join(tmpdir(), 'sy-pack-'));
  const packs = join(work, 'packs');
  const server = join(work, 'server');
  let tarballs: string[] = [];
  const started: Started[] = [];

  beforeAll(() => {
    mkdirSync(CACHE, { recursive: true });
    run(process.execPath, [join(ROOT, 'scripts', 'pack.mjs'), packs], ROOT, 300_000);
    tarballs = readdirSync(packs)
      .filter((f) => f.endsWith('.tgz'))
      .map((f) => join(packs, f));
  }, 330_000);

  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
    rmSync(work, { recursive: true, force: true });
  });

  it('packs every publishable package with ESM JavaScript, .d.ts, exports by condition, and nothing but dist, README and LICENSE', () => {
    expect(tarballs.map((t) => t.replace(/^.*switchyard-(.+)-\d+\.\d+\.\d+\.tgz$/, '$1')).sort()).toEqual(PUBLISHED);
    for (const tarball of tarballs) {
      const files = run('tar', ['tzf', tarball], work, 30_000).stdout.trim().split('\n');
      const manifest = JSON.parse(run('tar', ['xzOf', tarball, 'package/package.json'], work, 30_000).stdout) as Record<string, any>;
      const name = manifest['name'] as string;
      for (const f of files) expect(f, `${name}: ${f}`).toMatch(/^package\/(dist\/.+\.(js|cjs|mjs|d\.ts|d\.cts)|dist\/lua\/[a-z0-9-]+\.lua|bin\/switchyard\.mjs|native\/loadgen\.c|console\/(index\.html|app\.js|app\.css)|package\.json|README\.md|LICENSE)$/);
      expect(files.some((f) => f.includes('/src/') || f.includes('/test/'))).toBe(false);
      expect(files, name).toContain('package/LICENSE');
      expect(files, name).toContain('package/README.md');
      expect(JSON.stringify(manifest)).not.toMatch(/workspace:|\.\/src\//);
      if (name === '@switchyard/cli') {
        expect(manifest['bin']).toEqual({ switchyard: './bin/switchyard.mjs' });
        expect(manifest['dependencies']['uWebSockets.js'] ?? manifest['dependencies']['@switchyard/edge']).toBeDefined();
        continue;
      }
      const root = manifest['exports']['.'];
      if (name === '@switchyard/client') expect(root).toEqual({ import: { types: './dist/index.d.ts', default: './dist/index.js' }, require: { types: './dist/index.d.cts', default: './dist/index.cjs' } });
      else expect(root, name).toEqual({ types: './dist/index.d.ts', import: './dist/index.js' });
      expect(files).toContain('package/dist/index.d.ts');
      expect(files).toContain('package/dist/index.js');
    }
    const client = JSON.parse(run('tar', ['xzOf', tarballs.find((t) => t.includes('switchyard-client-'))!, 'package/package.json'], work, 30_000).stdout) as Record<string, any>;
    expect(client['exports']['./react']).toEqual({ import: { types: './dist/react.d.ts', default: './dist/react.js' }, require: { types: './dist/react.d.cts', default: './dist/react.cjs' } });
    expect(client['dependencies'] ?? {}).not.toHaveProperty('ws');
    // Its .d.ts import the frame types from the wire vocabulary, so that is a real dependency.
    expect(client['dependencies']).toEqual({ '@switchyard/protocol': client['version'] });
    expect(client['peerDependenciesMeta']).toMatchObject({ ws: { optional: true }, react: { optional: true } });
    const edge = JSON.parse(run('tar', ['xzOf', tarballs.find((t) => t.includes('switchyard-edge-'))!, 'package/package.json'], work, 30_000).stdout) as Record<string, any>;
    expect(edge['dependencies']['uWebSockets.js']).toMatch(/^npm:@trufflesuite\/uws-js-unofficial@/);
    // The console's page and assets are served from the installed package (`switchyard dev` turns it on).
    const edgeFiles = run('tar', ['tzf', tarballs.find((t) => t.includes('switchyard-edge-'))!], work, 30_000).stdout;
    for (const f of ['index.html', 'app.js', 'app.css']) expect(edgeFiles).toContain(`package/console/${f}`);
  });

  it('installs with npm; `npx switchyard dev` serves; an ESM and a CommonJS script get an event, and a job submitted with the SDK completes', async () => {
    mkdirSync(server, { recursive: true });
    writeFileSync(join(server, 'package.json'), JSON.stringify({ name: 'sy-install-check', private: true, type: 'module' }));
    // ws: the client's optional peer on Node 20; react and its types for the typed consumers below.
    run('npm', ['install', '--prefer-offline', ...tarballs, 'ws@^8', 'react@^19', '@types/react@^19'], server, 300_000);
    expect(existsSync(join(server, 'node_modules', '.bin', 'switchyard'))).toBe(true);
    // Compiled JavaScript only: no tsx, no TypeScript sources in what was installed.
    expect(existsSync(join(server, 'node_modules', 'tsx'))).toBe(false);
    expect(existsSync(join(server, 'node_modules', '@switchyard', 'edge', 'src'))).toBe(false);
    // Every subcommand loads from the compiled package (the bin npm linked, as npx runs it).
    for (const cmd of ['edge', 'runner', 'dev', 'token', 'submit', 'watch', 'bench']) {
      const help = run(join(server, 'node_modules', '.bin', 'switchyard'), [cmd, '--help'], server, 60_000);
      expect(help.stdout + help.stderr).toContain(`switchyard ${cmd}:`);
    }

    const port = await freePort();
    const node = start('npx', ['--no-install', 'switchyard', 'dev'], server, { PORT: String(port), HOST: '127.0.0.1', BROADCAST_API_KEY: BROADCAST_KEY, LOG_LEVEL: 'info' });
    started.push(node);
    await waitFor(() => {
      if (!node.running) throw new Error(`switchyard dev exited:\n${node.out}`);
      return node.out.includes('"msg":"edge listening"') || undefined;
    }, 60_000, `switchyard dev listening:\n${node.out}`);
    const http = `http://127.0.0.1:${port}`;
    const minted = await fetch(`${http}/auth/token`, { method: 'POST', body: JSON.stringify({ user_id: 'pack-user', channels: ['demo'] }) });
    expect(minted.status).toBe(200);
    const { token } = (await minted.json()) as { token: string };

    writeFileSync(join(server, 'check.mjs'), ESM_SCRIPT);
    writeFileSync(join(server, 'check.cjs'), CJS_SCRIPT);
    const env = { SY_URL: `ws://127.0.0.1:${port}/ws`, SY_TOKEN: token };
    const esm = start(process.execPath, ['check.mjs'], server, env);
    const cjs = start(process.execPath, ['check.cjs'], server, env);
    started.push(esm, cjs);
    for (const [name, p] of [['esm', esm], ['cjs', cjs]] as const) {
      await waitFor(() => {
        if (!p.running && !p.out.includes('ready')) throw new Error(`${name} script exited:\n${p.out}`);
        return p.out.includes('ready') || undefined;
      }, 30_000, `the ${name} script subscribed:\n${p.out}`);
    }
    const sent = await fetch(`${http}/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${BROADCAST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'demo', event: 'hello', data: { n: 1 } }),
    });
    expect(sent.status).toBe(202);
    expect(await Promise.race([cjs.exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]), cjs.out).toBe(0);
    expect(await Promise.race([esm.exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000))]), esm.out).toBe(0);
    const lines = (p: Started) => p.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const received = { event: 'hello', data: { n: 1 }, id: expect.stringMatching(/^.+:1$/) };
    expect(lines(cjs)).toEqual([received]);
    expect(lines(esm)).toEqual([received, { job: 'completed', progress: 1 }]);
    // TypeScript consumers of either kind type-check against the shipped declarations (with
    // skipLibCheck, as Vite's template and most projects set it: the declarations use
    // Symbol.asyncDispose, which older `lib` settings lack).
    writeFileSync(join(server, 'typed.mts'), TYPED_CONSUMER);
    writeFileSync(join(server, 'typed.cts'), TYPED_CONSUMER);
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    run(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022', 'typed.mts', 'typed.cts'], server, 120_000);
    // No JWT_SECRET was given: the banner says tokens die with this run, and what to do.
    expect(node.out).toContain('JWT_SECRET was generated for this run');
    // Stopped (SIGTERM to npx and the node it runs), nothing serves there any more.
    // The console page comes from the installed package too.
    const page = await fetch(`${http}/console`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    await node.stop();
    await expect(fetch(`${http}/health`)).rejects.toThrow();
  }, 480_000);

  it('builds the official Vite React TypeScript template with the SDK in it (strict settings as shipped)', () => {
    const vite = join(work, 'vite');
    mkdirSync(vite, { recursive: true });
    run('npm', ['create', '--prefer-offline', 'vite@latest', 'app', '--', '--template', 'react-ts'], vite, 120_000);
    const app = join(vite, 'app');
    const tsconfig = readFileSync(join(app, 'tsconfig.app.json'), 'utf8');
    expect(tsconfig).toMatch(/"strict": true|"noUnusedLocals": true/);
    // The client and the wire vocabulary it depends on, as the registry would resolve them.
    const sdk = ['switchyard-client-', 'switchyard-protocol-'].map((name) => tarballs.find((t) => t.includes(name))!);
    run('npm', ['install', '--prefer-offline', ...sdk], app, 300_000);
    writeFileSync(join(app, 'src', 'App.tsx'), APP_TSX);
    run('npm', ['run', 'build'], app, 300_000);
    const assets = readdirSync(join(app, 'dist', 'assets')).filter((f) => f.endsWith('.js'));
    const bundle = assets.map((f) => readFileSync(join(app, 'dist', 'assets', f), 'utf8')).join('\n');
    // The SDK is in the bundle, and nothing for Node came with it.
    expect(bundle).toContain('submit job: POST');
    expect(bundle).not.toMatch(/require\(["']ws["']\)|from ["']node:/);
  }, 600_000);
});
