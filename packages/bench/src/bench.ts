import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { CENTRIFUGO_VERSION, ensureCentrifugo } from './centrifugo.js';
import { buildLoadgen } from './native.js';
import { pinSelf, planPinning, setPinning } from './pin.js';
import { summariseProfiles } from './profile.js';
import { loadAverage, machineInfo } from './proc.js';
import { fanout, idle, nodeKill, type Context, type Measurement } from './scenarios.js';
import { maxOf, median, minOf, sig } from './stats.js';
import { evaluateTargets } from './targets.js';
import { FIGURES, RATIOS, type BenchPlan, type BenchResult, type FigureKey, type RatioName, type ScenarioResult, type SystemFigures } from './result.js';
import { BENCH_SECRET, ROOT, SYSTEMS, redisAvailable, startRedis, startSystem, type Redis, type RunningSystem, type SystemName, type SystemOptions } from './systems.js';


export const QUICK_PLAN: BenchPlan = {
  runs: 2,
  systems: [...SYSTEMS],
  fanout1: [100, 1000],
  fanout3: [1000],
  idle1: [3000],
  idle3: [],
  churnSubscribers: 1000,
  churnRate: 500,
  churnConcurrency: 64,
  killSubscribers: 300,
  killRuns: 1,
  killBeforeMs: 1000,
  killAfterMs: 2500,
  saturateMs: 1000,
  latencyMs: 1000,
  window: 64,
  perProc: 5000,
  sample: 8,
  payload: [64, 256],
  pin: true,
  fixedDeliveriesPerS: 20_000,
  scaleNodes: 5,
  scaleIdle: [],
  scaleFanout: [],
};

export const FULL_PLAN: BenchPlan = {
  ...QUICK_PLAN,
  runs: 5,
  fanout1: [1, 100, 1000, 10_000],
  fanout3: [1, 100, 1000, 10_000],
  idle1: [10_000],
  idle3: [50_000],
  killSubscribers: 1000,
  killRuns: 3,
  killBeforeMs: 1500,
  killAfterMs: 3000,
  saturateMs: 3000,
  latencyMs: 3000,
  fixedDeliveriesPerS: 100_000,
  scaleIdle: [100_000],
  scaleFanout: [50_000],
};

export interface BenchOptions {
  quick?: boolean;
  plan?: Partial<BenchPlan>;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
  /** Run Switchyard's nodes under V8's CPU profiler, profiles written here and summarised in the result. */
  profileDir?: string;
}


const NOT_MEASURED = [
  'soketi: @soketi/soketi 1.6 pins uWebSockets.js to a GitHub tarball (v20.10.0), which cannot be fetched here; aliasing it like ours would take a workspace-wide override for a package that also pulls pm2, aws-sdk, knex, mysql and pg, and it publishes only through its signed HTTP API, so it was left out.',
];

function fmtScenarioName(kind: string, n: number, nodes: number): string {
  const k = n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n);
  return `${kind}-${k}${nodes > 1 ? `-${nodes}n` : ''}`;
}

async function makeTokens(count: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'sy-bench-'));
  const file = join(dir, 'tokens.txt');
  const key = new TextEncoder().encode(BENCH_SECRET);
  const now = Math.floor(Date.now() / 1000);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(
      await new SignJWT({ permissions: ['*:read', '*:write'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(`bench-user-${i}`)
        .setIssuedAt(now)
        .setExpirationTime(now + 6 * 3600)
        .sign(key),
    );
  }
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

function gitSource(): { commit: string | null; dirty: boolean | null } {
  const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  if (head.status !== 0) return { commit: null, dirty: null };
  const status = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' });
  return { commit: head.stdout.trim(), dirty: status.status === 0 ? status.stdout.trim() !== '' : null };
}

function redisBenchmark(redis: Redis, pipeline: number): number | null {
  const args = ['-p', String(redis.port), '-n', '100000', '-c', '20', '-q'];
  if (pipeline > 1) args.push('-P', String(pipeline));
  const r = spawnSync('redis-benchmark', [...args, 'PUBLISH', 'bench.calibration', 'x'.repeat(160)], { encoding: 'utf8', timeout: 60_000 });
  // "PUBLISH bench.calibration ...: 81234.57 requests per second, p50=..."
  const m = /:\s*([\d.]+) requests per second/.exec(`${r.stdout}${r.stderr}`.replace(/\r/g, '\n'));
  return m === null ? null : Number(m[1]);
}

interface Cell {
  system: SystemName;
  run: number;
  m: Measurement;
}

function summarise(
  name: string,
  kind: ScenarioResult['kind'],
  nodes: number,
  subscribers: number | null,
  connections: number | null,
  metric: FigureKey,
  systems: readonly SystemName[],
  cells: Cell[],
): ScenarioResult {
  const figures: Record<string, SystemFigures | null> = {};
  for (const s of SYSTEMS) {
    const mine = cells.filter((c) => c.system === s);
    if (!systems.includes(s) || mine.length === 0) {
      figures[s] = null;
      continue;
    }
    const f = {} as SystemFigures;
    for (const key of FIGURES) {
      const values = mine.map((c) => c.m[key]).filter((v): v is number => v !== null);
      f[key] = values.length === 0 ? null : sig(median(values));
    }
    const lost = mine.map((c) => c.m.lost).filter((v): v is number => v !== null);
    const dups = mine.map((c) => c.m.duplicates).filter((v): v is number => v !== null);
    f.lost = lost.length === 0 ? null : lost.reduce((a, b) => a + b, 0);
    f.duplicates = dups.length === 0 ? null : dups.reduce((a, b) => a + b, 0);
    f.failed_connections = mine.reduce((a, c) => a + c.m.failed_connections, 0);
    f.runs = mine.length;
    figures[s] = f;
  }
  const ratios = {} as Record<RatioName, number | null>;
  const ranges = {} as Record<RatioName, [number, number] | null>;
  const added = {} as Record<RatioName, number | null>;
  const fixedRatios = {} as Record<RatioName, number | null>;
  const fixedAdded = {} as Record<RatioName, number | null>;
  const runs = Math.max(0, ...cells.map((c) => c.run + 1));
  for (const [ratio, other] of RATIOS) {
    const paired: number[] = [];
    const diffs: number[] = [];
    const fixedPaired: number[] = [];
    const fixedDiffs: number[] = [];
    for (let r = 0; r < runs; r++) {
      const a = cells.find((c) => c.system === 'switchyard' && c.run === r)?.m;
      const b = cells.find((c) => c.system === other && c.run === r)?.m;
      if (a === undefined || b === undefined) continue;
      const x = a[metric];
      const y = b[metric];
      if (x !== null && y !== null && y !== 0) paired.push(x / y);
      if (a.p99_ms !== null && b.p99_ms !== null) diffs.push(a.p99_ms - b.p99_ms);
      if (a.fixed_msgs_per_cpu_s !== null && b.fixed_msgs_per_cpu_s !== null && b.fixed_msgs_per_cpu_s !== 0) fixedPaired.push(a.fixed_msgs_per_cpu_s / b.fixed_msgs_per_cpu_s);
      if (a.fixed_p99_ms !== null && b.fixed_p99_ms !== null) fixedDiffs.push(a.fixed_p99_ms - b.fixed_p99_ms);
    }
    fixedRatios[ratio] = sig(median(fixedPaired));
    fixedAdded[ratio] = sig(median(fixedDiffs));
    ratios[ratio] = sig(median(paired));
    const lo = minOf(paired);
    const hi = maxOf(paired);
    ranges[ratio] = lo === null || hi === null ? null : [sig(lo)!, sig(hi)!];
    added[ratio] = sig(median(diffs));
  }
  const loads = cells.map((c) => c.m.load_avg);
  const load: [number, number] = [minOf(loads) ?? 0, maxOf(loads) ?? 0];
  return { name, kind, nodes, subscribers, connections, runs, metric, systems: figures, ratios, ratio_ranges: ranges, p99_added_ms: added, fixed_ratios: fixedRatios, fixed_p99_added_ms: fixedAdded, load_avg: load };
}

/**
 * Runs the benchmark: systems side by side, alternating within every scenario (run r
 * measures each system once, in an order rotated by r), on this machine.
 */
export async function runBench(options: BenchOptions = {}): Promise<BenchResult> {
  const log = options.log ?? (() => undefined);
  const quick = options.quick === true;
  const plan: BenchPlan = { ...(quick ? QUICK_PLAN : FULL_PLAN), ...options.plan };
  const started = Date.now();
  const notes: string[] = [];
  const result: BenchResult = {
    runs: plan.runs,
    quick,
    preset: options.plan !== undefined && Object.keys(options.plan).length > 0 ? 'custom' : quick ? 'quick' : 'full',
    started_at: new Date(started).toISOString(),
    duration_s: 0,
    machine: { ...machineInfo(), load_avg_start: loadAverage(), load_avg_end: 0 },
    source: gitSource(),
    plan,
    calibration: { redis_benchmark_publish_per_s: null, redis_benchmark_publish_pipelined_per_s: null, uws_raw_msgs_per_cpu_s: {} },
    cluster: { redis_calls_per_publish: null, deliveries_per_publish: null, cross_node_p50_ms: null, cross_node_p99_ms: null, cross_node_subscribers: null },
    scenarios: [],
    targets: [],
    notes,
    not_measured: [...NOT_MEASURED],
  };
  if (quick) notes.push(`--quick: ${plan.runs} runs per system per scenario (a full run makes ${FULL_PLAN.runs}), shorter phases and fewer sizes.`);

  log('building the load client (gcc)');
  const binary = buildLoadgen();
  const sysOpts: SystemOptions = {};
  if (options.profileDir !== undefined) {
    mkdirSync(options.profileDir, { recursive: true });
    sysOpts.profileDir = options.profileDir;
    notes.push(`--profile: Switchyard's nodes ran under V8's CPU profiler (--cpu-prof, profiles in ${options.profileDir}); its figures carry the profiler's overhead.`);
  }
  if (plan.systems.includes('centrifugo')) {
    const built = await ensureCentrifugo(log);
    if ('binary' in built) {
      sysOpts.centrifugoBinary = built.binary;
      notes.push(`centrifugo ${CENTRIFUGO_VERSION}, built from the Go module proxy; memory engine on 1 node, Redis engine on 3; history on (history_size 1000, history_ttl 300s, force_recovery); publishes through its HTTP API (POST /api/publish), pipelined on one keep-alive connection.`);
    } else {
      notes.push(built.skipped);
      result.not_measured.push(built.skipped);
      plan.systems = plan.systems.filter((s) => s !== 'centrifugo');
    }
  }
  const { pinning, why } = planPinning(plan.pin);
  notes.push(why);
  const previousPinning = setPinning(pinning);
  const ownCpus = pinning === null ? null : pinSelf(pinning.load);
  const maxConns = Math.max(...plan.fanout1, ...plan.fanout3, ...plan.idle1, ...plan.idle3, ...plan.scaleIdle, ...plan.scaleFanout, plan.churnSubscribers, plan.killSubscribers, 1);
  const tokensFile = await makeTokens(Math.min(1000, maxConns + 64));
  const ctx: Context = {
    binary,
    tokensFile,
    deadlineS: 600,
    perProc: plan.perProc,
    sample: plan.sample,
    payload: plan.payload,
    log,
  };
  const scale = plan.scaleNodes > 1 && plan.systems.includes('switchyard') && (plan.scaleIdle.length > 0 || plan.scaleFanout.length > 0);
  const withRedis = plan.fanout3.length > 0 || plan.idle3.length > 0 || plan.killSubscribers > 0 || scale;
  let redis: Redis | undefined;
  let running: RunningSystem[] = [];
  const stopAll = async () => {
    await Promise.all(running.map((s) => s.stop()));
    running = [];
  };
  // Interrupted: take every server down with us (the load clients exit with our pipes).
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the servers`);
    void Promise.allSettled([stopAll(), redis?.stop()]).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (withRedis) {
      if (!redisAvailable()) {
        notes.push('redis-server/redis-cli not installed: the 3-node scenarios, the scale rows and the Redis calibration were skipped.');
        plan.fanout3 = [];
        plan.idle3 = [];
        plan.killSubscribers = 0;
        plan.scaleIdle = [];
        plan.scaleFanout = [];
      } else {
        redis = await startRedis();
        log('calibration: redis-benchmark PUBLISH');
        result.calibration.redis_benchmark_publish_per_s = redisBenchmark(redis, 1);
        result.calibration.redis_benchmark_publish_pipelined_per_s = redisBenchmark(redis, 16);
      }
    }
    const sat = new Map<string, number[]>();

    for (const nodes of [1, 3]) {
      const fan = nodes === 1 ? plan.fanout1 : plan.fanout3;
      const idles = nodes === 1 ? plan.idle1 : plan.idle3;
      const churn = nodes === 1 && plan.churnSubscribers > 0;
      const kill = nodes === 3 && plan.killSubscribers > 0;
      if (fan.length === 0 && idles.length === 0 && !churn && !kill) continue;
      log(`starting ${plan.systems.join(', ')} on ${nodes === 1 ? '1 node' : '3 nodes + Redis'}`);
      for (const name of plan.systems) running.push(await startSystem(name, nodes, redis, sysOpts));
      const sys = (name: SystemName) => running.find((s) => s.name === name)!;
      const order = (r: number) => plan.systems.map((_, i) => plan.systems[(i + r) % plan.systems.length]!);

      for (const subs of fan) {
        const name = fmtScenarioName('fanout', subs, nodes);
        const cells: Cell[] = [];
        for (let r = 0; r < plan.runs; r++) {
          for (const s of order(r)) {
            log(`${name} run ${r + 1}/${plan.runs}: ${s}`);
            const m = await fanout(
              ctx,
              sys(s),
              { subscribers: subs, saturateMs: plan.saturateMs, latencyMs: plan.latencyMs, window: windowFor(plan, subs), fixedDeliveriesPerS: plan.fixedDeliveriesPerS },
              name,
            );
            if (m.msgs_per_s !== null && plan.fixedDeliveriesPerS > 0 && m.msgs_per_s < plan.fixedDeliveriesPerS * 1.25) {
              notes.push(`${name} run ${r + 1}: ${s} saturated at ${Math.round(m.msgs_per_s)} deliveries/s, within 25 % of the fixed rate (${plan.fixedDeliveriesPerS}/s): its fixed-rate figures are near saturation.`);
            }
            log(`  ${fmtLine(m)}`);
            cells.push({ system: s, run: r, m });
            if (m.publishes_per_s !== null) sat.set(`${s}/${nodes}/${subs}`, [...(sat.get(`${s}/${nodes}/${subs}`) ?? []), m.publishes_per_s]);
          }
        }
        const summary = summarise(name, 'fanout', nodes, subs, subs, 'msgs_per_cpu_s', plan.systems, cells);
        result.scenarios.push(summary);
        const raw = cells.filter((c) => c.system === 'uws_raw').map((c) => c.m.msgs_per_cpu_s).filter((v): v is number => v !== null);
        if (raw.length > 0) result.calibration.uws_raw_msgs_per_cpu_s[name] = { median: sig(median(raw)), min: sig(minOf(raw)), max: sig(maxOf(raw)) };
        if (nodes === 3) {
          const sw = cells.filter((c) => c.system === 'switchyard');
          const calls = sw.map((c) => c.m.redis_calls_per_publish).filter((v): v is Record<string, number> => v !== null);
          const near = Math.abs(subs - 1000) <= Math.abs((result.cluster.cross_node_subscribers ?? Infinity) - 1000);
          if (calls.length > 0 && near) {
            const merged: Record<string, number> = {};
            for (const key of new Set(calls.flatMap((c) => Object.keys(c)))) merged[key] = sig(median(calls.map((c) => c[key] ?? 0)), 3)!;
            result.cluster.redis_calls_per_publish = merged;
            result.cluster.deliveries_per_publish = subs;
            result.cluster.cross_node_p50_ms = summary.systems['switchyard']?.cross_node_p50_ms ?? null;
            result.cluster.cross_node_p99_ms = summary.systems['switchyard']?.cross_node_p99_ms ?? null;
            result.cluster.cross_node_subscribers = subs;
          }
        }
      }

      if (churn) {
        const subs = plan.churnSubscribers;
        const name = fmtScenarioName('churn', subs, nodes);
        const cells: Cell[] = [];
        for (let r = 0; r < plan.runs; r++) {
          for (const s of order(r)) {
            const known = median(sat.get(`${s}/${nodes}/${subs}`) ?? []);
            log(`${name} run ${r + 1}/${plan.runs}: ${s}`);
            const m = await fanout(
              ctx,
              sys(s),
              {
                subscribers: subs,
                saturateMs: plan.saturateMs,
                latencyMs: plan.latencyMs,
                window: windowFor(plan, subs),
                churn: { rate: plan.churnRate, concurrency: plan.churnConcurrency },
                ...(known !== null && { fixedRate: known / 2 }),
              },
              name,
            );
            log(`  ${fmtLine(m)}`);
            cells.push({ system: s, run: r, m });
          }
        }
        result.scenarios.push(summarise(name, 'churn', nodes, subs, subs, 'churn_per_s', plan.systems, cells));
      }

      for (const conns of idles) {
        const name = fmtScenarioName('idle', conns, nodes);
        const cells: Cell[] = [];
        // Every idle measurement starts fresh servers; the biggest and the quick ones run fewer times.
        const runs = quick ? 1 : conns >= 20_000 ? Math.min(plan.runs, 2) : plan.runs;
        if (runs < plan.runs) notes.push(`${name}: ${runs} run${runs === 1 ? '' : 's'} per system (${quick ? '--quick' : `each run starts fresh servers and connects ${conns} clients per system`}).`);
        for (let r = 0; r < runs; r++) {
          for (const s of order(r)) {
            log(`${name} run ${r + 1}/${runs}: ${s}`);
            // A fresh instance: memory left over from the fan-out runs (and freed meanwhile)
            // would otherwise swamp the growth being measured.
            const fresh = await startSystem(s, nodes, redis, sysOpts);
            running.push(fresh);
            const m = await idle(ctx, fresh, conns).finally(async () => {
              running.splice(running.indexOf(fresh), 1);
              await fresh.stop();
            });
            log(`  rss/conn ${fmt(m.rss_per_conn_bytes)} B, kernel/conn ${fmt(m.kmem_per_conn_bytes)} B`);
            cells.push({ system: s, run: r, m });
          }
        }
        result.scenarios.push(summarise(name, 'idle', nodes, null, conns, 'rss_per_conn_bytes', plan.systems, cells));
      }

      if (kill) {
        const subs = plan.killSubscribers;
        const name = fmtScenarioName('node-kill', subs, nodes);
        const cells: Cell[] = [];
        for (let r = 0; r < plan.killRuns; r++) {
          for (const s of order(r)) {
            const known = median(sat.get(`${s}/${nodes}/1000`) ?? sat.get(`${s}/${nodes}/${subs}`) ?? []);
            // Half of saturation where known, but never so fast that 1000 events of history
            // (HISTORY_SIZE) would not cover the outage.
            const rate = Math.max(50, Math.min(known === null ? 200 : known / 2, 300));
            log(`${name} run ${r + 1}/${plan.killRuns}: ${s} (kill node 2 at ${rate.toFixed(0)} publishes/s)`);
            const m = await nodeKill(ctx, sys(s), { subscribers: subs, rate, beforeMs: plan.killBeforeMs, afterMs: plan.killAfterMs, victim: 2 }, name);
            log(`  resumed after ${fmt(m.resume_ms)} ms, lost ${m.lost}`);
            cells.push({ system: s, run: r, m });
            if (r + 1 < plan.killRuns) await sys(s).restartNode(2);
          }
        }
        result.scenarios.push(summarise(name, 'node-kill', nodes, subs, subs, 'resume_ms', plan.systems, cells));
      }
      await stopAll();
    }

    if (scale && redis !== undefined) await scaleRows(ctx, plan, redis, sysOpts, result, log);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
    await redis?.stop();
    setPinning(previousPinning);
    if (ownCpus !== null) pinSelf(ownCpus);
    rmSync(tokensFile, { force: true });
    rmSync(join(tokensFile, '..'), { recursive: true, force: true });
  }
  if (options.profileDir !== undefined) result.profiles = summariseProfiles(options.profileDir, ROOT);
  result.runs = Math.max(0, ...result.scenarios.map((s) => s.runs));
  result.targets = evaluateTargets(result);
  result.machine.load_avg_end = loadAverage();
  result.duration_s = Math.round((Date.now() - started) / 100) / 10;
  return result;
}

/**
 * The scale rows: Switchyard alone on `plan.scaleNodes` nodes + Redis. Fan-out first, on one
 * set of nodes; then each idle size on fresh ones (memory left by the fan-out would swamp it).
 * The RSS per connection includes Redis's (the sessions and the registry live there).
 */
async function scaleRows(ctx: Context, plan: BenchPlan, redis: Redis, sysOpts: SystemOptions, result: BenchResult, log: (line: string) => void): Promise<void> {
  const nodes = plan.scaleNodes;
  const runs = Math.min(plan.runs, 2);
  // Connections one node takes: the open-file limit less ~5 % for Redis, the listener and the rest.
  // The limit of this process (machineInfo read it), which its children inherit.
  const fileLimit = result.machine.open_files_limit;
  const perNode = Math.floor(Math.min(fileLimit ?? 20_000, 1_000_000) * 0.95);
  if (plan.scaleFanout.length > 0) {
    log(`scale: switchyard on ${nodes} nodes + Redis`);
    const sys = await startSystem('switchyard', nodes, redis, sysOpts);
    try {
      for (const subs of plan.scaleFanout) {
        const name = fmtScenarioName('fanout', subs, nodes);
        const cells: Cell[] = [];
        for (let r = 0; r < runs; r++) {
          log(`${name} run ${r + 1}/${runs}: switchyard`);
          const m = await fanout(
            ctx,
            sys,
            { subscribers: subs, saturateMs: plan.saturateMs, latencyMs: plan.latencyMs, window: windowFor(plan, subs), fixedDeliveriesPerS: plan.fixedDeliveriesPerS },
            name,
          );
          log(`  ${fmtLine(m)}`);
          cells.push({ system: 'switchyard', run: r, m });
        }
        result.scenarios.push(summarise(name, 'fanout', nodes, subs, subs, 'msgs_per_cpu_s', ['switchyard'], cells));
      }
    } finally {
      await sys.stop();
    }
  }
  for (const conns of plan.scaleIdle) {
    // One process cannot hold more connections than it may open files: more nodes then.
    const idleNodes = Math.max(nodes, Math.ceil(conns / perNode));
    if (idleNodes > nodes) result.notes.push(`idle ${conns} ran on ${idleNodes} nodes, not ${nodes}: one process holds at most ~${perNode} connections under this machine's open-file limit (${fileLimit ?? 'unknown'}).`);
    const name = fmtScenarioName('idle', conns, idleNodes);
    log(`${name}: switchyard on ${idleNodes} fresh nodes + Redis`);
    const fresh = await startSystem('switchyard', idleNodes, redis, sysOpts);
    const m = await idle(ctx, fresh, conns).finally(() => fresh.stop());
    log(`  rss/conn ${fmt(m.rss_per_conn_bytes)} B (Redis included), kernel/conn ${fmt(m.kmem_per_conn_bytes)} B`);
    result.scenarios.push(summarise(name, 'idle', idleNodes, null, conns, 'rss_per_conn_bytes', ['switchyard'], [{ system: 'switchyard', run: 0, m }]));
  }
}

/**
 * Publishes in flight in the saturation phase: `plan.window`, fewer for big channels, so
 * that the backlog a slow server may build stays near 64k deliveries whatever the size.
 */
function windowFor(plan: BenchPlan, subscribers: number): number {
  return Math.max(4, Math.min(plan.window, Math.round(64_000 / Math.max(1, subscribers))));
}

function fmt(v: number | null): string {
  return v === null ? '—' : String(sig(v));
}

function fmtLine(m: Measurement): string {
  return (
    `${fmt(m.msgs_per_cpu_s)} msgs/cpu-s, ${fmt(m.msgs_per_s)} msgs/s (${fmt(m.publishes_per_s)} pub/s); ` +
    `at ${fmt(m.latency_rate)} pub/s p50 ${fmt(m.p50_ms)} p99 ${fmt(m.p99_ms)} max ${fmt(m.max_ms)} ms; lost ${m.lost}` +
    (m.churn_per_s !== null ? `; churn ${fmt(m.churn_per_s)}/s` : '')
  );
}
