import type { Broker } from '@switchyard/broker';
import { CloseCode, ErrorCode, encodeFrame, jobChannel } from '@switchyard/protocol';
import type { SessionStore, WorkerRegistry } from '@switchyard/sessions';
import { pino, type Logger } from 'pino';
import { Admission } from './admission.js';
import { AuthSessions } from './auth-session.js';
import { createVerifier } from './auth.js';
import { ClientProtocol } from './client-protocol.js';
import { createClusterParts } from './cluster.js';
import type { EdgeConfig } from './config.js';
import type { SocketData } from './connection.js';
import { NodeSampler } from './console/sampler.js';
import { mayRead, sleep, type EdgeContext, type Lifecycle } from './context.js';
import { guarded, openHandler } from './guard.js';
import { HttpRoutes, commonHeaders, originAllowed } from './http-routes.js';
import { Hub } from './hub.js';
import { UserIndex } from './user-index.js';
import type { JobAccess } from './job-access.js';
import { createEdgeJobs } from './jobs.js';
import { Messages } from './messages.js';
import { EdgeMetrics } from './metrics.js';
import { EdgePresence } from './presence.js';
import { planShed } from './rebalance.js';
import { SseHub, type SseHost } from './sse.js';
import { Subscriptions } from './subscriptions.js';
import { loadUws, type HttpRequest, type HttpResponse, type WebSocket, type us_listen_socket, type us_socket_context_t, type WebSocketBehavior } from './uws.js';

export type { JobAccess, JobSnapshotView } from './job-access.js';

/** Frames up to this size still reach the edge to be answered `too_large` + 1009. */
const MAX_PAYLOAD_CEILING = 16 * 1024 * 1024;
/** After the last client has gone, how long a draining node keeps answering /ready with 503. */
const DRAIN_LINGER_MS = 1000;
const MAX_RECONNECT_JITTER_MS = 2000;
const REBALANCE_TICK_MS = 1000;
/** Least time between two samples of the node's own numbers (the in-memory registry reads them often). */
const STATS_SAMPLE_MS = 500;

export interface EdgeDeps {
  broker?: Broker;
  sessions?: SessionStore;
  logger?: Logger;
  jobs?: JobAccess;
  registry?: WorkerRegistry;
}

/**
 * One edge node: WebSocket and HTTP on one uWS app. Data flows one way: socket → protocol
 * (client-protocol.ts: parse, auth, limits) → subscriptions / messages → broker → back out
 * through the hub (hub.ts: uWS topics, slow lanes, SSE). This class builds the parts around
 * one shared EdgeContext and owns the server's lifecycle: listen, timers, drain, stop.
 */
export class EdgeNode {
  readonly config: EdgeConfig;
  readonly broker: Broker;
  readonly sessions: SessionStore;
  readonly metrics: EdgeMetrics;
  readonly log: Logger;
  readonly registry: WorkerRegistry;
  /** Pending / authenticated / per-address counts (admission.ts), shared by every transport. */
  readonly admission: Admission;
  readonly #ctx: EdgeContext;
  readonly #hub: Hub;
  readonly #subs: Subscriptions;
  readonly #auth: AuthSessions;
  readonly #messages: Messages;
  readonly #client: ClientProtocol;
  readonly #routes: HttpRoutes;
  #listenSocket: us_listen_socket | undefined;
  #port = 0;
  #pingTimer: NodeJS.Timeout | undefined;
  #pressureTimer: NodeJS.Timeout | undefined;
  #rebalanceTimer: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  #draining: Promise<void> | undefined;
  /** What this node reports about itself in its heartbeat (the console reads it). */
  readonly #sampler: NodeSampler;

  constructor(config: EdgeConfig, deps: EdgeDeps = {}) {
    this.config = config;
    const log = deps.logger ?? pino({ level: config.logLevel, base: { worker_id: config.workerId } });
    this.log = log;
    const parts = deps.broker === undefined || deps.sessions === undefined || deps.registry === undefined ? createClusterParts(config, log) : undefined;
    const broker = deps.broker ?? parts!.broker;
    this.broker = broker;
    this.sessions = deps.sessions ?? parts!.sessions;
    this.registry = deps.registry ?? parts!.registry;
    const metrics = new EdgeMetrics(config.workerId);
    this.metrics = metrics;
    metrics.trackBroker(() => broker.health());
    const jobs = deps.jobs ?? createEdgeJobs(config, broker, log, metrics);
    const verifier = createVerifier(config);
    this.admission = new Admission(config);
    const presence = new EdgePresence({ config, broker, log, metrics, verifier, mayRead: (claims, channel) => mayRead({ jobs }, claims, channel) });
    const ctx: EdgeContext = {
      config,
      log,
      metrics,
      broker,
      sessions: this.sessions,
      registry: this.registry,
      admission: this.admission,
      verifier,
      jobs,
      presence,
      conns: new Set(),
      byId: new Map(),
      byUser: new UserIndex(),
      bySession: new Map(),
      startedAt: Date.now(),
      state: 'new',
      upgrading: 0,
    };
    this.#ctx = ctx;
    // The parts call each other through the narrow hooks given here; none imports this class.
    this.#hub = new Hub(ctx, (conn, channel, join) => this.#subs.completeJoin(conn, channel, join));
    this.#subs = new Subscriptions(ctx, this.#hub);
    this.#auth = new AuthSessions(ctx, {
      subscribe: (conn, channel, since, ref, epoch) => this.#subs.subscribe(conn, channel, since, ref, epoch),
      leave: (conn, channel) => this.#subs.leave(conn, channel),
      handleText: (conn, text) => this.#client.handleText(conn, text),
      internal: (conn, err, ref) => this.#client.internal(conn, err, ref),
    });
    this.#messages = new Messages(ctx, this.#hub, this.#auth);
    this.#client = new ClientProtocol(ctx, { auth: this.#auth, subscriptions: this.#subs, messages: this.#messages, hub: this.#hub });
    this.#sampler = new NodeSampler({ sessions: () => ctx.bySession.size, channels: () => this.#hub.channelCounts() }, STATS_SAMPLE_MS);
    this.#routes = new HttpRoutes(ctx, {
      sampler: this.#sampler,
      publishOrLocal: (channel, event, dataJson, coalesce) => this.#messages.publishOrLocal(channel, event, dataJson, coalesce),
      channels: () => this.#hub.channels,
    });
  }

  get port(): number {
    return this.#port;
  }

  get connectionCount(): number {
    return this.#ctx.conns.size;
  }

  get lifecycle(): Lifecycle {
    return this.#ctx.state;
  }

  async start(): Promise<number> {
    const ctx = this.#ctx;
    if (ctx.state !== 'new') throw new Error(`cannot start a node that is ${ctx.state}`);
    ctx.state = 'starting';
    const uws = loadUws();
    const c = this.config;
    const client = this.#client;
    const behavior: WebSocketBehavior<SocketData> = {
      // uWS hard-closes (1006) past maxPayloadLength without a word; set it above our own
      // limit so an oversize frame reaches us and gets `too_large` + 1009 as the contract says.
      // 16 MiB bounds what one client can make uWS buffer; past it uWS closes with 1006.
      maxPayloadLength: Math.max(c.maxMessageBytes * 4, MAX_PAYLOAD_CEILING),
      // We close slow consumers ourselves with 4010 at MAX_BACKPRESSURE_BYTES; uWS's own cap
      // sits above it and only ever fires for a burst between two checks, closing rather than
      // silently dropping.
      maxBackpressure: c.maxBackpressureBytes * 4,
      closeOnBackpressureLimit: 1,
      idleTimeout: c.idleTimeoutS + 8,
      sendPingsAutomatically: false,
      compression: 0,
      // An exception escaping a uWS callback would take the whole process down; each one
      // is contained and logged, and only the connection concerned is affected.
      upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) =>
        this.#guard('upgrade', () => client.onUpgrade(res, req, context), () => res.close()),
      open: openHandler<WebSocket<SocketData>>(this.log, (ws) => client.onOpen(ws)),
      message: (ws: WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean) =>
        this.#guard('message', () => client.onMessage(ws, message, isBinary)),
      drain: (ws: WebSocket<SocketData>) => this.#guard('drain', () => client.onDrain(ws.getUserData().conn)),
      pong: (ws: WebSocket<SocketData>) => {
        ws.getUserData().conn.lastSeen = Date.now();
      },
      close: (ws: WebSocket<SocketData>, code: number) => this.#guard('close', () => client.onClose(ws, code)),
    };
    const app = uws.App();
    app.ws<SocketData>('/ws', behavior).ws<SocketData>('/', behavior);
    const sse = new SseHub(this.#sseHost());
    this.#routes.register(app, sse);
    this.#hub.open(app, sse);
    this.broker.setListener((event) => this.#hub.deliver(event));
    this.broker.onReset((channel, position) => this.#hub.announceReset(channel, position));
    this.broker.onNodeMessage((payload) => this.#messages.onNodeMessage(payload));
    this.broker.onSignal((channel, frame) => this.#hub.signal(channel, frame));
    ctx.presence.start();

    await new Promise<void>((resolve, reject) => {
      app.listen(c.host, c.port, (socket) => {
        if (socket === false) {
          reject(new Error(`cannot listen on ${c.host}:${c.port} (in use, or not permitted)`));
          return;
        }
        this.#listenSocket = socket;
        this.#port = uws.us_socket_local_port(socket);
        resolve();
      });
    });
    this.#pingTimer = setInterval(() => this.#pingSweep(), c.pingIntervalS * 1000);
    this.#pressureTimer = setInterval(() => this.#hub.pressureSweep(), c.backpressureCheckMs);
    if (c.rebalance && this.broker.kind === 'redis') this.#rebalanceTimer = setInterval(() => this.#rebalance(), Math.max(REBALANCE_TICK_MS, c.heartbeatMs));
    // A node may start while Redis is away: it serves degraded (and not ready) until it is back.
    await this.broker.ready(5000).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'starting without the broker'));
    await this.registry.start(() => ({
      id: c.workerId,
      connections: ctx.conns.size,
      startedAt: ctx.startedAt,
      draining: ctx.state === 'draining',
      stats: this.#sampler.sample(),
    }));
    ctx.state = 'serving';
    this.log.info({ port: this.#port, host: c.host, broker: this.broker.kind }, 'edge listening');
    return this.#port;
  }

  #guard(where: string, fn: () => void, recover?: () => void): void {
    guarded(this.log, where, fn, recover);
  }

  /** Server-Sent Events (sse.ts) reuse the WebSocket client's admission, join, limits and close. */
  #sseHost(): SseHost {
    const ctx = this.#ctx;
    return {
      config: this.config,
      log: this.log,
      broker: this.broker,
      verifier: ctx.verifier,
      headers: (origin) => commonHeaders(ctx, { url: '/sse', origin }),
      clientAddress: (peer, forwardedFor) => this.admission.clientAddress(peer, forwardedFor),
      refusal: (origin, ip) => {
        if (ctx.state !== 'serving') return { status: 503, error: 'draining' };
        // Browsers send no Origin on a same-origin EventSource GET: only a listed one passes, or none.
        if (origin !== '' && !originAllowed(this.config, origin)) return { status: 403, error: ErrorCode.Forbidden };
        // A stream carries its token, so it is admitted as an authenticated connection.
        const refusal = this.admission.check(ip, true, ctx.upgrading);
        return refusal === undefined ? undefined : { status: refusal.status, error: refusal.code };
      },
      mayRead: (claims, channel) => mayRead(ctx, claims, channel),
      open: (socket) => this.#guard('open', () => this.#client.onOpen(socket), () => socket.close()),
      subscribe: (conn, channel, since, epoch) => this.#subs.subscribe(conn, channel, since, undefined, epoch),
      closed: (socket, code) => this.#guard('close', () => this.#client.onClose(socket, code)),
    };
  }

  #pingSweep(): void {
    // Also notices how long the broker has been away, so readiness turns on time without a probe.
    this.#routes.notReadyReasons();
    this.#client.pingSweep();
  }

  /**
   * After scale-out the new nodes start empty while the old ones keep their clients. Once a
   * second, a node far above the cluster's mean tells a bounded, random share of its clients
   * to reconnect (reason `rebalance`, jittered `after_ms`); they resume their sessions on
   * whichever node the load balancer picks, losing nothing.
   */
  #rebalance(): void {
    const ctx = this.#ctx;
    if (ctx.state !== 'serving') return;
    const c = this.config;
    const self = { id: c.workerId, connections: ctx.conns.size, draining: false };
    const nodes = this.registry.workers().map((w) => ({ id: w.id, connections: w.id === c.workerId ? ctx.conns.size : w.connections, draining: w.draining }));
    const shed = planShed(self, nodes, { threshold: c.rebalanceThreshold, maxPerS: c.rebalanceMaxPerS, minConnections: c.rebalanceMinConnections });
    if (shed === 0) return;
    const ready = [...ctx.conns].filter((conn) => conn.state === 'ready');
    this.log.info({ shed, connections: ctx.conns.size, nodes: nodes.length }, 'rebalancing: shedding clients');
    for (let i = 0; i < shed && ready.length > 0; i++) {
      const conn = ready.splice(Math.floor(Math.random() * ready.length), 1)[0]!;
      conn.send(encodeFrame({ type: 'reconnect', reason: 'rebalance', after_ms: Math.floor(Math.random() * MAX_RECONNECT_JITTER_MS) }));
      this.metrics.count('reconnect', 'out');
      conn.end(CloseCode.Restart, 'rebalance');
    }
  }

  stats(): Record<string, unknown> {
    return this.#routes.stats();
  }

  // ───────────────────────────── lifecycle ─────────────────────────────

  /**
   * Graceful drain (SIGTERM): /ready turns 503, new upgrades are refused, every client is
   * told to `reconnect` (jittered `after_ms` so they do not stampede the other nodes) and
   * closed 1012 with its session saved for resume; then the node stops. Bounded by
   * DRAIN_TIMEOUT_MS whatever the clients do.
   */
  drain(): Promise<void> {
    if (this.#draining !== undefined) return this.#draining;
    this.#draining = this.#drain();
    return this.#draining;
  }

  async #drain(): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.state !== 'serving') return this.stop();
    ctx.state = 'draining';
    const deadline = Date.now() + this.config.drainTimeoutMs;
    const jitter = Math.min(MAX_RECONNECT_JITTER_MS, Math.floor(this.config.drainTimeoutMs / 4));
    this.log.info({ connections: ctx.conns.size }, 'draining');
    // Leave the registry first so the cluster stops counting (and routing to) this node.
    await this.registry.leave().catch((err: unknown) => this.log.warn({ err }, 'leaving the registry failed'));
    for (const conn of [...ctx.conns]) {
      conn.send(encodeFrame({ type: 'reconnect', reason: 'draining', after_ms: Math.floor(Math.random() * (jitter + 1)) }));
      this.metrics.count('reconnect', 'out');
      conn.end(CloseCode.Restart, 'draining');
    }
    while (ctx.conns.size > 0 && Date.now() < deadline) await sleep(25);
    await sleep(Math.max(0, Math.min(DRAIN_LINGER_MS, deadline - Date.now())));
    await this.stop();
  }

  /** Immediate stop: closes the listener, every socket, the timers, broker and session store. Idempotent. */
  stop(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    this.#stopping = this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const ctx = this.#ctx;
    ctx.state = 'stopped';
    clearInterval(this.#pingTimer);
    clearInterval(this.#pressureTimer);
    clearInterval(this.#rebalanceTimer);
    this.#auth.stop();
    ctx.presence.stop();
    this.#rebalanceTimer = undefined;
    this.#pingTimer = undefined;
    this.#pressureTimer = undefined;
    if (this.#listenSocket !== undefined) {
      loadUws().us_listen_socket_close(this.#listenSocket);
      this.#listenSocket = undefined;
    }
    for (const conn of [...ctx.conns]) {
      if (conn.open) conn.ws!.close();
    }
    // Sessions are saved by the close handlers above; the registry flushes positions and
    // leaves; only then may the broker's connections (which the others share) go.
    await Promise.allSettled([this.sessions.close(), this.registry.close()]);
    await ctx.jobs?.close?.().catch((err: unknown) => this.log.warn({ err }, 'closing jobs failed'));
    await this.broker.close();
    this.log.info('edge stopped');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

export { jobChannel };
