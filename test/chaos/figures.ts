import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../harness/edge.js';

/** Where each chaos scenario leaves what it measured (git-ignored), for RELIABILITY.md. */
export const FIGURES_DIR = join(ROOT, '.cache', 'chaos');

export function recordFigures(scenario: string, figures: Record<string, unknown>): void {
  mkdirSync(FIGURES_DIR, { recursive: true });
  writeFileSync(join(FIGURES_DIR, `${scenario}.json`), `${JSON.stringify({ scenario, at: new Date().toISOString(), ...figures }, null, 2)}\n`);
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
