import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../harness/index.js';

const SYSTEMS = ['switchyard', 'uws_raw', 'socketio_redis', 'centrifugo'];
const RATIOS = ['switchyard/centrifugo', 'switchyard/socketio_redis', 'switchyard/uws_raw'];
const FIGURES = [
  'msgs_per_cpu_s',
  'msgs_per_s',
  'publishes_per_s',
  'latency_rate',
  'p50_ms',
  'p99_ms',
  'p999_ms',
  'max_ms',
  'cross_node_p50_ms',
  'cross_node_p99_ms',
  'rss_per_conn_bytes',
  'kmem_per_conn_bytes',
  'heap_per_conn_bytes',
  'fixed_rate',
  'fixed_msgs_per_cpu_s',
  'fixed_p50_ms',
  'fixed_p99_ms',
  'eld_p99_ms',
  'latency_eld_p99_ms',
  'fixed_eld_p99_ms',
  'churn_per_s',
  'resume_ms',
  'lost',
  'duplicates',
];

const numberOrNull = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v));

/**
 * `switchyard bench` end to end in a tiny configuration: every system (Centrifugo built from
 * the Go module proxy where Go is installed), every scenario kind, 1 node and 3 nodes on
 * Redis, pinned where there are two CPUs. Only the shape of the JSON is checked, and that no
 * event was lost; how fast anything was is the benchmark's business, never a test's.
 */
describe('switchyard bench', () => {
  it('prints one JSON object with every system measured, figures as numbers or null, nothing lost', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sy-bench-test-'));
    const args = ['bench', '--json', '--out', out, '--runs', '1', '--fanout', '10', '--fanout-3n', '10', '--idle', '30', '--idle-3n', '0', '--churn', '10', '--kill', '12', '--phase-ms', '300', '--fixed-rate', '2000', '--scale-nodes', '2', '--scale-fanout', '10', '--scale-idle', '20', '--profile', join(out, 'profiles')];
    const { code, stdout, stderr } = await runCli(args, {}, 540_000).finally(() => rmSync(out, { recursive: true, force: true }));
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as {
      runs: number;
      notes: string[];
      not_measured: string[];
      profiles?: { file: string; samples: number; top: { frame: string; self_pct: number }[]; by_file: { frame: string; self_pct: number }[] }[];
      scenarios: {
        name: string;
        kind: string;
        systems: Record<string, Record<string, unknown> | null>;
        ratios: Record<string, unknown>;
        fixed_ratios: Record<string, unknown>;
        fixed_p99_added_ms: Record<string, unknown>;
      }[];
    };
    // Without Go, Centrifugo is left out, and the result says why.
    const withoutGo = result.not_measured.some((n) => n.startsWith('centrifugo: not measured'));
    const measured = withoutGo ? SYSTEMS.filter((s) => s !== 'centrifugo') : SYSTEMS;
    if (!withoutGo) expect(result.notes.some((n) => n.startsWith('centrifugo v6.9.1'))).toBe(true);
    expect(result.runs).toBe(1);
    // --profile: every Switchyard node that was stopped (not killed) wrote a CPU profile, summarised.
    expect(result.profiles?.length).toBeGreaterThanOrEqual(3);
    for (const p of result.profiles!) {
      expect(p.samples, p.file).toBeGreaterThan(0);
      expect(p.top.length).toBeGreaterThan(0);
      expect(p.by_file.reduce((sum, r) => sum + r.self_pct, 0)).toBeLessThanOrEqual(100.5);
    }
    expect(result.profiles!.some((p) => p.by_file.some((r) => r.frame.startsWith('packages/edge/src/')))).toBe(true);
    expect(result.scenarios.map((s) => s.name)).toEqual(['fanout-10', 'churn-10', 'idle-30', 'fanout-10-3n', 'node-kill-12-3n', 'fanout-10-2n', 'idle-20-2n']);
    // The scale rows are Switchyard's alone, on --scale-nodes nodes + Redis; nothing lost there either.
    for (const name of ['fanout-10-2n', 'idle-20-2n']) {
      const row = result.scenarios.find((s) => s.name === name)!;
      expect(Object.entries(row.systems).filter(([, f]) => f !== null).map(([s]) => s)).toEqual(['switchyard']);
      expect(row.systems['switchyard']!['lost'], name).toBe(0);
    }
    expect(typeof result.scenarios.find((s) => s.name === 'fanout-10-2n')!.systems['switchyard']!['msgs_per_cpu_s']).toBe('number');
    expect(typeof result.scenarios.find((s) => s.name === 'idle-20-2n')!.systems['switchyard']!['rss_per_conn_bytes']).toBe('number');
    for (const scenario of result.scenarios.filter((s) => !/-2n$/.test(s.name))) {
      expect(Object.keys(scenario.systems).sort()).toEqual([...SYSTEMS].sort());
      for (const ratios of [scenario.ratios, scenario.fixed_ratios, scenario.fixed_p99_added_ms]) {
        expect(Object.keys(ratios).sort()).toEqual(RATIOS);
        for (const value of Object.values(ratios)) expect(numberOrNull(value)).toBe(true);
      }
      if (withoutGo) expect(scenario.systems['centrifugo']).toBeNull();
      for (const system of measured) {
        const figures = scenario.systems[system];
        expect(figures, `${scenario.name} ${system}`).not.toBeNull();
        for (const key of FIGURES) {
          expect(key in figures!, `${scenario.name} ${system} has ${key}`).toBe(true);
          expect(numberOrNull(figures![key]), `${scenario.name} ${system} ${key} = ${String(figures![key])}`).toBe(true);
        }
        // The peers have no resume: a killed node loses their events, and the bench says so.
        if (system === 'switchyard' || scenario.kind !== 'node-kill') expect(figures!['lost'], `${scenario.name} ${system} lost`).toBe(0);
      }
    }
    const fanout = result.scenarios.find((s) => s.name === 'fanout-10')!;
    for (const system of measured) {
      expect(typeof fanout.systems[system]!['msgs_per_cpu_s']).toBe('number');
      // The fixed-rate phase offers every system the same rate.
      expect(fanout.systems[system]!['fixed_rate']).toBe(200);
      // A tiny phase may cost a server less than one /proc clock tick (10 ms): then no per-CPU figure.
      expect(numberOrNull(fanout.systems[system]!['fixed_msgs_per_cpu_s'])).toBe(true);
      expect(typeof fanout.systems[system]!['fixed_p99_ms']).toBe('number');
    }
    // Event-loop delay comes from the Node servers' /metrics; Centrifugo is Go and has none.
    for (const system of ['switchyard', 'uws_raw', 'socketio_redis']) expect(typeof fanout.systems[system]!['fixed_eld_p99_ms']).toBe('number');
    if (!withoutGo) expect(fanout.systems['centrifugo']!['fixed_eld_p99_ms']).toBeNull();
    const idle = result.scenarios.find((s) => s.kind === 'idle')!;
    expect(typeof idle.systems['switchyard']!['rss_per_conn_bytes']).toBe('number');
    expect(typeof idle.systems['switchyard']!['heap_per_conn_bytes']).toBe('number');
    if (!withoutGo) expect(typeof idle.systems['centrifugo']!['rss_per_conn_bytes']).toBe('number');
    expect(typeof result.scenarios.find((s) => s.kind === 'node-kill')!.systems['switchyard']!['resume_ms']).toBe('number');
  }, 600_000);
});
