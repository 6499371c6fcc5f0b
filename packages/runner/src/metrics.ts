import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What `switchyard_jobs_total{status}` counts on a runner. */
export type JobStatusLabel =
  | 'queued'
  | 'started'
  | 'progress'
  | 'retrying'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'dead_lettered'
  | 'duplicate'
  | 'handed_back'
  | 'stalled';

export interface RunnerMetricsOptions {
  /** Register into this registry (a dev node shares its own); default: a new one with process metrics. */
  registry?: Registry;
  /** An existing `switchyard_jobs_total` counter (the edge defines one) to count into. */
  jobs?: Counter<'status'>;
}

const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 2 * 3600, 6 * 3600, 24 * 3600];

/** The runner's Prometheus metrics. */
export class RunnerMetrics {
  readonly registry: Registry;
  readonly jobs: Counter<'status'>;
  readonly duration: Histogram<'outcome'>;
  readonly running: Gauge;
  readonly slots: Gauge;
  readonly lag: Gauge<'topic' | 'partition'>;

  constructor(options: RunnerMetricsOptions = {}) {
    const own = options.registry === undefined;
    this.registry = options.registry ?? new Registry();
    if (own) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.jobs =
      options.jobs ??
      new Counter({ name: 'switchyard_jobs_total', help: 'Jobs by final or intermediate status', labelNames: ['status'], registers });
    this.duration = new Histogram({
      name: 'switchyard_job_duration_seconds',
      help: 'Wall time of pipeline runs, by how they ended',
      labelNames: ['outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.running = new Gauge({ name: 'switchyard_jobs_running', help: 'Pipeline runs in progress on this runner', registers });
    this.slots = new Gauge({ name: 'switchyard_job_slots', help: 'Job slots (GPUs, or CPU slots) of this runner', registers });
    this.lag = new Gauge({
      name: 'switchyard_consumer_lag',
      help: 'Messages on the jobs and retry topics not yet committed by the runners’ group, per partition',
      labelNames: ['topic', 'partition'],
      registers,
    });
  }

  count(status: JobStatusLabel): void {
    this.jobs.labels(status).inc();
  }
}
