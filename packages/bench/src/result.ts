import type { ProfileSummary } from './profile.js';
import type { MachineInfo } from './proc.js';
import type { SystemName } from './systems.js';

// The shape of what `switchyard bench` measures and prints (--json): the plan, each scenario's
// figures and ratios, the targets. Kept apart from the runner so report, chart and targets
// read it without importing the bench itself.
/** What to run. `quick` and `full` are presets; every field can be overridden. */
export interface BenchPlan {
  /** Measurements per system per scenario (pairs, for the ratios). */
  runs: number;
  systems: SystemName[];
  /** Subscribers per channel for fan-out on 1 node, and on 3 nodes with Redis. */
  fanout1: number[];
  fanout3: number[];
  /** Idle connections on 1 node, and on 3 nodes with Redis. */
  idle1: number[];
  idle3: number[];
  /** Subscribers for the churn scenario on 1 node (0: skip). */
  churnSubscribers: number;
  /** Connect-authenticate-subscribe-disconnect cycles offered per second during (b), at most `churnConcurrency` at once. */
  churnRate: number;
  churnConcurrency: number;
  /** Subscribers for the node-kill scenario on 3 nodes (0: skip), and its runs. */
  killSubscribers: number;
  killRuns: number;
  /** Publishing before the kill, and after it (the clients' resume happens in there). */
  killBeforeMs: number;
  killAfterMs: number;
  saturateMs: number;
  latencyMs: number;
  window: number;
  perProc: number;
  sample: number;
  payload: [number, number];
  /** Servers and load clients on separate CPUs (taskset), where there are two or more. */
  pin: boolean;
  /** Deliveries per second of the fixed-rate fan-out phase, the same for every system (0: none). */
  fixedDeliveriesPerS: number;
  /**
   * Scale rows: Switchyard alone on `scaleNodes` nodes + Redis (the peers are measured up to 3
   * nodes; this is how far one machine takes Switchyard), idle connections and fan-out sizes.
   */
  scaleNodes: number;
  scaleIdle: number[];
  scaleFanout: number[];
}

export type FigureKey =
  | 'msgs_per_cpu_s'
  | 'msgs_per_s'
  | 'publishes_per_s'
  | 'latency_rate'
  | 'p50_ms'
  | 'p99_ms'
  | 'p999_ms'
  | 'max_ms'
  | 'cross_node_p50_ms'
  | 'cross_node_p99_ms'
  | 'rss_per_conn_bytes'
  | 'kmem_per_conn_bytes'
  | 'heap_per_conn_bytes'
  | 'fixed_rate'
  | 'fixed_msgs_per_cpu_s'
  | 'fixed_p50_ms'
  | 'fixed_p99_ms'
  | 'eld_p99_ms'
  | 'latency_eld_p99_ms'
  | 'fixed_eld_p99_ms'
  | 'churn_per_s'
  | 'resume_ms';

export const FIGURES: readonly FigureKey[] = [
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
];

/** One system in one scenario: medians over its runs; lost and duplicates summed. */
export type SystemFigures = Record<FigureKey, number | null> & {
  lost: number | null;
  duplicates: number | null;
  failed_connections: number;
  runs: number;
};

export type RatioName = 'switchyard/uws_raw' | 'switchyard/socketio_redis' | 'switchyard/centrifugo';
export const RATIOS: readonly [RatioName, SystemName][] = [
  ['switchyard/uws_raw', 'uws_raw'],
  ['switchyard/socketio_redis', 'socketio_redis'],
  ['switchyard/centrifugo', 'centrifugo'],
];

export interface ScenarioResult {
  name: string;
  kind: 'fanout' | 'idle' | 'churn' | 'node-kill';
  nodes: number;
  subscribers: number | null;
  connections: number | null;
  runs: number;
  /** The figure the ratios compare. */
  metric: FigureKey;
  systems: Record<string, SystemFigures | null>;
  /** Medians of the per-run (paired) ratios of `metric`. */
  ratios: Record<RatioName, number | null>;
  ratio_ranges: Record<RatioName, [number, number] | null>;
  /** Median of the per-run differences in p99 (switchyard minus the other), where latency applies. */
  p99_added_ms: Record<RatioName, number | null>;
  /** Fan-out at the fixed rate: paired ratios of deliveries per server CPU-second, and p99 differences. */
  fixed_ratios: Record<RatioName, number | null>;
  fixed_p99_added_ms: Record<RatioName, number | null>;
  /** The machine's 1-minute load average over this scenario's measurements (min, max): others' work shows here. */
  load_avg: [number, number];
}

export interface Target {
  target: string;
  value: string;
  met: boolean | null;
}

export interface BenchResult {
  runs: number;
  quick: boolean;
  /** `quick` or `full` as given; `custom` when the plan was changed with options. */
  preset: 'quick' | 'full' | 'custom';
  started_at: string;
  duration_s: number;
  machine: MachineInfo & { load_avg_start: number; load_avg_end: number };
  /** The commit measured, and whether the working tree differed from it. */
  source: { commit: string | null; dirty: boolean | null };
  plan: BenchPlan;
  calibration: {
    redis_benchmark_publish_per_s: number | null;
    redis_benchmark_publish_pipelined_per_s: number | null;
    uws_raw_msgs_per_cpu_s: Record<string, { median: number | null; min: number | null; max: number | null }>;
  };
  cluster: {
    redis_calls_per_publish: Record<string, number> | null;
    deliveries_per_publish: number | null;
    cross_node_p50_ms: number | null;
    cross_node_p99_ms: number | null;
    cross_node_subscribers: number | null;
  };
  scenarios: ScenarioResult[];
  targets: Target[];
  notes: string[];
  not_measured: string[];
  /** With `--profile DIR`: the CPU profile of each Switchyard node, summarised (self time). */
  profiles?: ProfileSummary[];
}
