import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { BenchPlan, SystemName } from '@switchyard/bench';
import { UsageError, csv, parse } from '../args.js';

export const summary = 'benchmark Switchyard against raw uWebSockets.js, Socket.IO and Centrifugo (--quick, --json, --no-pin)';

function sizes(value: unknown, flag: string): number[] | undefined {
  const list = csv(value);
  if (list === undefined) return undefined;
  const parsed = list.map((s) => Number(s.replace(/k$/i, '000')));
  if (!parsed.every((n) => Number.isInteger(n) && n >= 0)) throw new UsageError(`${flag} takes a comma list of whole numbers (e.g. 100,1k)`);
  return parsed.filter((n) => n > 0);
}

function whole(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} takes a whole number`);
  return n;
}

/**
 * `switchyard bench [--quick] [--json]`: progress on stderr; the result on stdout (one JSON
 * object with --json, else Markdown tables); a copy in bench-results/ and the fan-out chart.
 */
export async function bench(argv: string[]): Promise<void> {
  // Loaded here, not at start-up: other commands (a node) need none of it.
  const { renderFanoutSvg, renderMarkdown, runBench, SYSTEMS } = await import('@switchyard/bench');
  const { values } = parse(argv, {
    quick: { type: 'boolean' },
    json: { type: 'boolean' },
    runs: { type: 'string' },
    systems: { type: 'string' },
    fanout: { type: 'string' },
    'fanout-3n': { type: 'string' },
    idle: { type: 'string' },
    'idle-3n': { type: 'string' },
    churn: { type: 'string' },
    kill: { type: 'string' },
    'phase-ms': { type: 'string' },
    payload: { type: 'string' },
    out: { type: 'string' },
    chart: { type: 'string' },
    'no-pin': { type: 'boolean' },
    'fixed-rate': { type: 'string' },
    'scale-nodes': { type: 'string' },
    'scale-idle': { type: 'string' },
    'scale-fanout': { type: 'string' },
    profile: { type: 'string' },
  });
  const plan: Partial<BenchPlan> = {};
  const runs = whole(values.runs, '--runs');
  if (runs !== undefined) {
    if (runs < 1) throw new UsageError('--runs must be at least 1');
    plan.runs = runs;
    plan.killRuns = Math.min(runs, 3);
  }
  const systems = csv(values.systems);
  if (systems !== undefined) {
    const unknown = systems.filter((s) => !(SYSTEMS as readonly string[]).includes(s));
    if (unknown.length > 0) throw new UsageError(`unknown system(s) ${unknown.join(', ')}; known: ${SYSTEMS.join(', ')}`);
    plan.systems = systems as SystemName[];
  }
  const fan1 = sizes(values.fanout, '--fanout');
  if (fan1 !== undefined) plan.fanout1 = fan1;
  const fan3 = sizes(values['fanout-3n'], '--fanout-3n');
  if (fan3 !== undefined) plan.fanout3 = fan3;
  const idle1 = sizes(values.idle, '--idle');
  if (idle1 !== undefined) plan.idle1 = idle1;
  const idle3 = sizes(values['idle-3n'], '--idle-3n');
  if (idle3 !== undefined) plan.idle3 = idle3;
  const churn = whole(values.churn, '--churn');
  if (churn !== undefined) plan.churnSubscribers = churn;
  const kill = whole(values.kill, '--kill');
  if (kill !== undefined) plan.killSubscribers = kill;
  const phase = whole(values['phase-ms'], '--phase-ms');
  if (phase !== undefined) {
    plan.saturateMs = Math.max(100, phase);
    plan.latencyMs = Math.max(100, phase);
    plan.killBeforeMs = Math.max(300, Math.min(1500, phase));
    plan.killAfterMs = Math.max(1000, Math.min(3000, 2 * phase));
  }
  if (typeof values.payload === 'string') {
    const m = /^(\d+)-(\d+)$/.exec(values.payload);
    if (m === null || Number(m[1]) > Number(m[2]) || Number(m[1]) < 40 || Number(m[2]) > 400) throw new UsageError('--payload takes MIN-MAX bytes, within 40-400 (default 64-256)');
    plan.payload = [Number(m[1]), Number(m[2])];
  }
  if (values['no-pin'] === true) plan.pin = false;
  const fixed = whole(values['fixed-rate'], '--fixed-rate');
  if (fixed !== undefined) plan.fixedDeliveriesPerS = fixed;
  const scaleNodes = whole(values['scale-nodes'], '--scale-nodes');
  if (scaleNodes !== undefined) {
    if (scaleNodes < 2) throw new UsageError('--scale-nodes must be at least 2 (the scale rows are a cluster on Redis)');
    plan.scaleNodes = scaleNodes;
  }
  const scaleIdle = sizes(values['scale-idle'], '--scale-idle');
  if (scaleIdle !== undefined) plan.scaleIdle = scaleIdle;
  const scaleFanout = sizes(values['scale-fanout'], '--scale-fanout');
  if (scaleFanout !== undefined) plan.scaleFanout = scaleFanout;
  const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
  const profileDir = typeof values.profile === 'string' ? resolve(values.profile) : undefined;
  const result = await runBench({ quick: values.quick === true, plan, log, ...(profileDir !== undefined && { profileDir }) });

  const outDir = resolve(typeof values.out === 'string' ? values.out : 'bench-results');
  mkdirSync(outDir, { recursive: true });
  const markdown = renderMarkdown(result);
  writeFileSync(`${outDir}/latest.json`, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(`${outDir}/latest.md`, markdown);
  const chart = resolve(typeof values.chart === 'string' ? values.chart : `${outDir}/fanout.svg`);
  mkdirSync(dirname(chart), { recursive: true });
  writeFileSync(chart, renderFanoutSvg(result));
  log(`done in ${result.duration_s} s; results in ${outDir}/latest.{json,md}, chart ${chart}`);
  process.stdout.write(values.json === true ? JSON.stringify(result) + '\n' : markdown);
}
