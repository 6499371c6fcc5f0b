#!/usr/bin/env node
// Builds, then packs every publishable package into one folder (default .packs/) as the
// registry would get them: `pnpm pack` applies publishConfig (dist/ exports) and turns
// workspace:* into the version. Prints the tarballs' paths, one a line.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, PUBLISHED } from './build.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function packAll(dest = join(ROOT, '.packs')) {
  await build();
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  for (const p of PUBLISHED) {
    const r = spawnSync('pnpm', ['pack', '--pack-destination', dest], { cwd: join(ROOT, 'packages', p), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`pnpm pack in packages/${p} failed (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return readdirSync(dest).filter((f) => f.endsWith('.tgz')).map((f) => join(dest, f));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const tarballs = await packAll(process.argv[2] === undefined ? undefined : resolve(process.argv[2]));
  process.stdout.write(tarballs.join('\n') + '\n');
}
