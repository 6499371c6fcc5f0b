import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

type Direction = 'in' | 'out';

/**
 * The node's Prometheus metrics (PROTOCOL.md §6). A registry per node, not the global one,
 * so several nodes can live in one process (tests, `switchyard dev`).
 */
export class EdgeMetrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly messages: Counter<'type' | 'direction'>;
  readonly sessionDuration: Histogram;
  readonly deliveryLatency: Histogram;
  readonly jobs: Counter<'status'>;
  /** Plain totals for /stats, kept beside the labelled counters so /stats needs no scrape. */
  messagesIn = 0;
  messagesOut = 0;
  /**
   * Counts since the last scrape, by direction and type: a frame costs an add here, and
   * prom-client (which hashes the label set on every `inc`) sees them once per scrape.
   */
  readonly #pending = new Map<string, { type: string; direction: Direction; n: number }>();

  constructor(workerId: string) {
    this.registry.setDefaultLabels({});
    collectDefaultMetrics({ register: this.registry });
    this.connections = new Gauge({
      name: 'switchyard_connections',
      help: 'Open WebSocket connections on this node',
      labelNames: ['worker_id'],
      registers: [this.registry],
    });
    this.connections.labels(workerId).set(0);
    const pending = this.#pending;
    this.messages = new Counter({
      name: 'switchyard_messages_total',
      help: 'WebSocket frames by type and direction (out counts each delivery to a socket)',
      labelNames: ['type', 'direction'],
      registers: [this.registry],
      collect() {
        for (const p of pending.values()) {
          if (p.n === 0) continue;
          this.labels(p.type, p.direction).inc(p.n);
          p.n = 0;
        }
      },
    });
    this.sessionDuration = new Histogram({
      name: 'switchyard_session_duration_seconds',
      help: 'Lifetime of WebSocket connections',
      buckets: [1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
      registers: [this.registry],
    });
    this.deliveryLatency = new Histogram({
      name: 'switchyard_delivery_latency_seconds',
      help: 'From publish to hand-off to the sockets of this node',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    this.jobs = new Counter({
      name: 'switchyard_jobs_total',
      help: 'Jobs by final or intermediate status',
      labelNames: ['status'],
      registers: [this.registry],
    });
    this.#gauge = this.connections.labels(workerId);
  }

  readonly #gauge: ReturnType<Gauge<'worker_id'>['labels']>;

  /**
   * Redis as the node sees it, read at scrape time: `switchyard_redis_up` (1 reachable, 0 down;
   * absent while the node runs without Redis) and the last measured round trip.
   */
  trackBroker(health: () => { status: string; latencyMs: number | null }): void {
    new Gauge({
      name: 'switchyard_redis_up',
      help: 'Whether this node reaches Redis (1) or not (0); absent without Redis',
      registers: [this.registry],
      collect() {
        const h = health();
        if (h.status === 'disabled') this.reset();
        else this.set(h.status === 'ok' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'switchyard_redis_latency_seconds',
      help: 'Last measured round trip to Redis',
      registers: [this.registry],
      collect() {
        const h = health();
        if (h.latencyMs === null) this.reset();
        else this.set(h.latencyMs / 1000);
      },
    });
  }

  setConnections(n: number): void {
    this.#gauge.set(n);
  }

  count(type: string, direction: Direction, n = 1): void {
    if (n <= 0) return;
    const key = direction + type;
    const p = this.#pending.get(key);
    if (p === undefined) this.#pending.set(key, { type, direction, n });
    else p.n += n;
    if (direction === 'in') this.messagesIn += n;
    else this.messagesOut += n;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
