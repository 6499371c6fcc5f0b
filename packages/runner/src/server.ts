import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrokerHealth } from '@switchyard/broker';
import type { RunnerMetrics } from './metrics.js';
import type { Runner } from './runner.js';
import type { JobTransport } from './transport.js';

export interface RunnerServerOptions {
  host: string;
  port: number;
  runnerId: string;
  runner: Runner;
  transport: JobTransport;
  metrics: RunnerMetrics;
  redis: () => BrokerHealth;
  /** MAX_CONSUMER_LAG: past it (on the jobs topic of this runner's partitions), not ready; 0: never. */
  maxConsumerLag: number;
  /** READY_REDIS_GRACE_MS: Redis unreachable this long, not ready. */
  readyRedisGraceMs: number;
}

/** How often readiness samples Redis health, so an outage is timed even when nobody asks. */
const READINESS_SAMPLE_MS = 1000;

/** The runner's own HTTP: `/health`, `/ready` (for Kubernetes probes) and `/metrics`. */
export class RunnerServer {
  readonly #o: RunnerServerOptions;
  readonly #server: Server;
  readonly #startedAt = Date.now();
  readonly #sampler: NodeJS.Timeout;
  #redisDownSince: number | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: RunnerServerOptions) {
    this.#o = options;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal error', code: 'internal' }));
      });
    });
    this.#server.keepAliveTimeout = 5000;
    this.#sampler = setInterval(() => this.#sampleRedis(), READINESS_SAMPLE_MS);
    this.#sampler.unref();
  }

  #sampleRedis(): void {
    if (this.#o.redis().healthy) this.#redisDownSince = undefined;
    else this.#redisDownSince ??= Date.now();
  }

  /**
   * Why this runner should not count as ready: not (yet) in the consumer group, stopping,
   * Redis away past READY_REDIS_GRACE_MS (it cannot record or announce anything), or more
   * jobs waiting on its partitions than MAX_CONSUMER_LAG (it is falling behind: scale out).
   */
  notReadyReasons(): string[] {
    const reasons: string[] = [];
    if (this.#o.runner.stopping) reasons.push('draining');
    else if (!this.#o.transport.health().ready) reasons.push('not consuming (joining the consumer group, or Kafka unreachable)');
    this.#sampleRedis();
    if (this.#redisDownSince !== undefined) {
      const down = Date.now() - this.#redisDownSince;
      if (down >= this.#o.readyRedisGraceMs) reasons.push(`redis unreachable for ${Math.round(down / 1000)} s`);
    }
    const lag = this.#o.transport.lag?.();
    if (this.#o.maxConsumerLag > 0 && lag !== undefined && lag.jobs > this.#o.maxConsumerLag) {
      reasons.push(`consumer lag ${lag.jobs} over MAX_CONSUMER_LAG (${this.#o.maxConsumerLag})`);
    }
    return reasons;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#o.port, this.#o.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return (this.#server.address() as AddressInfo).port;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-runner-id': this.#o.runnerId });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return json(405, { error: 'only GET', code: 'method_not_allowed' });
    if (path === '/health') {
      const kafka = this.#o.transport.health();
      const redis = this.#o.redis();
      const down = kafka.status === 'down' || !redis.healthy;
      const status = this.#o.runner.stopping ? 'draining' : down ? 'degraded' : 'healthy';
      const reasons = this.notReadyReasons();
      const lag = this.#o.transport.lag?.();
      return json(200, {
        status,
        runner_id: this.#o.runnerId,
        slots: this.#o.runner.slotCount,
        running: this.#o.runner.running,
        kafka: {
          status: kafka.status,
          ...(lag !== undefined && { lag: { jobs: lag.jobs, retry: lag.retry, measured_at: new Date(lag.measuredAt).toISOString() } }),
          max_consumer_lag: this.#o.maxConsumerLag,
        },
        redis: { status: redis.status, latency_ms: redis.latencyMs },
        ready: reasons.length === 0,
        ...(reasons.length > 0 && { not_ready: reasons }),
        uptime_s: Math.round((Date.now() - this.#startedAt) / 1000),
      });
    }
    if (path === '/ready') {
      const reasons = this.notReadyReasons();
      const ready = reasons.length === 0;
      const state = this.#o.runner.stopping ? 'draining' : this.#o.transport.health().ready ? 'consuming' : 'starting';
      return json(ready ? 200 : 503, { ready, state, ...(!ready && { reasons }) });
    }
    if (path === '/metrics') {
      const body = await this.#o.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.#o.metrics.registry.contentType });
      res.end(body);
      return;
    }
    return json(404, { error: `no route for GET ${path}`, code: 'not_found' });
  }

  close(): Promise<void> {
    clearInterval(this.#sampler);
    this.#closing ??= new Promise((resolve) => {
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
    return this.#closing;
  }
}
