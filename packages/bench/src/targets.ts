import type { BenchResult, ScenarioResult, Target } from './result.js';

/** The benchmark issues' targets (round 1, then issue 14's round 2), judged against a result. */
export function evaluateTargets(r: BenchResult): Target[] {
  const targets: Target[] = [];
  const fan = (nodes: number) => r.scenarios.filter((s) => s.kind === 'fanout' && s.nodes === nodes && (s.subscribers ?? 0) >= 100);
  const check = (label: string, list: ScenarioResult[], pick: (s: ScenarioResult) => number | null, ok: (v: number) => boolean) => {
    const values = list.map((s) => [s.name, pick(s)] as const).filter((x): x is readonly [string, number] => x[1] !== null);
    if (values.length === 0) {
      targets.push({ target: label, value: 'not measured', met: null });
      return;
    }
    targets.push({ target: label, value: values.map(([n, v]) => `${n}: ${v}`).join(', '), met: values.every(([, v]) => ok(v)) });
  };
  check('fan-out throughput ≥ 0.7 × uws_raw on 1 node (≥100 subscribers)', fan(1), (s) => s.ratios['switchyard/uws_raw'], (v) => v >= 0.7);
  check('fan-out throughput ≥ 0.5 × uws_raw on 3 nodes with Redis', fan(3), (s) => s.ratios['switchyard/uws_raw'], (v) => v >= 0.5);
  check('fan-out throughput ≥ 5 × socketio_redis (1 and 3 nodes)', [...fan(1), ...fan(3)], (s) => s.ratios['switchyard/socketio_redis'], (v) => v >= 5);
  check('added p99 at 50% load ≤ 2 ms over uws_raw, 1 node', fan(1), (s) => s.p99_added_ms['switchyard/uws_raw'], (v) => v <= 2);
  check('added p99 at 50% load ≤ 5 ms over uws_raw, 3 nodes', fan(3), (s) => s.p99_added_ms['switchyard/uws_raw'], (v) => v <= 5);
  const idles = r.scenarios.filter((s) => s.kind === 'idle');
  check('RSS per idle authenticated connection ≤ 1.5 × uws_raw', idles, (s) => s.ratios['switchyard/uws_raw'], (v) => v <= 1.5);
  check('RSS per idle authenticated connection ≤ 0.25 × Socket.IO', idles, (s) => s.ratios['switchyard/socketio_redis'], (v) => v <= 0.25);
  // Round 2 (issue 14): pinned, at the fixed rate.
  check('fixed rate: deliveries per CPU-s ≥ 2 × centrifugo (100 and 1k subscribers)', [...fan(1), ...fan(3)], (s) => s.fixed_ratios['switchyard/centrifugo'], (v) => v >= 2);
  check('fixed rate: deliveries per CPU-s ≥ 0.9 × uws_raw, 1 node', fan(1), (s) => s.fixed_ratios['switchyard/uws_raw'], (v) => v >= 0.9);
  check('fixed rate: deliveries per CPU-s ≥ 0.8 × uws_raw, 3 nodes', fan(3), (s) => s.fixed_ratios['switchyard/uws_raw'], (v) => v >= 0.8);
  check('added p99 at 50% load ≤ 1 ms over uws_raw, 1 node', fan(1), (s) => s.p99_added_ms['switchyard/uws_raw'], (v) => v <= 1);
  check('added p99 at 50% load ≤ 3 ms over uws_raw, 3 nodes', fan(3), (s) => s.p99_added_ms['switchyard/uws_raw'], (v) => v <= 3);
  check('RSS per idle authenticated connection ≤ 0.05 × centrifugo', idles, (s) => s.ratios['switchyard/centrifugo'], (v) => v <= 0.05);
  // The scale rows: measured (Switchyard alone, past 3 nodes), nothing lost; no bound is set on them.
  const scaleRows = r.scenarios.filter((s) => s.nodes > 3);
  check('scale rows (idle connections and fan-out past 3 nodes, switchyard alone) measured, nothing lost', scaleRows, (s) => s.systems['switchyard']?.lost ?? null, (v) => v === 0);
  check('zero lost events in every scenario, node kill included (switchyard)', r.scenarios, (s) => s.systems['switchyard']?.lost ?? null, (v) => v === 0);
  return targets;
}
