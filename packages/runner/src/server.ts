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
}

/** The runner's own HTTP: `/health`, `/ready` (for Kubernetes probes) and `/metrics`. */
export class RunnerServer {
  readonly #o: RunnerServerOptions;
  readonly #server: Server;
  readonly #startedAt = Date.now();
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
      return json(200, {
        status,
        runner_id: this.#o.runnerId,
        slots: this.#o.runner.slotCount,
        running: this.#o.runner.running,
        kafka: { status: kafka.status },
        redis: { status: redis.status, latency_ms: redis.latencyMs },
        uptime_s: Math.round((Date.now() - this.#startedAt) / 1000),
      });
    }
    if (path === '/ready') {
      const ready = this.#o.transport.health().ready && !this.#o.runner.stopping;
      return json(ready ? 200 : 503, { ready, state: this.#o.runner.stopping ? 'draining' : ready ? 'consuming' : 'starting' });
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
    this.#closing ??= new Promise((resolve) => {
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
    return this.#closing;
  }
}
