#!/usr/bin/env node
// The whole test suite: type-check, then every vitest project (unit, integration).
// Integration suites install the system packages they need (apt, as root) in their global setup.
import { spawnSync } from 'node:child_process';

function step(title, cmd, args) {
  process.stdout.write(`\n== ${title}: ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: process.env });
  if (r.status !== 0) {
    process.stdout.write(`\n== ${title} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(r.status ?? 1);
  }
}

const extra = process.argv.slice(2);
step('typecheck', 'pnpm', ['exec', 'tsc', '-p', 'tsconfig.json', '--noEmit']);
step('tests', 'pnpm', ['exec', 'vitest', 'run', ...extra]);
