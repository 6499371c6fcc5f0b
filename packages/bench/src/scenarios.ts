import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { LoadProc, nextSourceAddress, type LoadOptions, type LoadReport } from './loadproc.js';
import { loadAverage, slabBytes, socketBufferBytes, totalCpuSeconds, totalRssBytes } from './proc.js';
import { eventLoopP99Ms, heapBytes } from './scrape.js';
import { percentiles } from './stats.js';
import type { RunningSystem } from './systems.js';

export interface Context {
  readonly binary: string;
  readonly tokensFile: string;
  /** Seconds after which every load client exits by itself. */
  readonly deadlineS: number;
  /** Connections per load-client process. */
  readonly perProc: number;
  /** Latency is recorded on every n-th subscriber. */
  readonly sample: number;
  readonly payload: [number, number];
  readonly log: (line: string) => void;
}

/** One measurement of one system; null where a figure does not apply. */
export interface Measurement {
  msgs_per_cpu_s: number | null;
  msgs_per_s: number | null;
  publishes_per_s: number | null;
  latency_rate: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  p999_ms: number | null;
  max_ms: number | null;
  cross_node_p50_ms: number | null;
  cross_node_p99_ms: number | null;
  rss_per_conn_bytes: number | null;
  kmem_per_conn_bytes: number | null;
  /** Heap growth per idle connection: V8's (Node systems) or the Go runtime's in use (Centrifugo). */
  heap_per_conn_bytes: number | null;
  /** The fixed-rate phase: publishes/s offered (the same for every system), deliveries per server CPU-second, latency. */
  fixed_rate: number | null;
  fixed_msgs_per_cpu_s: number | null;
  fixed_p50_ms: number | null;
  fixed_p99_ms: number | null;
  /** Worst event-loop delay p99 over the nodes during saturation, the 50 % phase and the fixed-rate phase (Node servers only). */
  eld_p99_ms: number | null;
  latency_eld_p99_ms: number | null;
  fixed_eld_p99_ms: number | null;
  churn_per_s: number | null;
  resume_ms: number | null;
  lost: number | null;
  duplicates: number | null;
  failed_connections: number;
  server_cpu_s: number | null;
  load_avg: number;
  /** Redis commands per publish during saturation, by command (3-node systems). */
  redis_calls_per_publish: Record<string, number> | null;
}

export function emptyMeasurement(): Measurement {
  return {
    msgs_per_cpu_s: null,
    msgs_per_s: null,
    publishes_per_s: null,
    latency_rate: null,
    p50_ms: null,
    p99_ms: null,
    p999_ms: null,
    max_ms: null,
    cross_node_p50_ms: null,
    cross_node_p99_ms: null,
    rss_per_conn_bytes: null,
    kmem_per_conn_bytes: null,
    heap_per_conn_bytes: null,
    fixed_rate: null,
    fixed_msgs_per_cpu_s: null,
    fixed_p50_ms: null,
    fixed_p99_ms: null,
    eld_p99_ms: null,
    latency_eld_p99_ms: null,
    fixed_eld_p99_ms: null,
    churn_per_s: null,
    resume_ms: null,
    lost: null,
    duplicates: null,
    failed_connections: 0,
    server_cpu_s: null,
    load_avg: loadAverage(),
    redis_calls_per_publish: null,
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

interface SubGroup {
  proc: LoadProc;
  node: number;
}

/**
 * Spreads `total` subscribers over load-client processes (at most `perProc` each), each
 * process on its own loopback source address and aimed at one node.
 */
function spawnSubscribers(
  ctx: Context,
  system: RunningSystem,
  total: number,
  channel: string,
  extra: Partial<LoadOptions> & { shmPath?: string } = {},
): SubGroup[] {
  const ports = system.ports();
  const nodes = ports.length;
  let procs = Math.max(1, Math.ceil(total / ctx.perProc));
  if (nodes > 1 && total >= nodes) procs = Math.ceil(procs / nodes) * nodes;
  if (nodes > 1 && total < nodes) procs = total;
  const groups: SubGroup[] = [];
  let offset = 0;
  for (let k = 0; k < procs; k++) {
    const conns = Math.floor(total / procs) + (k < total % procs ? 1 : 0);
    if (conns === 0) continue;
    // With fewer subscribers than nodes, the first ones go to the nodes the publisher is not on.
    const node = nodes > 1 && total < nodes ? (k + 1) % nodes : k % nodes;
    const rotated = [...ports.slice(node), ...ports.slice(0, node)];
    const options: LoadOptions = {
      role: 'sub',
      proto: system.proto,
      ports: extra.reconnect === true ? rotated : [ports[node]!],
      src: nextSourceAddress(),
      conns,
      channel,
      tokensFile: ctx.tokensFile,
      tokenOffset: offset,
      sample: ctx.sample,
      deadlineS: ctx.deadlineS,
      node,
      ...extra,
    };
    if (extra.shmPath !== undefined) options.shm = { path: extra.shmPath, slot: groups.length };
    groups.push({ proc: new LoadProc(ctx.binary, options), node });
    offset += conns;
  }
  return groups;
}

function newShm(): string {
  const path = `/dev/shm/sy-bench-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(path, Buffer.alloc(8 * 256));
  return path;
}

async function readyAll(groups: SubGroup[], timeoutMs: number): Promise<number> {
  const counts = await Promise.all(groups.map((g) => g.proc.ready(timeoutMs)));
  return counts.reduce((s, c) => s + c.failed, 0);
}

async function reportAll(groups: SubGroup[], finalI?: number): Promise<LoadReport[]> {
  return Promise.all(groups.map((g) => g.proc.report(finalI)));
}

/** Polls until every tracked subscriber has seen `finalI` (or the time is up); returns the last reports. */
async function settle(groups: SubGroup[], finalI: number, timeoutMs: number): Promise<LoadReport[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reports = await reportAll(groups, finalI);
    if (reports.every((r) => r.tail === 0) || Date.now() >= deadline) return reports;
    await sleep(50);
  }
}

function redisCommandStats(system: RunningSystem): Map<string, number> | undefined {
  if (system.redis === undefined) return undefined;
  const stats = new Map<string, number>();
  for (const line of system.redis.cli('info', 'commandstats').split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m !== null) stats.set(m[1]!, Number(m[2]));
  }
  return stats;
}

export interface FanoutParams {
  subscribers: number;
  saturateMs: number;
  latencyMs: number;
  /** Publishes in flight over the slowest subscriber process, in the saturation phase. */
  window: number;
  /** Skip the saturation phase and publish at this rate (the churn scenario). */
  fixedRate?: number;
  /** Connect/disconnect clients during the latency phase: cycles offered per second, at most `concurrency` at once. */
  churn?: { rate: number; concurrency: number };
  /** A third phase at this many deliveries per second, the same for every system (0 or absent: none). */
  fixedDeliveriesPerS?: number;
}

/**
 * (a) and (b): 1 publisher, N subscribers on one channel. Phase A publishes closed-loop (a
 * window over the slowest subscriber process) and counts deliveries per server CPU-second;
 * phase B publishes open-loop at half of phase A's rate and reads latency from the stamps.
 */
export async function fanout(ctx: Context, system: RunningSystem, p: FanoutParams, label: string): Promise<Measurement> {
  const m = emptyMeasurement();
  const channel = `bench.${label}.${randomBytes(4).toString('hex')}`;
  const shm = newShm();
  const groups = spawnSubscribers(ctx, system, p.subscribers, channel, { shmPath: shm });
  const extra: SubGroup[] = [];
  try {
    m.failed_connections += await readyAll(groups, 30_000 + p.subscribers * 5);
    const pub = new LoadProc(ctx.binary, {
      role: 'pub',
      proto: system.proto,
      ports: [system.ports()[0]!],
      src: nextSourceAddress(),
      channel,
      tokensFile: ctx.tokensFile,
      deadlineS: ctx.deadlineS,
      payload: ctx.payload,
      ...(system.apiKey !== undefined && { apiKey: system.apiKey }),
      shm: { path: shm, slots: groups.length },
    });
    extra.push({ proc: pub, node: 0 });
    m.failed_connections += (await pub.ready(15_000)).failed;
    if (m.failed_connections > 0) ctx.log(`  ${system.name}: ${m.failed_connections} connections failed to set up`);
    const pids = system.pids();
    let published = 0;
    let rate = p.fixedRate ?? 0;
    let lost = 0;
    let dups = 0;

    const ports = system.ports();
    if (p.fixedRate === undefined) {
      await Promise.all(groups.map((g) => g.proc.command('reset')));
      await eventLoopP99Ms(ports); // the scrape resets the delay histogram: what follows is this phase's
      const before = redisCommandStats(system);
      const cpu0 = totalCpuSeconds(pids);
      const t0 = performance.now();
      await pub.command(`pub closed ${p.window}`);
      await sleep(p.saturateMs);
      published = (JSON.parse(await pub.command('stop')) as { published_total: number }).published_total;
      const tStop = performance.now();
      const reports = await settle(groups, published, 15_000);
      const cpu = totalCpuSeconds(pids) - cpu0;
      m.eld_p99_ms = await eventLoopP99Ms(ports);
      const after = redisCommandStats(system);
      const events = reports.reduce((s, r) => s + r.events, 0);
      lost += reports.reduce((s, r) => s + r.lost + r.tail, 0);
      dups += reports.reduce((s, r) => s + r.dups, 0);
      m.server_cpu_s = cpu;
      m.msgs_per_cpu_s = cpu > 0 ? events / cpu : null;
      // Throughput is what was delivered, until the last delivery: a server that fell behind
      // the window during the phase is not credited with what it had merely accepted.
      const seconds = (performance.now() - t0) / 1000;
      m.msgs_per_s = events / seconds;
      m.publishes_per_s = events / p.subscribers / seconds;
      if (tStop - t0 <= 0) m.publishes_per_s = null;
      rate = (m.publishes_per_s ?? 0) / 2;
      if (before !== undefined && after !== undefined && published > 0) {
        const calls: Record<string, number> = {};
        for (const [cmd, n] of after) {
          const d = n - (before.get(cmd) ?? 0);
          if (d > 0 && cmd !== 'info') calls[cmd] = Math.round((d / published) * 10_000) / 10_000;
        }
        m.redis_calls_per_publish = calls;
      }
    } else {
      published = (JSON.parse(await pub.command('stop')) as { published_total: number }).published_total;
    }

    // Phase B: open loop at half the saturation rate.
    m.latency_rate = rate;
    await Promise.all(groups.map((g) => g.proc.command('reset')));
    let churner: LoadProc | undefined;
    if (p.churn !== undefined && p.churn.rate > 0) {
      churner = new LoadProc(ctx.binary, {
        role: 'churn',
        proto: system.proto,
        ports: system.ports(),
        src: nextSourceAddress(),
        channel,
        tokensFile: ctx.tokensFile,
        tokenOffset: p.subscribers + 7,
        concurrency: p.churn.concurrency,
        deadlineS: ctx.deadlineS,
      });
      extra.push({ proc: churner, node: 0 });
      await churner.ready(10_000);
      await churner.command(`churn ${p.churn.rate}`);
    }
    await eventLoopP99Ms(ports);
    const tB = performance.now();
    await pub.command(`pub rate ${Math.max(1, rate).toFixed(2)}`);
    await sleep(p.latencyMs);
    const total = (JSON.parse(await pub.command('stop')) as { published_total: number }).published_total;
    m.latency_eld_p99_ms = await eventLoopP99Ms(ports);
    if (churner !== undefined) {
      await churner.command('stop');
      const r = await churner.report();
      m.churn_per_s = r.churn / ((performance.now() - tB) / 1000);
    }
    const reports = await settle(groups, total, 15_000);
    lost += reports.reduce((s, r) => s + r.lost + r.tail, 0);
    dups += reports.reduce((s, r) => s + r.dups, 0);
    const all = percentiles(reports);
    if (all !== null) Object.assign(m, { p50_ms: all.p50_ms, p99_ms: all.p99_ms, p999_ms: all.p999_ms, max_ms: all.max_ms });
    if (system.nodes.length > 1) {
      const cross = percentiles(reports.filter((_, i) => groups[i]!.node !== 0));
      if (cross !== null) Object.assign(m, { cross_node_p50_ms: cross.p50_ms, cross_node_p99_ms: cross.p99_ms });
    }
    if (p.fixedDeliveriesPerS !== undefined && p.fixedDeliveriesPerS > 0) {
      const fixed = await fixedPhase(groups, pub, system, p.fixedDeliveriesPerS / p.subscribers, p.latencyMs);
      Object.assign(m, fixed.figures);
      lost += fixed.lost;
      dups += fixed.dups;
    }
    const pubReport = await pub.report();
    if (pubReport.http_errors > 0) ctx.log(`  ${system.name}: ${pubReport.http_errors} publishes answered with an HTTP error`);
    m.lost = lost;
    m.duplicates = dups;
    return m;
  } finally {
    await Promise.all([...groups, ...extra].map((g) => g.proc.quit()));
    rmSync(shm, { force: true });
  }
}

/**
 * Open loop at a rate given in advance, the same for every system (capacity planning asks
 * what a given load costs, not only where each system tops out): deliveries per server
 * CPU-second, latency and event-loop delay at that rate.
 */
async function fixedPhase(
  groups: SubGroup[],
  pub: LoadProc,
  system: RunningSystem,
  rate: number,
  ms: number,
): Promise<{ figures: Partial<Measurement>; lost: number; dups: number }> {
  const ports = system.ports();
  const pids = system.pids();
  await Promise.all(groups.map((g) => g.proc.command('reset')));
  await eventLoopP99Ms(ports);
  const cpu0 = totalCpuSeconds(pids);
  await pub.command(`pub rate ${Math.max(1, rate).toFixed(2)}`);
  await sleep(ms);
  const total = (JSON.parse(await pub.command('stop')) as { published_total: number }).published_total;
  const reports = await settle(groups, total, 15_000);
  const cpu = totalCpuSeconds(pids) - cpu0;
  const eld = await eventLoopP99Ms(ports);
  const events = reports.reduce((s, r) => s + r.events, 0);
  const lat = percentiles(reports);
  return {
    figures: {
      fixed_rate: rate,
      fixed_msgs_per_cpu_s: cpu > 0 ? events / cpu : null,
      fixed_p50_ms: lat?.p50_ms ?? null,
      fixed_p99_ms: lat?.p99_ms ?? null,
      fixed_eld_p99_ms: eld,
    },
    lost: reports.reduce((s, r) => s + r.lost + r.tail, 0),
    dups: reports.reduce((s, r) => s + r.dups, 0),
  };
}

/**
 * (c) Idle connection scale: N authenticated, subscribed, silent connections; the servers'
 * RSS growth (and Redis's, where used) and the kernel's per connection.
 */
export async function idle(ctx: Context, system: RunningSystem, connections: number): Promise<Measurement> {
  const m = emptyMeasurement();
  const channel = `idle.${randomBytes(4).toString('hex')}`;
  await sleep(1000);
  const pids = system.pids();
  const rss0 = totalRssBytes(pids);
  const heap0 = await heapBytes(system.ports());
  const slab0 = slabBytes();
  const groups = spawnSubscribers(ctx, system, connections, channel, { sample: 0 });
  try {
    m.failed_connections = await readyAll(groups, 60_000 + connections * 5);
    const ready = connections - m.failed_connections;
    await sleep(1000);
    const rss1 = totalRssBytes(pids);
    const heap1 = await heapBytes(system.ports());
    const slab1 = slabBytes();
    const buffers = socketBufferBytes(system.ports());
    if (ready > 0) {
      m.rss_per_conn_bytes = (rss1 - rss0) / ready;
      if (heap0 !== null && heap1 !== null) m.heap_per_conn_bytes = (heap1 - heap0) / ready;
      // Both ends of every connection live in this kernel, with the same objects each:
      // half the slab growth is the server's; plus its sockets' buffer memory.
      if (slab0 !== null && slab1 !== null && buffers !== null) m.kmem_per_conn_bytes = (slab1 - slab0) / 2 / ready + buffers / ready;
    }
    m.lost = 0;
    if (m.failed_connections > 0) ctx.log(`  ${system.name}: ${m.failed_connections} of ${connections} connections failed`);
    return m;
  } finally {
    await Promise.all(groups.map((g) => g.proc.quit()));
  }
}

export interface KillParams {
  subscribers: number;
  rate: number;
  beforeMs: number;
  afterMs: number;
  /** The node to SIGKILL (not the publisher's, node 0). */
  victim: number;
}

/**
 * (e) A node killed during (b): its clients reconnect to another node (Switchyard resumes
 * the session, with `since` as fallback; the others simply resubscribe). Reports how long
 * until the last of them was subscribed again, and every event lost.
 */
export async function nodeKill(ctx: Context, system: RunningSystem, p: KillParams, label: string): Promise<Measurement> {
  const m = emptyMeasurement();
  const channel = `bench.${label}.${randomBytes(4).toString('hex')}`;
  const groups = spawnSubscribers(ctx, system, p.subscribers, channel, { reconnect: true });
  const extra: SubGroup[] = [];
  try {
    m.failed_connections = await readyAll(groups, 30_000 + p.subscribers * 5);
    const pub = new LoadProc(ctx.binary, {
      role: 'pub',
      proto: system.proto,
      ports: [system.ports()[0]!],
      src: nextSourceAddress(),
      channel,
      tokensFile: ctx.tokensFile,
      deadlineS: ctx.deadlineS,
      payload: ctx.payload,
      ...(system.apiKey !== undefined && { apiKey: system.apiKey }),
    });
    extra.push({ proc: pub, node: 0 });
    m.failed_connections += (await pub.ready(15_000)).failed;
    await Promise.all(groups.map((g) => g.proc.command('reset')));
    await pub.command(`pub rate ${p.rate}`);
    await sleep(p.beforeMs);
    const killedAt = monotonicUs();
    await system.killNode(p.victim);
    await sleep(p.afterMs);
    const total = (JSON.parse(await pub.command('stop')) as { published_total: number }).published_total;
    const reports = await settle(groups, total, 8000);
    if (process.env['SY_BENCH_DEBUG'] !== undefined) {
      for (const [i, r] of reports.entries()) {
        ctx.log(`  debug node ${groups[i]!.node}: ready ${r.ready_now}/${r.conns} lost ${r.lost} tail ${r.tail} dups ${r.dups} min ${r.min_last} max ${r.max_last} total ${total} reconnects ${r.reconnects} resumed ${r.resumed} closes ${JSON.stringify(r.close_codes)}`);
      }
    }
    m.lost = reports.reduce((s, r) => s + r.lost + r.tail, 0);
    m.duplicates = reports.reduce((s, r) => s + r.dups, 0);
    const victims = reports.filter((_, i) => groups[i]!.node === p.victim);
    const lastAt = Math.max(0, ...victims.map((r) => r.resume_last_at_us));
    m.resume_ms = lastAt > 0 ? (lastAt - killedAt) / 1000 : null;
    const reconnects = reports.reduce((s, r) => s + r.reconnects, 0);
    const resumed = reports.reduce((s, r) => s + r.resumed, 0);
    const viaSince = reports.reduce((s, r) => s + r.resumed_since, 0);
    const lat = percentiles(reports);
    if (lat !== null) Object.assign(m, { p50_ms: lat.p50_ms, p99_ms: lat.p99_ms, p999_ms: lat.p999_ms, max_ms: lat.max_ms });
    m.latency_rate = p.rate;
    ctx.log(`  ${system.name}: ${reconnects} reconnects, ${resumed} sessions resumed, ${viaSince} via since, lost ${m.lost}, duplicates ${m.duplicates}`);
    return m;
  } finally {
    await Promise.all([...groups, ...extra].map((g) => g.proc.quit()));
  }
}
