import type { BenchResult } from './result.js';

const COLORS: Record<string, string> = { switchyard: '#1f77b4', uws_raw: '#2ca02c', socketio_redis: '#d62728' };

interface Series {
  label: string;
  color: string;
  dashed: boolean;
  points: [number, number][];
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) ticks.push(10 ** e);
  return ticks;
}

function fmtTick(v: number): string {
  if (v >= 1e6) return `${v / 1e6}M`;
  if (v >= 1e3) return `${v / 1e3}k`;
  return String(v);
}

/** One log-log panel: x = subscribers per channel, y = the figure. */
function panel(x0: number, y0: number, w: number, h: number, title: string, yLabel: string, series: Series[]): string {
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => x > 0 && y > 0);
  if (pts.length === 0) return `<text x="${x0 + w / 2}" y="${y0 + h / 2}" text-anchor="middle">${esc(title)}: no data</text>`;
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const xlo = 10 ** Math.floor(Math.log10(Math.min(...xs)));
  const xhi = 10 ** Math.ceil(Math.log10(Math.max(...xs)) + (Math.max(...xs) === Math.min(...xs) ? 1 : 0));
  const ylo = 10 ** Math.floor(Math.log10(Math.min(...ys)));
  const yhi = 10 ** Math.ceil(Math.log10(Math.max(...ys)) + 0.0001);
  const px = (x: number) => x0 + ((Math.log10(x) - Math.log10(xlo)) / (Math.log10(xhi) - Math.log10(xlo))) * w;
  const py = (y: number) => y0 + h - ((Math.log10(y) - Math.log10(ylo)) / (Math.log10(yhi) - Math.log10(ylo))) * h;
  const out: string[] = [];
  out.push(`<text x="${x0 + w / 2}" y="${y0 - 12}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  out.push(`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#888"/>`);
  for (const t of niceTicks(xlo, xhi)) {
    if (t < xlo || t > xhi) continue;
    out.push(`<line x1="${px(t)}" y1="${y0}" x2="${px(t)}" y2="${y0 + h}" stroke="#eee"/>`);
    out.push(`<text x="${px(t)}" y="${y0 + h + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  for (const t of niceTicks(ylo, yhi)) {
    if (t < ylo || t > yhi) continue;
    out.push(`<line x1="${x0}" y1="${py(t)}" x2="${x0 + w}" y2="${py(t)}" stroke="#eee"/>`);
    out.push(`<text x="${x0 - 6}" y="${py(t) + 4}" text-anchor="end">${fmtTick(t)}</text>`);
  }
  out.push(`<text x="${x0 + w / 2}" y="${y0 + h + 34}" text-anchor="middle">subscribers per channel</text>`);
  out.push(`<text transform="translate(${x0 - 52},${y0 + h / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  for (const s of series) {
    const p = s.points.filter(([x, y]) => x > 0 && y > 0).sort((a, b) => a[0] - b[0]);
    if (p.length === 0) continue;
    const d = p.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/>`);
    for (const [x, y] of p) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
  }
  return out.join('\n');
}

/**
 * The fan-out chart for BENCHMARKS.md: throughput (deliveries per server CPU-second) and
 * p99 latency at half load, against subscribers per channel, for every system; solid
 * lines are 1 node, dashed 3 nodes with Redis.
 */
export function renderFanoutSvg(result: BenchResult): string {
  const fan = result.scenarios.filter((s) => s.kind === 'fanout');
  const systems = [...new Set(fan.flatMap((s) => Object.keys(s.systems).filter((k) => s.systems[k] !== null)))];
  const series = (key: 'msgs_per_cpu_s' | 'p99_ms'): Series[] =>
    [1, 3].flatMap((nodes) =>
      systems.map((sys) => ({
        label: `${sys} (${nodes === 1 ? '1 node' : '3 nodes + Redis'})`,
        color: COLORS[sys] ?? '#555',
        dashed: nodes === 3,
        points: fan
          .filter((s) => s.nodes === nodes)
          .map((s) => [s.subscribers ?? 0, s.systems[sys]?.[key] ?? 0] as [number, number]),
      })),
    ).filter((s) => s.points.some(([, y]) => y > 0));
  const W = 1000;
  const H = 470;
  const legend = series('msgs_per_cpu_s')
    .map((s, i) => {
      const x = 90 + (i % 3) * 300;
      const y = H - 40 + Math.floor(i / 3) * 18;
      return `<line x1="${x}" y1="${y - 4}" x2="${x + 28}" y2="${y - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/><text x="${x + 34}" y="${y}">${esc(s.label)}</text>`;
    })
    .join('\n');
  const sub = `${result.preset} run, ${result.runs} runs per point (medians), ${result.machine.cores} cores, ${result.started_at.slice(0, 10)}`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">Switchyard fan-out vs uws_raw and Socket.IO</text>
<text x="${W / 2}" y="38" text-anchor="middle" fill="#555">${esc(sub)}</text>
${panel(90, 75, 370, 290, 'Throughput: deliveries per server CPU-second', 'msgs / CPU-s (log)', series('msgs_per_cpu_s'))}
${panel(590, 75, 370, 290, 'p99 publish-to-receive at 50% of saturation', 'p99 ms (log)', series('p99_ms'))}
${legend}
</svg>
`;
}
