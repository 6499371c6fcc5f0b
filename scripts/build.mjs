#!/usr/bin/env node
// Builds every publishable package to dist/: ESM JavaScript with .d.ts (tsc, project
// references), the client's CommonJS entries (esbuild), the demo pipeline `switchyard dev`
// runs, and LICENSE beside each package.json. Plain JavaScript so a Docker build stage
// needs nothing but the dev dependencies.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Every package that is published; bench ships because `switchyard bench` needs it. */
export const PUBLISHED = ['protocol', 'config', 'broker', 'sessions', 'jobs', 'edge', 'runner', 'client', 'bench', 'cli'];

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`build: ${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(r.status ?? 1);
  }
}

export async function build({ clean = false } = {}) {
  if (clean) for (const p of PUBLISHED) rmSync(join(ROOT, 'packages', p, 'dist'), { recursive: true, force: true });
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  run(process.execPath, [tsc, '-b', ...PUBLISHED.map((p) => `packages/${p}/tsconfig.build.json`)]);

  // CommonJS for `require('@switchyard/client')`: one bundle per entry, the optional peers
  // left out. The React entry requires the main one instead of bundling a copy of it, so
  // both share one client class, one set of channel leases and job trackers.
  const esbuild = await import('esbuild');
  const client = join(ROOT, 'packages', 'client');
  const shareIndex = {
    name: 'share-index',
    setup(b) {
      b.onResolve({ filter: /^\.\/index\.js$/ }, () => ({ path: './index.cjs', external: true }));
    },
  };
  for (const entry of ['index', 'react', 'internal']) {
    await esbuild.build({
      plugins: entry === 'react' ? [shareIndex] : [],
      entryPoints: [join(client, 'src', `${entry}.ts`)],
      outfile: join(client, 'dist', `${entry}.cjs`),
      bundle: true,
      format: 'cjs',
      platform: 'neutral',
      target: 'es2022',
      external: ['react', 'ws'],
      logLevel: 'warning',
    });
  }

  // Declarations for the CommonJS entries: a TypeScript file compiled to CommonJS takes a
  // .d.ts of this "type": "module" package as ESM and refuses to require it; .d.cts twins
  // (relative imports pointing at .cjs) describe the CommonJS build.
  const dist = join(client, 'dist');
  for (const f of readdirSync(dist).filter((n) => n.endsWith('.d.ts'))) {
    const text = readFileSync(join(dist, f), 'utf8').replace(/(['"])(\.\/[^'"]+)\.js\1/g, '$1$2.cjs$1');
    writeFileSync(join(dist, f.replace(/\.d\.ts$/, '.d.cts')), text);
  }

  copyFileSync(join(ROOT, 'examples', 'pipeline', 'demo-pipeline.mjs'), join(ROOT, 'packages', 'cli', 'dist', 'demo-pipeline.mjs'));
  // Lua scripts are read at run time next to the module that loads them (src/lua/*.lua beside
  // src/*.ts, so dist/lua/*.lua beside dist/*.js): tsc does not copy them.
  for (const p of PUBLISHED) {
    const lua = join(ROOT, 'packages', p, 'src', 'lua');
    if (!existsSync(lua)) continue;
    const out = join(ROOT, 'packages', p, 'dist', 'lua');
    mkdirSync(out, { recursive: true });
    for (const f of readdirSync(lua).filter((n) => n.endsWith('.lua'))) copyFileSync(join(lua, f), join(out, f));
  }
  for (const p of PUBLISHED) copyFileSync(join(ROOT, 'LICENSE'), join(ROOT, 'packages', p, 'LICENSE'));
  return readdirSync(join(ROOT, 'packages', 'cli', 'dist')).length;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await build({ clean: process.argv.includes('--clean') });
