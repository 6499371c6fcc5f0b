import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SOAK_DEFAULTS, renderSoak, runSoak } from './driver.js';
import { startSoakSystem } from './system.js';

/**
 * `pnpm soak [--minutes 20] [--out bench-results]`: starts Redis, Kafka, three edges and a
 * runner on this machine, runs the soak workload, prints the report (Markdown) and writes it
 * with every sample as JSON. Exits 1 on a leak or a lost event.
 */
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '20' },
    out: { type: 'string', default: 'bench-results' },
    'sample-s': { type: 'string' },
  },
});
const minutes = Number(values.minutes);
if (!Number.isFinite(minutes) || minutes <= 0) {
  process.stderr.write(`--minutes must be a positive number, got ${values.minutes}\n`);
  process.exit(2);
}
const log = (line: string) => process.stderr.write(`soak: ${line}\n`);
log('starting Redis, Kafka, 3 edges and a runner');
const system = await startSoakSystem();
let code = 0;
try {
  const durationMs = Math.round(minutes * 60_000);
  const sampleEveryMs = values['sample-s'] !== undefined ? Number(values['sample-s']) * 1000 : Math.max(2000, Math.min(15_000, durationMs / 120));
  const report = await runSoak(system.target, { ...SOAK_DEFAULTS, durationMs, sampleEveryMs, log });
  const text = renderSoak(report);
  process.stdout.write(`${text}\n`);
  const dir = resolve(values.out);
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(dir, `soak-${stamp}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(dir, `soak-${stamp}.md`), `${text}\n`);
  log(`report in ${join(dir, `soak-${stamp}.{md,json}`)}`);
  if (report.failures.length > 0) code = 1;
} finally {
  await system.stop();
}
process.exit(code);
