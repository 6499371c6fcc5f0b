import { ErrorCode } from '@switchyard/protocol';
import { mintToken } from './auth.js';
import type { EdgeConfig } from './config.js';
import { MIN_BODY_LIMIT, type EdgeContext } from './context.js';
import { registerConsoleRoutes } from './console/admin.js';
import type { NodeSampler } from './console/sampler.js';
import { HttpError, bearer, keyMatches, parseJsonBody, route, type HttpReply, type RequestInfo } from './http.js';
import { hygieneHeaders, preflightHeaders } from './http-hygiene.js';
import { registerJobRoutes } from './jobs.js';
import { broadcastRoute } from './broadcast.js';
import type { SseHub } from './sse.js';
import type { TemplatedApp } from './uws.js';

/** Every HTTP answer's headers: the cluster's (§6), then CORS / nosniff / no-store (§9). */
export function commonHeaders(ctx: Pick<EdgeContext, 'config' | 'conns' | 'sessions' | 'registry'>, req?: { url: string; origin: string }): readonly (readonly [string, string])[] {
  return [
    ['X-WebSocket-Worker-ID', ctx.config.workerId],
    ['X-WebSocket-Local-Connections', String(ctx.conns.size)],
    ['X-WebSocket-Total-Sessions', String(ctx.sessions.count())],
    ['X-WebSocket-Total-Workers', String(ctx.registry.totalWorkers())],
    ...hygieneHeaders(req, ctx.config.allowedOrigins),
  ];
}

export function originAllowed(config: EdgeConfig, origin: string): boolean {
  const allowed = config.allowedOrigins;
  if (allowed === undefined) return true;
  return origin !== '' && allowed.includes(origin);
}

export interface RouteParts {
  /** The console's view of this node (console/sampler.ts). */
  sampler: NodeSampler;
  /** Publishes through the broker, or to this node only while it is away (messages.ts). */
  publishOrLocal(channel: string, event: string, dataJson: string, coalesce?: string): Promise<number | null>;
  /** Channels with a recorded position here (hub.ts). */
  channels(): number;
}

/**
 * The HTTP side of a node: health, readiness and stats, `POST /broadcast`, `POST /auth/token`,
 * and the registration of every route (console, presence, SSE, jobs, then the 404).
 */
export class HttpRoutes {
  readonly #ctx: EdgeContext;
  readonly #parts: RouteParts;
  #sse: SseHub | undefined;
  #brokerDownSince: number | undefined;

  constructor(ctx: EdgeContext, parts: RouteParts) {
    this.#ctx = ctx;
    this.#parts = parts;
  }

  register(app: TemplatedApp, sse: SseHub): void {
    const ctx = this.#ctx;
    this.#sse = sse;
    const common = (info?: RequestInfo) => commonHeaders(ctx, info);
    const bodyLimit = Math.max(ctx.config.maxMessageBytes, MIN_BODY_LIMIT);
    app.options('/*', route((info) => ({ status: 204, body: null, headers: preflightHeaders(info.origin, ctx.config.allowedOrigins) }), common));
    app.get('/health', route(() => this.#health(), common));
    app.get('/ready', route(() => this.#ready(), common));
    app.get('/metrics', route(async () => {
      const { contentType, body } = await ctx.metrics.render();
      return { status: 200, body, contentType };
    }, common));
    app.get('/stats', route(() => ({ status: 200, body: this.stats() }), common));
    const broadcast = broadcastRoute({
      broadcastApiKey: ctx.config.broadcastApiKey,
      userRateLimitPerS: ctx.config.userRateLimitPerS,
      verifier: ctx.verifier,
      registry: ctx.registry,
      publish: (channel, event, dataJson, coalesce) => this.#parts.publishOrLocal(channel, event, dataJson, coalesce),
      counted: () => ctx.metrics.count('broadcast', 'in'),
    });
    app.post('/broadcast', route(broadcast.handler, common, bodyLimit, broadcast.gate));
    app.post('/auth/token', route((info) => this.#mintToken(info), common, bodyLimit));
    registerConsoleRoutes(app, { config: ctx.config, registry: ctx.registry, broker: ctx.broker, jobs: ctx.jobs, sampler: this.#parts.sampler, log: ctx.log }, common);
    app.get('/presence/*', route((info) => ctx.presence.http(info), common));
    sse.register(app);
    registerJobRoutes(app, { jobs: ctx.jobs, verifier: ctx.verifier, metrics: ctx.metrics, maxJobBytes: ctx.config.maxJobBytes }, common);
    app.any('/*', route((info) => {
      throw new HttpError(404, ErrorCode.NotFound, `no route for ${info.method.toUpperCase()} ${info.url}`);
    }, common));
  }

  // ───────────────────────────── health ─────────────────────────────

  #health(): HttpReply {
    const ctx = this.#ctx;
    const reasons = this.notReadyReasons();
    const broker = ctx.broker.health();
    const kafka = ctx.jobs?.health?.().status ?? 'disabled';
    // Kafka away: jobs cannot be queued, so the node is degraded (still serving its clients).
    const status = ctx.state === 'stopped' ? 'unhealthy' : broker.healthy && kafka !== 'down' ? 'healthy' : 'degraded';
    const redisUsed = ctx.broker.kind === 'redis';
    return {
      status: status === 'unhealthy' ? 503 : 200,
      body: {
        status,
        websocket: {
          worker_id: ctx.config.workerId,
          local_connections: ctx.conns.size,
          total_sessions: ctx.sessions.count(),
          total_workers: ctx.registry.totalWorkers(),
          session_store_healthy: true,
          message_broker_healthy: broker.healthy,
        },
        redis: { status: redisUsed ? broker.status : 'disabled', latency_ms: redisUsed ? broker.latencyMs : null },
        kafka: { status: kafka },
        draining: ctx.state === 'draining',
        ready: reasons.length === 0,
        ...(reasons.length > 0 && { not_ready: reasons }),
        uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
      },
    };
  }

  #ready(): HttpReply {
    const reasons = this.notReadyReasons();
    const ready = reasons.length === 0;
    return { status: ready ? 200 : 503, body: { ready, state: this.#ctx.state, ...(!ready && { reasons }) } };
  }

  /**
   * Why a load balancer should not send new clients here. A node whose Redis has been away
   * longer than READY_REDIS_GRACE_MS can serve only its own clients, so it stops taking more
   * (it stays live: /health is still 200, degraded). A short blip does not flap readiness.
   */
  notReadyReasons(): string[] {
    const ctx = this.#ctx;
    const reasons: string[] = [];
    if (ctx.state !== 'serving') reasons.push(ctx.state === 'draining' ? 'draining' : `node is ${ctx.state}`);
    const broker = ctx.broker.health();
    const now = Date.now();
    if (broker.healthy) this.#brokerDownSince = undefined;
    else {
      this.#brokerDownSince ??= now;
      const down = now - this.#brokerDownSince;
      if (down >= ctx.config.readyRedisGraceMs) reasons.push(`redis unreachable for ${Math.round(down / 1000)} s`);
    }
    return reasons;
  }

  stats(): Record<string, unknown> {
    const ctx = this.#ctx;
    let authenticated = 0;
    let subscriptions = 0;
    for (const conn of ctx.conns) {
      if (conn.state === 'ready') authenticated++;
      subscriptions += conn.subscriptions.size;
    }
    return {
      worker_id: ctx.config.workerId,
      connections: ctx.conns.size,
      authenticated_connections: authenticated,
      sse_streams: this.#sse?.streams ?? 0,
      users: ctx.byUser.size,
      sessions: ctx.sessions.count(),
      total_sessions: ctx.sessions.count(),
      total_workers: ctx.registry.totalWorkers(),
      channels: this.#parts.channels(),
      subscriptions,
      messages_in: ctx.metrics.messagesIn,
      messages_out: ctx.metrics.messagesOut,
      uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
    };
  }

  // ───────────────────────────── broadcast and tokens ─────────────────────────────

  async #mintToken(info: RequestInfo): Promise<HttpReply> {
    const config = this.#ctx.config;
    const key = bearer(info.authorization);
    if (!config.devTokens && !keyMatches(config.adminApiKey, key)) {
      throw new HttpError(401, ErrorCode.Unauthenticated, 'Authorization: Bearer <ADMIN_API_KEY> required (or DEV_TOKENS=true)');
    }
    if (config.jwtSecret === undefined) {
      throw new HttpError(501, 'not_supported', 'minting tokens needs JWT_SECRET; this node verifies with a public key');
    }
    const body = parseJsonBody(info);
    const userId = body['user_id'];
    if (typeof userId !== 'string' || userId.length === 0 || userId.length > 200) {
      throw new HttpError(400, ErrorCode.BadFrame, '"user_id" must be a non-empty string');
    }
    const lists: Record<'permissions' | 'channels' | 'publish', string[] | undefined> = {
      permissions: undefined,
      channels: undefined,
      publish: undefined,
    };
    for (const name of ['permissions', 'channels', 'publish'] as const) {
      const value = body[name];
      if (value === undefined) continue;
      if (!Array.isArray(value) || value.length > 1000 || !value.every((v) => typeof v === 'string')) {
        throw new HttpError(400, ErrorCode.BadFrame, `"${name}" must be an array of strings`);
      }
      lists[name] = value as string[];
    }
    const ttl = body['ttl_s'] ?? 3600;
    if (!Number.isInteger(ttl) || (ttl as number) < 1 || (ttl as number) > config.maxTokenTtlS) {
      throw new HttpError(400, ErrorCode.BadFrame, `"ttl_s" must be an integer from 1 to ${config.maxTokenTtlS}`);
    }
    const { token, expiresAt } = await mintToken(config.jwtSecret, {
      sub: userId,
      ...lists,
      ttlS: ttl as number,
      ...(config.jwtIssuer !== undefined && { issuer: config.jwtIssuer }),
      ...(config.jwtAudience !== undefined && { audience: config.jwtAudience }),
    } as Parameters<typeof mintToken>[1]);
    return { status: 200, body: { token, expires_at: new Date(expiresAt * 1000).toISOString(), expires_in: ttl } };
  }
}
