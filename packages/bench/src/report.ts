import { RATIOS, type BenchResult, type ScenarioResult } from './result.js';

function f(v: number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return String(v);
}

function range(r: [number, number] | null): string {
  return r === null ? '' : ` (${r[0]}–${r[1]})`;
}

const HEAD: Record<ScenarioResult['kind'], string[]> = {
  fanout: ['msgs/CPU-s', 'deliveries/s', 'pub/s at 50%', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'fixed pub/s', 'fixed msgs/CPU-s', 'fixed p50 ms', 'fixed p99 ms', 'loop p99 ms (sat/50%/fixed)', 'lost'],
  churn: ['churn/s', 'pub/s', 'p50 ms', 'p99 ms', 'max ms', 'lost'],
  idle: ['RSS/conn B', 'heap/conn B', 'kernel/conn B', 'failed conns', 'lost'],
  'node-kill': ['resumed after ms', 'pub/s', 'p99 ms', 'max ms', 'lost', 'duplicates'],
};

function cells(s: ScenarioResult, sys: string): string[] {
  const x = s.systems[sys];
  if (x === null || x === undefined) return HEAD[s.kind].map(() => '—');
  switch (s.kind) {
    case 'fanout':
      return [
        f(x.msgs_per_cpu_s), f(x.msgs_per_s), f(x.latency_rate), f(x.p50_ms), f(x.p99_ms), f(x.p999_ms), f(x.max_ms),
        f(x.fixed_rate), f(x.fixed_msgs_per_cpu_s), f(x.fixed_p50_ms), f(x.fixed_p99_ms),
        `${f(x.eld_p99_ms)} / ${f(x.latency_eld_p99_ms)} / ${f(x.fixed_eld_p99_ms)}`, f(x.lost),
      ];
    case 'churn':
      return [f(x.churn_per_s), f(x.latency_rate), f(x.p50_ms), f(x.p99_ms), f(x.max_ms), f(x.lost)];
    case 'idle':
      return [f(x.rss_per_conn_bytes), f(x.heap_per_conn_bytes), f(x.kmem_per_conn_bytes), f(x.failed_connections), f(x.lost)];
    case 'node-kill':
      return [f(x.resume_ms), f(x.latency_rate), f(x.p99_ms), f(x.max_ms), f(x.lost), f(x.duplicates)];
  }
}

/** The results as Markdown tables (what BENCHMARKS.md quotes). */
export function renderMarkdown(r: BenchResult): string {
  const out: string[] = [];
  out.push(`Run: ${r.preset}${r.quick ? ' (`--quick`)' : ''}, ${r.runs} runs per system per scenario, started ${r.started_at}, took ${r.duration_s} s.`);
  out.push(`Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memory_gib} GiB, Linux ${r.machine.kernel}, Node ${r.machine.node}; load average ${r.machine.load_avg_start} at start, ${r.machine.load_avg_end} at end.`);
  out.push(`Source: ${r.source.commit ?? 'unknown commit'}${r.source.dirty ? ' with uncommitted changes in the working tree' : ''}.`);
  out.push('');
  out.push('Calibration:');
  out.push(`- redis-benchmark PUBLISH (20 clients): ${f(r.calibration.redis_benchmark_publish_per_s)} /s; pipelined ×16: ${f(r.calibration.redis_benchmark_publish_pipelined_per_s)} /s`);
  for (const [name, c] of Object.entries(r.calibration.uws_raw_msgs_per_cpu_s)) out.push(`- uws_raw ${name}: ${f(c.median)} msgs/CPU-s (runs ${f(c.min)}–${f(c.max)})`);
  out.push('');
  for (const s of r.scenarios) {
    out.push(`### ${s.name} (${s.nodes === 1 ? '1 node' : '3 nodes + Redis'}, ${s.kind === 'idle' ? `${s.connections} connections` : `${s.subscribers} subscribers`}, ${s.runs} runs, load average ${s.load_avg[0]}–${s.load_avg[1]})`);
    out.push('');
    out.push(`| system | ${HEAD[s.kind].join(' | ')} |`);
    out.push(`| --- | ${HEAD[s.kind].map(() => '---:').join(' | ')} |`);
    for (const sys of Object.keys(s.systems)) {
      if (s.systems[sys] === null) continue;
      out.push(`| ${sys} | ${cells(s, sys).join(' | ')} |`);
    }
    out.push('');
    const names = RATIOS.map(([k]) => k);
    const ratios = names.filter((k) => s.ratios[k] !== null).map((k) => `${k} ${s.ratios[k]}${range(s.ratio_ranges[k])}`);
    if (ratios.length > 0) out.push(`Paired ratios of ${s.metric} (median, min–max): ${ratios.join('; ')}.`);
    const added = names.filter((k) => s.p99_added_ms[k] !== null).map((k) => `${k.replace('/', ' − ')} ${s.p99_added_ms[k]} ms`);
    if (added.length > 0 && s.kind !== 'idle') out.push(`p99 differences at 50 % of each one's saturation (median of pairs): ${added.join('; ')}.`);
    const fixed = names.filter((k) => s.fixed_ratios[k] !== null).map((k) => `${k} ${s.fixed_ratios[k]}`);
    if (fixed.length > 0) out.push(`At the fixed rate, paired ratios of deliveries per server CPU-second: ${fixed.join('; ')}.`);
    const fixedAdded = names.filter((k) => s.fixed_p99_added_ms[k] !== null).map((k) => `${k.replace('/', ' − ')} ${s.fixed_p99_added_ms[k]} ms`);
    if (fixedAdded.length > 0) out.push(`p99 differences at the fixed rate: ${fixedAdded.join('; ')}.`);
    out.push('');
  }
  if (r.cluster.redis_calls_per_publish !== null) {
    out.push(`Redis commands per publish (switchyard, 3 nodes, ${r.cluster.cross_node_subscribers} subscribers, i.e. ${r.cluster.deliveries_per_publish} deliveries per publish): ` +
      Object.entries(r.cluster.redis_calls_per_publish).map(([k, v]) => `${k} ${v}`).join(', ') + '.');
    out.push(`Cross-node publish-to-receive (subscribers on the nodes the publisher is not on): p50 ${f(r.cluster.cross_node_p50_ms)} ms, p99 ${f(r.cluster.cross_node_p99_ms)} ms.`);
    out.push('');
  }
  out.push('Targets:');
  out.push('');
  out.push('| target | measured | met |');
  out.push('| --- | --- | --- |');
  for (const t of r.targets) out.push(`| ${t.target} | ${t.value} | ${t.met === null ? 'not measured' : t.met ? 'met' : 'missed'} |`);
  out.push('');
  if (r.notes.length > 0) out.push(...r.notes.map((n) => `- ${n}`), '');
  out.push('Not measured:', '', ...r.not_measured.map((n) => `- ${n}`), '');
  for (const p of r.profiles ?? []) {
    out.push(`CPU profile \`${p.file}\` (${p.samples} samples over ${p.duration_s} s, idle left out), self time:`, '');
    out.push('| by file | % | | hottest frames | % |', '| --- | ---: | --- | --- | ---: |');
    for (let i = 0; i < Math.max(p.by_file.length, p.top.length); i++) {
      const f = p.by_file[i];
      const t = p.top[i];
      out.push(`| ${f?.frame ?? ''} | ${f?.self_pct ?? ''} | | ${t?.frame ?? ''} | ${t?.self_pct ?? ''} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
