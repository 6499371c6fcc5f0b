import { timingSafeEqual } from 'node:crypto';
import { BrokerUnavailableError, type Broker, type BrokerEvent, type ChannelPosition, type HistoryPage } from '@switchyard/broker';
import {
  CloseCode,
  ErrorCode,
  encodeError,
  encodeFrame,
  encodeLocalEvent,
  isValidChannel,
  jobChannel,
  parseClientFrame,
  type ClientFrame,
  type Json,
  type Ref,
  type ServerFrame,
} from '@switchyard/protocol';
import { pino, type Logger } from 'pino';
import { createVerifier, mintToken, type Claims, type TokenVerifier } from './auth.js';
import type { EdgeConfig } from './config.js';
import { Connection, type JoinState, type SocketData } from './connection.js';
import { AuthError } from './errors.js';
import { HttpError, bearer, parseJsonBody, route, writeReply, type HttpReply, type RequestInfo } from './http.js';
import { EdgeMetrics } from './metrics.js';
import { canPublish, canSubscribe } from './permissions.js';
import { planShed } from './rebalance.js';
import { SlowLane, coalesceKey } from './coalesce.js';
import { newSessionId, type SessionRecord, type SessionStore, type WorkerRegistry } from '@switchyard/sessions';
import { createClusterParts } from './cluster.js';
import { createEdgeJobs, registerJobRoutes } from './jobs.js';
import { loadUws, type HttpRequest, type HttpResponse, type TemplatedApp, type WebSocket, type us_listen_socket, type us_socket_context_t, type WebSocketBehavior } from './uws.js';

/** Frames up to this size still reach the edge to be answered `too_large` + 1009. */
const MAX_PAYLOAD_CEILING = 16 * 1024 * 1024;
/** Frames a client may send while its first-frame `auth` is being verified. */
const MAX_QUEUED_DURING_AUTH = 32;
/** Live events buffered per joining subscription before it gives up on exact recovery. */
const MAX_JOIN_BUFFER = 10_000;
/** Longest a join waits for this node's live stream to catch up with the history it sent. */
const JOIN_CATCH_UP_MS = 1000;
/** setTimeout's ceiling; longer token lifetimes are re-armed. */
const MAX_TIMER_MS = 2_147_483_647;
/** After the last client has gone, how long a draining node keeps answering /ready with 503. */
const DRAIN_LINGER_MS = 1000;
const MAX_RECONNECT_JITTER_MS = 2000;
const REBALANCE_TICK_MS = 1000;
/** How long a subscribe waits for an earlier join of the same channel to finish. */
const JOIN_WAIT_MS = 10_000;
const JOIN_POLL_MS = 10;
/** How long a resume waits for the node that holds a session to hand it over. */
const HANDOVER_TIMEOUT_MS = 500;
/** Close code for a connection whose session was resumed by a newer connection (extension). */
const SESSION_TAKEN_OVER = 4011;

/**
 * Who may subscribe to `job:<id>` and cancel it, and the job API behind `/jobs` (jobs.ts;
 * @switchyard/jobs' JobService implements it). Built from KAFKA_SERVERS when not given.
 */
export interface JobAccess {
  ownerOf(jobId: string): Promise<string | undefined>;
  /** `byUser` undefined: the caller has checked the rights itself. */
  cancel?(jobId: string, byUser: string | undefined): Promise<'cancelled' | 'not_found' | 'forbidden' | 'finished'>;
  /** `POST /jobs`: validates and queues a job owned by `owner`; throws a JobError. */
  submit?(body: Record<string, unknown>, owner: string): Promise<{ jobId: string }>;
  /** `GET /jobs/:id`. */
  status?(jobId: string): Promise<{ owner?: string } | undefined>;
  /**
   * The job's status and the seq (in `epoch`) of the last job event it reflects, for the
   * `snapshot` frame a `job:<id>` subscription starts with; undefined when there is none.
   */
  snapshot?(jobId: string): Promise<JobSnapshotView | undefined>;
  /** `/health`'s `kafka.status`. */
  health?(): { status: string };
  /** Called once when the node stops, before its broker closes. */
  close?(): Promise<void>;
}

/** A job's status as of the job event with seq `seq` (in `epoch`); see JobAccess.snapshot. */
export interface JobSnapshotView {
  seq: number;
  epoch: string;
  data: Json;
}

export interface EdgeDeps {
  broker?: Broker;
  sessions?: SessionStore;
  logger?: Logger;
  jobs?: JobAccess;
  registry?: WorkerRegistry;
}

type Lifecycle = 'new' | 'starting' | 'serving' | 'draining' | 'stopped';

/**
 * One edge node: WebSocket and HTTP on one uWS app. Data flows one way: socket → protocol
 * (parse) → this class (auth, limits, routing) → broker → back out through uWS topics.
 */
export class EdgeNode {
  readonly config: EdgeConfig;
  readonly broker: Broker;
  readonly sessions: SessionStore;
  readonly metrics: EdgeMetrics;
  readonly log: Logger;
  readonly #jobs: JobAccess | undefined;
  readonly registry: WorkerRegistry;
  readonly #verifier: TokenVerifier;
  readonly #conns = new Set<Connection>();
  readonly #byId = new Map<string, Connection>();
  readonly #byUser = new Map<string, Set<Connection>>();
  readonly #bySession = new Map<string, Connection>();
  /** Connections joining a channel, to receive events that arrive meanwhile. */
  readonly #joiners = new Map<string, Set<Connection>>();
  /** Live subscribers per channel (fast and slow alike). */
  readonly #members = new Map<string, Set<Connection>>();
  /** Subscribers of a channel currently served from their own SlowLane instead of the uWS topic. */
  readonly #slowMembers = new Map<string, Set<Connection>>();
  /** Latest seq seen per channel with local subscribers: where a closing session stood. */
  readonly #channelSeq = new Map<string, { seq: number; epoch: string }>();
  #app: TemplatedApp | undefined;
  #listenSocket: us_listen_socket | undefined;
  #port = 0;
  #upgrading = 0;
  #state: Lifecycle = 'new';
  #pingTimer: NodeJS.Timeout | undefined;
  #pressureTimer: NodeJS.Timeout | undefined;
  #rebalanceTimer: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  #draining: Promise<void> | undefined;
  #brokerDownSince: number | undefined;
  readonly #handovers = new Map<string, () => void>();
  #handoverSeq = 0;
  readonly #startedAt = Date.now();

  constructor(config: EdgeConfig, deps: EdgeDeps = {}) {
    this.config = config;
    this.log = deps.logger ?? pino({ level: config.logLevel, base: { worker_id: config.workerId } });
    const parts = deps.broker === undefined || deps.sessions === undefined || deps.registry === undefined ? createClusterParts(config, this.log) : undefined;
    this.broker = deps.broker ?? parts!.broker;
    this.sessions = deps.sessions ?? parts!.sessions;
    this.registry = deps.registry ?? parts!.registry;
    this.metrics = new EdgeMetrics(config.workerId);
    this.#jobs = deps.jobs ?? createEdgeJobs(config, this.broker, this.log, this.metrics);
    this.#verifier = createVerifier(config);
  }

  get port(): number {
    return this.#port;
  }

  get connectionCount(): number {
    return this.#conns.size;
  }

  get lifecycle(): Lifecycle {
    return this.#state;
  }

  async start(): Promise<number> {
    if (this.#state !== 'new') throw new Error(`cannot start a node that is ${this.#state}`);
    this.#state = 'starting';
    const uws = loadUws();
    const c = this.config;
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
        this.#guard('upgrade', () => this.#onUpgrade(res, req, context), () => res.close()),
      open: (ws: WebSocket<SocketData>) => this.#guard('open', () => this.#onOpen(ws), () => ws.end(1011, 'internal_error')),
      message: (ws: WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean) =>
        this.#guard('message', () => this.#onMessage(ws, message, isBinary)),
      drain: (ws: WebSocket<SocketData>) => this.#guard('drain', () => this.#flushSlowLane(ws.getUserData().conn)),
      pong: (ws: WebSocket<SocketData>) => {
        ws.getUserData().conn.lastSeen = Date.now();
      },
      close: (ws: WebSocket<SocketData>, code: number) => this.#guard('close', () => this.#onClose(ws, code)),
    };
    const app = uws.App();
    app.ws<SocketData>('/ws', behavior).ws<SocketData>('/', behavior);
    this.#routes(app);
    this.#app = app;
    this.broker.setListener((event) => this.#deliver(event));
    this.broker.onReset((channel, position) => this.#announceReset(channel, position));
    this.broker.onNodeMessage((payload) => this.#onNodeMessage(payload));

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
    this.#pressureTimer = setInterval(() => this.#pressureSweep(), c.backpressureCheckMs);
    if (c.rebalance && this.broker.kind === 'redis') this.#rebalanceTimer = setInterval(() => this.#rebalance(), Math.max(REBALANCE_TICK_MS, c.heartbeatMs));
    // A node may start while Redis is away: it serves degraded (and not ready) until it is back.
    await this.broker.ready(5000).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'starting without the broker'));
    await this.registry.start(() => ({
      id: c.workerId,
      connections: this.#conns.size,
      startedAt: this.#startedAt,
      draining: this.#state === 'draining',
    }));
    this.#state = 'serving';
    this.log.info({ port: this.#port, host: c.host, broker: this.broker.kind }, 'edge listening');
    return this.#port;
  }

  #guard(where: string, fn: () => void, recover?: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err, where }, 'handler failed');
      try {
        recover?.();
      } catch {
        /* the socket is already gone */
      }
    }
  }

  // ───────────────────────────── upgrade and auth ─────────────────────────────

  #onUpgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const key = req.getHeader('sec-websocket-key');
    const protocols = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const origin = req.getHeader('origin');
    const token = bearer(req.getHeader('authorization')) ?? (req.getQuery('token') || undefined);
    const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
    const protocol = protocols.split(',')[0]?.trim() ?? '';

    const refuse = (status: number, code: string, error: string) =>
      writeReply(res, { status, body: { error, code } }, this.#commonHeaders());
    if (this.#state !== 'serving') return refuse(503, 'draining', 'node is not accepting connections');
    if (!this.#originAllowed(origin)) return refuse(403, ErrorCode.Forbidden, 'origin not allowed');
    if (this.#conns.size + this.#upgrading >= this.config.maxTotalConnections) {
      return refuse(503, ErrorCode.TooManyConnections, 'node is at MAX_TOTAL_CONNECTIONS');
    }
    const upgrade = (claims?: Claims) => {
      const data: SocketData = { conn: new Connection(ip, this.config.rateLimitBurst, claims) };
      res.upgrade(data, key, protocol, extensions, context);
    };
    if (token === undefined) return upgrade();
    const badToken = (err: unknown) => {
      const reason = err instanceof AuthError ? err.reason : 'token_malformed';
      const message = err instanceof AuthError ? err.message : 'token rejected';
      this.log.debug({ reason, ip }, 'upgrade refused: bad token');
      refuse(401, reason, message);
    };

    // With the key in hand the token is checked here and the upgrade completes in this
    // handler. An upgrade completed later (after an await) can be closed by uWebSockets
    // right after `open` (uNetworking/uWebSockets#1928, unfixed in the build used here).
    let claims: Claims | undefined;
    try {
      claims = this.#verifier.verifySync(token);
    } catch (err) {
      return badToken(err);
    }
    if (claims !== undefined) return upgrade(claims);

    // Only a JWKS key not yet cached gets here: fetch, then upgrade. Not corked, which
    // avoids that bug at the price of a uWS warning on stderr for these rare upgrades.
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    this.#upgrading++;
    this.#verifier.verify(token).then(
      (verified) => {
        this.#upgrading--;
        if (aborted) return;
        if (this.#state !== 'serving') return res.cork(() => refuse(503, 'draining', 'node is not accepting connections'));
        upgrade(verified);
      },
      (err: unknown) => {
        this.#upgrading--;
        if (!aborted) res.cork(() => badToken(err));
      },
    );
  }

  #originAllowed(origin: string): boolean {
    const allowed = this.config.allowedOrigins;
    if (allowed === undefined) return true;
    return origin !== '' && allowed.includes(origin);
  }

  #onOpen(ws: WebSocket<SocketData>): void {
    const conn = ws.getUserData().conn;
    conn.ws = ws;
    this.#conns.add(conn);
    this.#byId.set(conn.id, conn);
    this.metrics.setConnections(this.#conns.size);
    if (this.#state !== 'serving') {
      conn.end(CloseCode.Restart, 'draining');
      return;
    }
    if (conn.upgradeClaims !== undefined) {
      conn.state = 'authenticating';
      void this.#completeAuth(conn, conn.upgradeClaims, undefined, undefined);
      return;
    }
    conn.authTimer = setTimeout(() => {
      if (conn.state === 'pending' || conn.state === 'authenticating') this.#authFail(conn, 'auth_timeout', 'no auth frame within AUTH_TIMEOUT_MS');
    }, this.config.authTimeoutMs);
  }

  #authFail(conn: Connection, code: string, error: string, closeCode: number = CloseCode.AuthFailed): void {
    conn.send(encodeFrame({ type: 'auth_error', error, code }));
    this.metrics.count('auth_error', 'out');
    conn.end(closeCode, code);
  }

  async #onAuthFrame(conn: Connection, token: string, sessionId: string | undefined, ref: Ref | undefined): Promise<void> {
    const refreshing = conn.state === 'ready';
    if (!refreshing) conn.state = 'authenticating';
    let claims: Claims;
    try {
      claims = await this.#verifier.verify(token);
    } catch (err) {
      if (!conn.open) return;
      const reason = err instanceof AuthError ? err.reason : 'token_malformed';
      const message = err instanceof AuthError ? err.message : 'token rejected';
      return this.#authFail(conn, reason, message);
    }
    if (!conn.open) return;
    if (refreshing) return this.#refreshAuth(conn, claims, ref);
    await this.#completeAuth(conn, claims, sessionId, ref);
  }

  /** A fresh token on a live connection: same user, new expiry and rights. */
  #refreshAuth(conn: Connection, claims: Claims, ref: Ref | undefined): void {
    if (claims.sub !== conn.userId) {
      conn.send(encodeError(ErrorCode.Forbidden, 'a refreshed token must have the same sub', ref));
      return;
    }
    conn.claims = claims;
    this.#armExpiry(conn);
    this.#sendAuthSuccess(conn, false, ref);
  }

  async #completeAuth(conn: Connection, claims: Claims, sessionId: string | undefined, ref: Ref | undefined): Promise<void> {
    clearTimeout(conn.authTimer);
    conn.authTimer = undefined;
    const mine = this.#byUser.get(claims.sub);
    if (mine !== undefined && mine.size >= this.config.maxConnectionsPerUser) {
      return this.#authFail(conn, ErrorCode.TooManyConnections, 'too_many_connections', CloseCode.TooManyConnections);
    }
    // Reserve the slot before any await so two racing connections of one user cannot both pass.
    conn.claims = claims;
    this.#addToUser(conn);
    // The same limit across the cluster, decided atomically in Redis. If Redis cannot answer,
    // the node's own count (above) still holds: admission fails open, not closed.
    const admitted = await this.registry.admitConnection(conn.id, claims.sub, this.config.maxConnectionsPerUser).catch((err: unknown) => {
      this.log.warn({ err }, 'cluster-wide admission unavailable; local limit only');
      return true;
    });
    if (!conn.open) return;
    if (!admitted) return this.#authFail(conn, ErrorCode.TooManyConnections, 'too_many_connections', CloseCode.TooManyConnections);

    let record: SessionRecord | undefined;
    if (sessionId !== undefined) {
      try {
        const loaded = await this.sessions.load(sessionId);
        if (loaded !== undefined && loaded.userId === claims.sub) record = loaded;
      } catch (err) {
        this.log.warn({ err, sessionId }, 'session load failed; starting a new session');
      }
      if (!conn.open) return;
    }
    const resumed = record !== undefined;
    if (record !== undefined) {
      const previous = this.#bySession.get(record.id);
      if (previous !== undefined && previous !== conn) {
        previous.session = undefined;
        previous.end(SESSION_TAKEN_OVER, 'session_resumed_elsewhere');
      }
    }
    if (record !== undefined && record.live === true && record.node !== undefined && record.node !== this.config.workerId) {
      record = await this.#settle(record);
      if (!conn.open) return;
    }
    conn.session = record ?? { id: newSessionId(), userId: claims.sub, subscriptions: {} };
    conn.session.node = this.config.workerId;
    conn.session.live = true;
    this.#bySession.set(conn.session.id, conn);
    conn.state = 'ready';
    this.#armExpiry(conn);
    this.#sendAuthSuccess(conn, resumed, ref);
    void this.sessions.save(conn.session).catch((err: unknown) => this.log.warn({ err }, 'session save failed'));

    if (record !== undefined) {
      for (const [channel, position] of Object.entries(record.subscriptions)) {
        // Rights are checked again: the new token may grant less than the one that made the session.
        this.#subscribe(conn, channel, position.seq, undefined, position.epoch).catch((err: unknown) => this.#internal(conn, err, undefined));
      }
    }
    const queued = conn.queued.splice(0);
    for (const text of queued) this.#handleText(conn, text);
  }

  /**
   * A session still marked live on another node: that node is closing the old connection
   * right now, still holds it (a half-open connection it has not noticed), or died. Ask it
   * through its inbox to hand the session over: a live node closes its connection (4011) and
   * saves exact positions, then answers; the session is read again. No answer within
   * HANDOVER_TIMEOUT_MS means the node is gone: its last recorded channel positions are the
   * resume point (it had handed those events to the connection).
   */
  async #settle(record: SessionRecord): Promise<SessionRecord> {
    const node = record.node!;
    const answered = (await this.registry.checkAlive(node).catch(() => false)) && (await this.#requestHandover(node, record.id));
    if (answered) return (await this.sessions.load(record.id).catch(() => undefined)) ?? record;
    await this.#adoptPositions(record);
    return record;
  }

  #requestHandover(node: string, sessionId: string): Promise<boolean> {
    const request = `${this.config.workerId}:${++this.#handoverSeq}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#handovers.delete(request);
        resolve(false);
      }, HANDOVER_TIMEOUT_MS);
      this.#handovers.set(request, () => {
        clearTimeout(timer);
        this.#handovers.delete(request);
        resolve(true);
      });
      this.broker.sendToNode(node, `h\t${request}\t${this.config.workerId}\t${sessionId}`).catch(() => {
        clearTimeout(timer);
        this.#handovers.delete(request);
        resolve(false);
      });
    });
  }

  /** Another node resumes a session held here: close ours, save, then answer (from #onClose). */
  #handOver(from: string, request: string, sessionId: string): void {
    const conn = this.#bySession.get(sessionId);
    if (conn === undefined || !conn.open) return this.#replyHandover(from, request);
    conn.handover = { from, request };
    conn.end(SESSION_TAKEN_OVER, 'session_resumed_elsewhere');
  }

  #replyHandover(to: string, request: string): void {
    this.broker.sendToNode(to, `H\t${request}\t`).catch((err: unknown) => this.log.warn({ err }, 'handover reply failed'));
  }

  /**
   * A session still marked live on another node was not closed cleanly: that node died
   * (kill -9, crash) before saving where the client stood. It did record, in batches, the
   * latest seq it handed out per channel; a live subscriber had been given those events, so
   * they are the better resume point.
   */
  async #adoptPositions(record: SessionRecord): Promise<void> {
    let positions: Record<string, { seq: number; epoch: string }>;
    try {
      positions = await this.registry.positionsOf(record.node!);
    } catch (err) {
      this.log.warn({ err }, 'could not read the previous node’s positions');
      return;
    }
    for (const [channel, mine] of Object.entries(record.subscriptions)) {
      const theirs = positions[channel];
      if (theirs !== undefined && theirs.epoch === mine.epoch && theirs.seq > mine.seq) record.subscriptions[channel] = theirs;
    }
  }

  #sendAuthSuccess(conn: Connection, resumed: boolean, ref: Ref | undefined): void {
    const frame: ServerFrame = {
      type: 'auth_success',
      connection_id: conn.id,
      user_id: conn.userId,
      session_id: conn.session?.id ?? '',
      node_id: this.config.workerId,
      resumed,
    };
    if (ref !== undefined) frame.ref = ref;
    conn.send(encodeFrame(frame));
    this.metrics.count('auth_success', 'out');
  }

  #addToUser(conn: Connection): void {
    let set = this.#byUser.get(conn.userId);
    if (set === undefined) {
      set = new Set();
      this.#byUser.set(conn.userId, set);
    }
    set.add(conn);
  }

  /** At `exp` the connection gets `auth_expired` and 4001, unless a fresh `auth` moved `exp` on. */
  #armExpiry(conn: Connection): void {
    clearTimeout(conn.expiryTimer);
    const exp = conn.claims?.exp;
    if (exp === undefined) return;
    const delay = exp * 1000 - Date.now();
    conn.expiryTimer = setTimeout(
      () => {
        if (!conn.open || conn.claims?.exp !== exp) return;
        if (exp * 1000 > Date.now()) return this.#armExpiry(conn);
        conn.send(encodeFrame({ type: 'auth_expired' }));
        this.metrics.count('auth_expired', 'out');
        conn.end(CloseCode.AuthFailed, 'token_expired');
      },
      Math.min(Math.max(delay, 0), MAX_TIMER_MS),
    );
  }

  // ───────────────────────────── frames ─────────────────────────────

  #onMessage(ws: WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean): void {
    const conn = ws.getUserData().conn;
    const now = Date.now();
    conn.lastSeen = now;
    if (!conn.take(now, this.config.rateLimitPerS, this.config.rateLimitBurst)) {
      this.metrics.count('rate_limited', 'in');
      conn.send(encodeError(ErrorCode.RateLimited, 'more frames than RATE_LIMIT_PER_S / RATE_LIMIT_BURST allow'));
      conn.end(CloseCode.RateLimited, 'rate_limited');
      return;
    }
    if (message.byteLength > this.config.maxMessageBytes) {
      this.metrics.count('too_large', 'in');
      conn.send(encodeError(ErrorCode.TooLarge, `frame larger than MAX_MESSAGE_BYTES (${this.config.maxMessageBytes})`));
      conn.end(CloseCode.TooLarge, 'too_large');
      return;
    }
    if (isBinary) {
      this.metrics.count('binary', 'in');
      if (conn.state !== 'ready') return this.#rejectBeforeAuth(conn, 'binary frame before auth');
      conn.send(encodeError(ErrorCode.BadFrame, 'binary frames are not accepted; send JSON text frames'));
      return;
    }
    // Copies out of uWS's buffer, which is reused after this callback returns.
    const text = Buffer.from(message).toString('utf8');
    if (conn.state === 'authenticating') {
      if (conn.queued.length >= MAX_QUEUED_DURING_AUTH) return this.#rejectBeforeAuth(conn, 'too many frames before auth completed');
      conn.queued.push(text);
      return;
    }
    this.#handleText(conn, text);
  }

  #rejectBeforeAuth(conn: Connection, why: string): void {
    this.#authFail(conn, ErrorCode.Unauthenticated, `the first frame must be auth (${why})`);
  }

  #handleText(conn: Connection, text: string): void {
    if (!conn.open) return;
    const parsed = parseClientFrame(text);
    if (!parsed.ok) {
      this.metrics.count('invalid', 'in');
      if (conn.state !== 'ready') return this.#rejectBeforeAuth(conn, parsed.error);
      conn.send(encodeError(parsed.code, parsed.error, parsed.ref));
      this.metrics.count('error', 'out');
      return;
    }
    const frame = parsed.frame;
    this.metrics.count(frame.type, 'in');
    if (conn.state !== 'ready') {
      if (frame.type !== 'auth') return this.#rejectBeforeAuth(conn, `got "${frame.type}"`);
      void this.#onAuthFrame(conn, frame.token, frame.session_id, frame.ref).catch((err: unknown) => this.#internal(conn, err, frame.ref));
      return;
    }
    this.#dispatch(conn, frame).catch((err: unknown) => this.#internal(conn, err, frame.ref));
  }

  #internal(conn: Connection, err: unknown, ref: Ref | undefined): void {
    this.log.error({ err, conn: conn.id }, 'frame handling failed');
    conn.send(encodeError(ErrorCode.Unavailable, 'the server could not complete this request', ref));
  }

  async #dispatch(conn: Connection, frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case 'ping':
        conn.send(frame.ref === undefined ? '{"type":"pong"}' : encodeFrame({ type: 'pong', ref: frame.ref }));
        this.metrics.count('pong', 'out');
        return;
      case 'auth':
        return this.#onAuthFrame(conn, frame.token, frame.session_id, frame.ref);
      case 'subscribe':
        return this.#subscribe(conn, frame.channel, frame.since, frame.ref, undefined, frame.snapshot !== false);
      case 'unsubscribe':
        return this.#unsubscribe(conn, frame.channel, frame.ref);
      case 'publish':
        return this.#publish(conn, frame.channel, frame.event, frame.data, frame.ref, frame.coalesce);
      case 'direct':
        return this.#direct(conn, frame.to, frame.data, frame.ref);
      case 'cancel':
        return this.#cancel(conn, frame.job_id, frame.ref);
    }
  }

  // ───────────────────────────── channels ─────────────────────────────

  async #mayRead(claims: Claims, channel: string): Promise<boolean> {
    if (canSubscribe(claims, channel)) return true;
    if (channel.startsWith('job:') && this.#jobs !== undefined) {
      const owner = await this.#jobs.ownerOf(channel.slice(4));
      return owner !== undefined && owner === claims.sub;
    }
    return false;
  }

  async #subscribe(conn: Connection, channel: string, since: number | undefined, ref: Ref | undefined, epoch?: string, withSnapshot = true): Promise<void> {
    const claims = conn.claims!;
    const result = (extra: { success: boolean; error?: string; seq?: number }) => {
      conn.send(encodeFrame({ type: 'subscription_result', channel, ...extra, ...(ref !== undefined && { ref }) }));
      this.metrics.count('subscription_result', 'out');
    };
    // A subscribe to a channel still joining (a resumed session restores its channels while the
    // client, reconnected, subscribes again) waits for that join, then answers as a repeat.
    if (!(await this.#joined(conn, channel))) return;
    const already = conn.subscriptions.has(channel);
    if (!already && conn.subscriptions.size + conn.joining.size >= this.config.maxSubscriptionsPerConnection) {
      return result({ success: false, error: ErrorCode.TooManySubscriptions });
    }
    if (!(await this.#mayRead(claims, channel))) return result({ success: false, error: ErrorCode.Forbidden });
    if (!conn.open) return;
    // Checked again after the await: subscribes pipelined by one client must not overshoot the limit together.
    if (!conn.subscriptions.has(channel) && conn.subscriptions.size + conn.joining.size >= this.config.maxSubscriptionsPerConnection) {
      return result({ success: false, error: ErrorCode.TooManySubscriptions });
    }
    if (!(await this.#joined(conn, channel))) return;
    if (conn.subscriptions.has(channel)) {
      if (since === undefined) {
        const position = await this.broker.position(channel);
        return result({ success: true, seq: position.seq });
      }
      // A repeated subscribe with `since` asks for a replay: rejoin from that point.
      this.#leave(conn, channel);
    }
    await this.#join(conn, channel, since, ref, epoch, withSnapshot);
  }

  /** Waits (bounded) until no join of `channel` is in progress; false when the connection went away. */
  async #joined(conn: Connection, channel: string): Promise<boolean> {
    const deadline = Date.now() + JOIN_WAIT_MS;
    while (conn.joining.has(channel) && conn.open && Date.now() < deadline) await sleep(JOIN_POLL_MS);
    return conn.open && !conn.joining.has(channel);
  }

  /**
   * Joins a channel without a gap or a duplicate at the seam between history and live:
   * events that arrive while the position or history is fetched are buffered on the
   * connection, then history, then the buffer (deduplicated by seq) are sent, and only then
   * is the socket added to the uWS topic — all in one synchronous step, so no live event can
   * slip between them. A `job:<id>` channel (unless asked `snapshot: false`) starts with a
   * `snapshot` of the job's status, read after the broker subscription is in place; the
   * history read then starts at the seq the snapshot reflects, or at `since` when given.
   */
  async #join(conn: Connection, channel: string, since: number | undefined, ref: Ref | undefined, epoch: string | undefined, withSnapshot = true): Promise<void> {
    const join: JoinState = { buffer: [], overflowed: false };
    conn.joining.set(channel, join);
    let joiners = this.#joiners.get(channel);
    if (joiners === undefined) {
      joiners = new Set();
      this.#joiners.set(channel, joiners);
    }
    joiners.add(conn);
    let interest = false;
    let waiting = false;
    try {
      await this.broker.subscribe(channel);
      interest = true;
      // A job channel starts with a snapshot of the job's status (read after the subscribe,
      // so every later event is in the history read below or in the join buffer).
      const snapshot = withSnapshot ? await this.#jobSnapshot(channel) : undefined;
      let page: HistoryPage | undefined;
      let tail: { page: HistoryPage; seq: number; from: number } | undefined;
      if (snapshot === undefined) page = since === undefined ? undefined : await this.broker.history(channel, since);
      else if (since === undefined) page = (tail = await this.#tailOf(channel, snapshot, undefined, epoch)).page;
      else {
        // With `since` the contract's replay holds (PROTOCOL.md §3: every event after `since`,
        // `recovered:false` where history lost some); the snapshot comes first as extra context.
        const at = await this.#tailOf(channel, snapshot, undefined, undefined);
        page = await this.broker.history(channel, since);
        tail = { page, seq: at.seq, from: since };
      }
      const position = page ?? (await this.broker.position(channel));
      if (!conn.open || conn.joining.get(channel) !== join) {
        this.broker.unsubscribe(channel);
        return;
      }
      // A session from another epoch (history reset) cannot be replayed exactly; after a
      // snapshot, only the events after it need to be (the snapshot stands for the rest).
      const epochMatches = epoch === undefined || epoch === position.epoch || (tail !== undefined && since === undefined);
      const recovered = page === undefined || (tail !== undefined && since === undefined) ? undefined : page.recovered && epochMatches && !join.overflowed;
      const frame: ServerFrame = { type: 'subscription_result', channel, success: true, seq: position.seq, epoch: position.epoch };
      if (recovered !== undefined) frame.recovered = recovered;
      if (ref !== undefined) frame.ref = ref;
      const ws = conn.ws!;
      let last = tail?.from ?? since ?? position.seq;
      ws.cork(() => {
        ws.send(encodeFrame(frame), false, false);
        if (tail !== undefined) ws.send(encodeFrame({ type: 'snapshot', channel, seq: tail.seq, epoch: position.epoch, data: snapshot!.data }), false, false);
        if (page !== undefined) {
          for (const e of page.events) {
            if (e.seq > last) {
              ws.send(e.frame, false, false);
              last = e.seq;
            }
          }
        }
        for (const e of join.buffer) {
          if (e.seq > last) {
            ws.send(e.frame, false, false);
            last = e.seq;
          }
        }
      });
      join.buffer = [];
      this.metrics.count('subscription_result', 'out');
      // The history read may have been answered before this node's live stream brought the
      // same events (two Redis connections): then wait for the live stream to pass what was
      // sent before taking live events, or they would come twice.
      const live = this.broker.delivered?.(channel);
      if (live !== undefined && live.epoch === position.epoch && live.seq < last) {
        waiting = true;
        this.log.debug({ channel, sent: last, live: live.seq }, 'join waits for the live stream to catch up with the history it sent');
        join.waiting = { sent: last, epoch: position.epoch, timer: setTimeout(() => this.#completeJoin(conn, channel, join), JOIN_CATCH_UP_MS) };
        return;
      }
      join.waiting = { sent: last, epoch: position.epoch };
      this.#completeJoin(conn, channel, join);
    } catch (err) {
      if (interest) this.broker.unsubscribe(channel);
      this.log.warn({ err, channel }, 'subscribe failed');
      if (conn.open && conn.joining.get(channel) === join) {
        conn.send(
          encodeFrame({ type: 'subscription_result', channel, success: false, error: ErrorCode.Unavailable, ...(ref !== undefined && { ref }) }),
        );
      }
    } finally {
      if (!waiting) {
        if (conn.joining.get(channel) === join) conn.joining.delete(channel);
        joiners.delete(conn);
        if (joiners.size === 0 && this.#joiners.get(channel) === joiners) this.#joiners.delete(channel);
      }
    }
  }

  /**
   * The last step of a join: what live events came after what was sent, then the socket joins
   * the uWS topic — in one synchronous step. Called at once, or (`join.waiting`) when this
   * node's live stream of the channel has caught up with the history sent, or after
   * JOIN_CATCH_UP_MS in any case.
   */
  #completeJoin(conn: Connection, channel: string, join: JoinState): void {
    const at = join.waiting;
    if (at === undefined || conn.joining.get(channel) !== join) return;
    clearTimeout(at.timer);
    join.waiting = undefined;
    conn.joining.delete(channel);
    const joiners = this.#joiners.get(channel);
    joiners?.delete(conn);
    if (joiners?.size === 0) this.#joiners.delete(channel);
    if (!conn.open) {
      this.broker.unsubscribe(channel);
      return;
    }
    const ws = conn.ws!;
    let last = at.sent;
    ws.cork(() => {
      for (const e of join.buffer) {
        if (e.seq > last) {
          ws.send(e.frame, false, false);
          last = e.seq;
        }
      }
      ws.subscribe(channel);
    });
    join.buffer = [];
    conn.subscriptions.add(channel);
    this.#addMember(this.#members, channel, conn);
    const seen = this.#channelSeq.get(channel);
    if (seen === undefined || seen.seq < last || seen.epoch !== at.epoch) this.#channelSeq.set(channel, { seq: last, epoch: at.epoch });
    if (conn.session !== undefined) {
      conn.session.subscriptions[channel] = { seq: last, epoch: at.epoch };
      this.#saveSession(conn.session);
    }
  }

  /** A join waiting for the live stream ends without completing (unsubscribe, close): its broker interest goes. */
  #dropWaitingJoin(conn: Connection, channel: string, join: JoinState): void {
    if (join.waiting === undefined) return;
    clearTimeout(join.waiting.timer);
    join.waiting = undefined;
    const joiners = this.#joiners.get(channel);
    joiners?.delete(conn);
    if (joiners?.size === 0) this.#joiners.delete(channel);
    this.broker.unsubscribe(channel);
  }

  /** The job status a `job:<id>` subscription starts with; undefined for other channels, or without one. */
  async #jobSnapshot(channel: string): Promise<JobSnapshotView | undefined> {
    if (!channel.startsWith('job:') || this.#jobs?.snapshot === undefined) return undefined;
    try {
      return await this.#jobs.snapshot(channel.slice(4));
    } catch (err) {
      // Without a snapshot the subscription still works the contract's way.
      this.log.warn({ err, channel }, 'job snapshot unavailable');
      return undefined;
    }
  }

  /**
   * The history after a snapshot: events with seq above the snapshot's, and above `since`
   * when the client has seen more. `seq` is the snapshot's seq in the channel's current
   * epoch — 0 when the history was reset after the last job event (every event of the new
   * epoch came after it), in which case a `since` from the old epoch means nothing.
   */
  async #tailOf(channel: string, snapshot: JobSnapshotView, since: number | undefined, sinceEpoch: string | undefined): Promise<{ page: HistoryPage; seq: number; from: number }> {
    let seq = snapshot.seq;
    let from = since !== undefined && since > seq ? since : seq;
    let page = await this.broker.history(channel, from);
    const sinceValid = (p: HistoryPage) => since !== undefined && (sinceEpoch === undefined ? since <= p.seq : sinceEpoch === p.epoch);
    if (page.epoch !== snapshot.epoch) {
      seq = 0;
      from = sinceValid(page) ? since! : 0;
      page = await this.broker.history(channel, from);
    } else if (from !== seq && !sinceValid(page)) {
      from = seq;
      page = await this.broker.history(channel, from);
    }
    return { page, seq, from };
  }

  /** Drops a channel from a connection, live or joining; false when it had neither. */
  #leave(conn: Connection, channel: string): boolean {
    if (conn.subscriptions.delete(channel)) {
      if (conn.open) conn.ws!.unsubscribe(channel);
      this.broker.unsubscribe(channel);
      if (conn.session !== undefined) delete conn.session.subscriptions[channel];
      this.#removeMember(this.#members, channel, conn);
      this.#removeMember(this.#slowMembers, channel, conn);
      conn.lane?.channels.delete(channel);
      if (!this.#members.has(channel) && !this.#joiners.has(channel)) this.#channelSeq.delete(channel);
      return true;
    }
    // A pending join notices it was superseded and releases its own broker interest; a join
    // waiting for the live stream has nothing pending, so it is released here.
    const joining = conn.joining.get(channel);
    if (joining !== undefined) this.#dropWaitingJoin(conn, channel, joining);
    if (conn.joining.delete(channel)) {
      if (conn.session !== undefined) delete conn.session.subscriptions[channel];
      return true;
    }
    return false;
  }

  async #unsubscribe(conn: Connection, channel: string, ref: Ref | undefined): Promise<void> {
    this.#leave(conn, channel);
    conn.send(encodeFrame({ type: 'unsubscribed', channel, ...(ref !== undefined && { ref }) }));
    this.metrics.count('unsubscribed', 'out');
    if (conn.session !== undefined) void this.sessions.save(conn.session).catch(() => undefined);
  }

  /** The broker's sink: one serialised frame, handed to uWS once for every local subscriber. */
  #deliver(event: BrokerEvent): void {
    const app = this.#app;
    if (app === undefined) return;
    const channel = event.channel;
    const seen = this.#channelSeq.get(channel);
    if (seen !== undefined) {
      seen.seq = event.seq;
      this.registry.notePosition(channel, seen);
    }
    const subscribers = app.numSubscribers(channel);
    if (subscribers > 0) app.publish(channel, event.frame, false, false);
    const slow = this.#slowMembers.get(channel);
    if (slow !== undefined) for (const conn of slow) this.#enqueueSlow(conn, event);
    // A coalescable event is where a slow client hurts most (a flood of progress): check its
    // subscribers now rather than at the next sweep. Other channels wait for the sweep.
    if (subscribers > 0 && coalesceKey(event.frame) !== undefined) {
      const soft = this.config.coalesceBytes;
      for (const conn of this.#members.get(channel) ?? []) {
        if (conn.lane === undefined && conn.open && conn.ws!.getBufferedAmount() > soft) this.#enterSlowLane(conn);
      }
    }
    const joiners = this.#joiners.get(channel);
    if (joiners !== undefined) {
      for (const conn of joiners) {
        const join = conn.joining.get(channel);
        if (join === undefined) continue;
        if (join.buffer.length < MAX_JOIN_BUFFER) join.buffer.push(event);
        else join.overflowed = true;
        if (join.waiting !== undefined && event.seq >= join.waiting.sent) this.#completeJoin(conn, channel, join);
      }
    }
    this.metrics.count('event', 'out', subscribers);
    this.metrics.deliveryLatency.observe(Math.max(0, Date.now() - event.publishedAt) / 1000);
  }

  /** The per-user publish/direct budget, shared by every node of the cluster. */
  async #userBudget(conn: Connection, ref: Ref | undefined): Promise<boolean> {
    const ok = await this.registry.takeUserToken(conn.userId, this.config.userRateLimitPerS).catch(() => true);
    if (!ok && conn.open) {
      conn.send(encodeError(ErrorCode.RateLimited, `more than USER_RATE_LIMIT_PER_S (${this.config.userRateLimitPerS}) publishes and directs per second for this user`, ref));
      this.metrics.count('error', 'out');
    }
    return ok;
  }

  async #publish(conn: Connection, channel: string, event: string, data: Json, ref: Ref | undefined, coalesce?: string): Promise<void> {
    if (!canPublish(conn.claims!, channel)) {
      conn.send(encodeError(ErrorCode.Forbidden, `no publish right on ${channel}`, ref));
      this.metrics.count('error', 'out');
      return;
    }
    if (!(await this.#userBudget(conn, ref))) return;
    const seq = await this.#publishOrLocal(channel, event, JSON.stringify(data), coalesce);
    conn.send(
      seq === null
        ? JSON.stringify({ type: 'ack', seq: null, degraded: true, ...(ref !== undefined && { ref }) })
        : encodeFrame({ type: 'ack', seq, ...(ref !== undefined && { ref }) }),
    );
    this.metrics.count('ack', 'out');
  }

  /**
   * Publishes through the broker; while the broker is unreachable the event still reaches
   * this node's subscribers (without a seq, marked degraded) rather than nobody. Returns
   * the seq, or null for such a local-only delivery.
   */
  async #publishOrLocal(channel: string, event: string, dataJson: string, coalesce?: string): Promise<number | null> {
    try {
      return (await this.broker.publish({ channel, event, dataJson, ...(coalesce !== undefined && { coalesce }) })).seq;
    } catch (err) {
      if (!(err instanceof BrokerUnavailableError)) throw err;
      this.log.warn({ channel, err: err.message }, 'broker unreachable: delivering locally only');
      const app = this.#app;
      if (app !== undefined) {
        const n = app.numSubscribers(channel);
        if (n > 0) app.publish(channel, encodeLocalEvent(channel, event, dataJson, Date.now()), false, false);
        this.metrics.count('event', 'out', n);
      }
      return null;
    }
  }

  /** Subscribers of a channel whose stream could not be kept gap-free learn it here. */
  #announceReset(channel: string, position: ChannelPosition): void {
    const seen = this.#channelSeq.get(channel);
    if (seen !== undefined) {
      seen.seq = Math.max(0, position.seq - 1);
      seen.epoch = position.epoch;
    }
    const frame = encodeFrame({ type: 'subscription_result', channel, success: true, seq: position.seq, epoch: position.epoch, recovered: false });
    this.#app?.publish(channel, frame, false, false);
    this.log.warn({ channel, epoch: position.epoch }, 'channel history reset; subscribers told recovered:false');
  }

  /**
   * Direct messages reach local targets at once and other nodes through their broker
   * inbox; the registry says which nodes hold the target. `not_found` only when no node does.
   */
  async #direct(conn: Connection, to: string, data: Json, ref: Ref | undefined): Promise<void> {
    if (!(await this.#userBudget(conn, ref))) return;
    const frame = encodeFrame({ type: 'direct', from: conn.id, user_id: conn.userId, data });
    const me = this.config.workerId;
    let delivered = 0;
    let remote: string[] = [];
    let payload: string;
    if (to.startsWith('user:')) {
      const userId = to.slice(5);
      delivered = this.#deliverDirectToUser(userId, conn.id, frame);
      payload = `u\t${userId}\t${conn.id}\t${frame}`;
      remote = (await this.registry.nodesOfUser(userId).catch(() => [] as string[])).filter((n) => n !== me);
    } else {
      const local = this.#byId.get(to);
      payload = `c\t${to}\t${frame}`;
      if (local !== undefined && local.state === 'ready') {
        local.send(frame);
        delivered = 1;
      } else {
        const node = await this.registry.locateConnection(to).catch(() => undefined);
        if (node !== undefined && node !== me) remote = [node];
      }
    }
    const sent = await Promise.all(remote.map((node) => this.broker.sendToNode(node, payload).then(() => true, () => false)));
    if (delivered === 0 && !sent.includes(true)) {
      conn.send(encodeError(ErrorCode.NotFound, `no connection for ${to}`, ref));
      this.metrics.count('error', 'out');
      return;
    }
    this.metrics.count('direct', 'out', delivered);
    conn.send(encodeFrame({ type: 'ack', ...(ref !== undefined && { ref }) }));
    this.metrics.count('ack', 'out');
  }

  #deliverDirectToUser(userId: string, exceptConnId: string, frame: string): number {
    let n = 0;
    for (const c of this.#byUser.get(userId) ?? []) {
      if (c.id !== exceptConnId && c.state === 'ready') {
        c.send(frame);
        n++;
      }
    }
    return n;
  }

  /**
   * A message routed here by another node: a direct message (`c\t<conn>\t<frame>`,
   * `u\t<user>\t<except>\t<frame>`), or a session handover request (`h\t<request>\t<from>\t<session>`)
   * and its answer (`H\t<request>\t`).
   */
  #onNodeMessage(payload: string): void {
    const a = payload.indexOf('\t');
    const b = payload.indexOf('\t', a + 1);
    if (a < 0 || b < 0) return;
    const kind = payload.slice(0, a);
    if (kind === 'c') {
      const target = this.#byId.get(payload.slice(a + 1, b));
      if (target !== undefined && target.state === 'ready') {
        target.send(payload.slice(b + 1));
        this.metrics.count('direct', 'out');
      }
    } else if (kind === 'u') {
      const c = payload.indexOf('\t', b + 1);
      if (c < 0) return;
      const n = this.#deliverDirectToUser(payload.slice(a + 1, b), payload.slice(b + 1, c), payload.slice(c + 1));
      this.metrics.count('direct', 'out', n);
    } else if (kind === 'h') {
      const c = payload.indexOf('\t', b + 1);
      if (c < 0) return;
      this.#handOver(payload.slice(b + 1, c), payload.slice(a + 1, b), payload.slice(c + 1));
    } else if (kind === 'H') {
      this.#handovers.get(payload.slice(a + 1, b))?.();
    }
  }

  async #cancel(conn: Connection, jobId: string, ref: Ref | undefined): Promise<void> {
    const outcome = this.#jobs?.cancel === undefined ? 'not_found' : await this.#jobs.cancel(jobId, conn.userId);
    if (outcome === 'cancelled' || outcome === 'finished') {
      conn.send(encodeFrame({ type: 'ack', ...(ref !== undefined && { ref }) }));
    } else if (outcome === 'forbidden') {
      conn.send(encodeError(ErrorCode.Forbidden, `job ${jobId} is not yours`, ref));
    } else {
      conn.send(encodeError(ErrorCode.NotFound, `no job ${jobId}`, ref));
    }
  }

  // ───────────────────────────── close and sweeps ─────────────────────────────

  #onClose(ws: WebSocket<SocketData>, code: number): void {
    const conn = ws.getUserData().conn;
    const buffered = conn.bufferedAtEnd;
    conn.state = 'closed';
    conn.clearTimers();
    this.#conns.delete(conn);
    this.#byId.delete(conn.id);
    const mine = this.#byUser.get(conn.userId);
    if (mine !== undefined) {
      mine.delete(conn);
      if (mine.size === 0) this.#byUser.delete(conn.userId);
      this.registry.removeConnection(conn.id, conn.userId);
    }
    for (const channel of conn.subscriptions) this.broker.unsubscribe(channel);
    for (const [channel, join] of conn.joining) {
      // A join waiting for the live stream had sent up to there: the session resumes from it.
      if (join.waiting !== undefined && conn.session !== undefined) conn.session.subscriptions[channel] = { seq: join.waiting.sent, epoch: join.waiting.epoch };
      this.#dropWaitingJoin(conn, channel, join);
      this.#joiners.get(channel)?.delete(conn);
    }
    const session = conn.session;
    if (session !== undefined && this.#bySession.get(session.id) === conn) {
      this.#bySession.delete(session.id);
      session.live = false;
      for (const channel of conn.subscriptions) {
        const seen = this.#channelSeq.get(channel);
        // A channel served by the slow lane stands where the lane last sent, not where the node is.
        const laneAt = conn.lane?.position(channel);
        if (seen !== undefined) session.subscriptions[channel] = { seq: laneAt ?? seen.seq, epoch: seen.epoch };
      }
      // Bytes still queued never reached the client: rewind so a resume replays them.
      const saved = (buffered > 0 ? this.#rewind(session, buffered) : Promise.resolve()).then(() =>
        this.sessions.save(session).catch((err: unknown) => this.log.warn({ err }, 'session save failed')),
      );
      const handover = conn.handover;
      if (handover !== undefined) void saved.then(() => this.#replyHandover(handover.from, handover.request));
    }
    for (const channel of conn.subscriptions) {
      this.#removeMember(this.#members, channel, conn);
      this.#removeMember(this.#slowMembers, channel, conn);
      if (!this.#members.has(channel) && !this.#joiners.has(channel)) this.#channelSeq.delete(channel);
    }
    conn.lane = undefined;
    conn.subscriptions.clear();
    conn.joining.clear();
    this.metrics.setConnections(this.#conns.size);
    this.metrics.sessionDuration.observe((Date.now() - conn.openedAt) / 1000);
    this.log.debug({ conn: conn.id, code }, 'connection closed');
  }

  #saveSession(session: SessionRecord): void {
    void this.sessions.save(session).catch((err: unknown) => this.log.warn({ err }, 'session save failed'));
  }

  /**
   * Moves each channel's resume point back past the newest events whose bytes add up to
   * what was still buffered. Conservative: a resume may repeat an event, never skip one.
   */
  async #rewind(session: SessionRecord, buffered: number): Promise<void> {
    for (const [channel, position] of Object.entries(session.subscriptions)) {
      const from = Math.max(0, position.seq - 1000);
      const page = await this.broker.history(channel, from).catch(() => undefined);
      if (page === undefined) continue;
      let bytes = 0;
      let seq = position.seq;
      for (let i = page.events.length - 1; i >= 0 && bytes < buffered; i--) {
        const e = page.events[i]!;
        if (e.seq > position.seq) continue;
        bytes += e.frame.length;
        seq = e.seq - 1;
      }
      session.subscriptions[channel] = { seq, epoch: position.epoch };
    }
  }

  #pingSweep(): void {
    this.#notReadyReasons();
    const now = Date.now();
    const idleMs = this.config.idleTimeoutS * 1000;
    for (const conn of this.#conns) {
      if (!conn.open) continue;
      if (now - conn.lastSeen > idleMs) conn.end(CloseCode.GoingAway, 'idle_timeout');
      else conn.ws!.ping();
    }
  }

  /**
   * After scale-out the new nodes start empty while the old ones keep their clients. Once a
   * second, a node far above the cluster's mean tells a bounded, random share of its clients
   * to reconnect (reason `rebalance`, jittered `after_ms`); they resume their sessions on
   * whichever node the load balancer picks, losing nothing.
   */
  #rebalance(): void {
    if (this.#state !== 'serving') return;
    const c = this.config;
    const self = { id: c.workerId, connections: this.#conns.size, draining: false };
    const nodes = this.registry.workers().map((w) => ({ id: w.id, connections: w.id === c.workerId ? this.#conns.size : w.connections, draining: w.draining }));
    const shed = planShed(self, nodes, { threshold: c.rebalanceThreshold, maxPerS: c.rebalanceMaxPerS, minConnections: c.rebalanceMinConnections });
    if (shed === 0) return;
    const ready = [...this.#conns].filter((conn) => conn.state === 'ready');
    this.log.info({ shed, connections: this.#conns.size, nodes: nodes.length }, 'rebalancing: shedding clients');
    for (let i = 0; i < shed && ready.length > 0; i++) {
      const conn = ready.splice(Math.floor(Math.random() * ready.length), 1)[0]!;
      conn.send(encodeFrame({ type: 'reconnect', reason: 'rebalance', after_ms: Math.floor(Math.random() * MAX_RECONNECT_JITTER_MS) }));
      this.metrics.count('reconnect', 'out');
      conn.end(CloseCode.Restart, 'rebalance');
    }
  }

  #pressureSweep(): void {
    const soft = this.config.coalesceBytes;
    for (const conn of this.#conns) {
      if (!conn.open) continue;
      const buffered = conn.ws!.getBufferedAmount();
      if (this.#overHardLimit(conn, buffered)) continue;
      if (conn.lane !== undefined) this.#flushSlowLane(conn);
      else if (buffered > soft && conn.subscriptions.size > 0) this.#enterSlowLane(conn);
    }
  }

  /** MAX_BACKPRESSURE_BYTES, counting what a slow lane holds that cannot be coalesced away. */
  #overHardLimit(conn: Connection, buffered: number): boolean {
    if (buffered + (conn.lane?.bytes ?? 0) <= this.config.maxBackpressureBytes) return false;
    this.log.info({ conn: conn.id, user: conn.userId }, 'slow consumer closed');
    this.metrics.count('slow_consumer', 'out');
    conn.end(CloseCode.SlowConsumer, 'slow_consumer');
    return true;
  }

  /**
   * Coalescing instead of dropping. Past COALESCE_BYTES buffered, a connection's channels
   * leave the native uWS fan-out and its events queue in its own SlowLane, where a newer
   * coalescable event replaces the older one of its key. The switch happens on the next
   * turn: uWS drops a message published in the same turn to a socket that unsubscribes from
   * its topic, and the lane takes over exactly after the last seq the topic delivered.
   */
  #enterSlowLane(conn: Connection): void {
    const lane = new SlowLane();
    conn.lane = lane;
    this.metrics.count('slow_lane', 'out');
    setImmediate(() => {
      if (!conn.open || conn.lane !== lane) return;
      for (const channel of conn.subscriptions) {
        conn.ws!.unsubscribe(channel);
        lane.channels.set(channel, this.#channelSeq.get(channel)?.seq ?? 0);
        this.#addMember(this.#slowMembers, channel, conn);
      }
    });
  }

  #enqueueSlow(conn: Connection, event: BrokerEvent): void {
    const lane = conn.lane;
    if (lane === undefined || !conn.open) return;
    lane.enqueue(event);
    if (!this.#overHardLimit(conn, conn.ws!.getBufferedAmount())) this.#flushSlowLane(conn);
  }

  /** Sends what the socket can take; once the lane is empty and the socket drained, back to the topic. */
  #flushSlowLane(conn: Connection): void {
    const lane = conn.lane;
    if (lane === undefined || !conn.open || lane.channels.size === 0) return;
    const ws = conn.ws!;
    const soft = this.config.coalesceBytes;
    let sent = 0;
    const empty = lane.flush(
      (frame) => {
        ws.send(frame, false, false);
        sent++;
      },
      () => ws.getBufferedAmount() < soft,
    );
    this.metrics.count('event', 'out', sent);
    if (!empty || ws.getBufferedAmount() > soft / 2) return;
    // One synchronous step: nothing published can fall between the lane and the topic.
    for (const channel of lane.channels.keys()) {
      if (!conn.subscriptions.has(channel)) continue;
      ws.subscribe(channel);
      this.#removeMember(this.#slowMembers, channel, conn);
    }
    conn.lane = undefined;
  }

  #addMember(map: Map<string, Set<Connection>>, channel: string, conn: Connection): void {
    let set = map.get(channel);
    if (set === undefined) {
      set = new Set();
      map.set(channel, set);
    }
    set.add(conn);
  }

  #removeMember(map: Map<string, Set<Connection>>, channel: string, conn: Connection): void {
    const set = map.get(channel);
    if (set === undefined) return;
    set.delete(conn);
    if (set.size === 0) map.delete(channel);
  }

  // ───────────────────────────── HTTP ─────────────────────────────

  #commonHeaders(): readonly (readonly [string, string])[] {
    return [
      ['X-WebSocket-Worker-ID', this.config.workerId],
      ['X-WebSocket-Local-Connections', String(this.#conns.size)],
      ['X-WebSocket-Total-Sessions', String(this.sessions.count())],
      ['X-WebSocket-Total-Workers', String(this.registry.totalWorkers())],
    ];
  }

  #routes(app: TemplatedApp): void {
    const common = () => this.#commonHeaders();
    const bodyLimit = Math.max(this.config.maxMessageBytes, 64 * 1024);
    app.get('/health', route(() => this.#health(), common));
    app.get('/ready', route(() => this.#ready(), common));
    app.get('/metrics', route(async () => {
      const { contentType, body } = await this.metrics.render();
      return { status: 200, body, contentType };
    }, common));
    app.get('/stats', route(() => ({ status: 200, body: this.stats() }), common));
    app.post('/broadcast', route((info) => this.#broadcast(info), common, bodyLimit));
    app.post('/auth/token', route((info) => this.#mintToken(info), common, bodyLimit));
    registerJobRoutes(app, { jobs: this.#jobs, verifier: this.#verifier, metrics: this.metrics, maxJobBytes: this.config.maxJobBytes }, common);
    app.any('/*', route((info) => {
      throw new HttpError(404, ErrorCode.NotFound, `no route for ${info.method.toUpperCase()} ${info.url}`);
    }, common));
  }

  #health(): HttpReply {
    const reasons = this.#notReadyReasons();
    const broker = this.broker.health();
    const kafka = this.#jobs?.health?.().status ?? 'disabled';
    // Kafka away: jobs cannot be queued, so the node is degraded (still serving its clients).
    const status = this.#state === 'stopped' ? 'unhealthy' : broker.healthy && kafka !== 'down' ? 'healthy' : 'degraded';
    const redisUsed = this.broker.kind === 'redis';
    return {
      status: status === 'unhealthy' ? 503 : 200,
      body: {
        status,
        websocket: {
          worker_id: this.config.workerId,
          local_connections: this.#conns.size,
          total_sessions: this.sessions.count(),
          total_workers: this.registry.totalWorkers(),
          session_store_healthy: true,
          message_broker_healthy: broker.healthy,
        },
        redis: { status: redisUsed ? broker.status : 'disabled', latency_ms: redisUsed ? broker.latencyMs : null },
        kafka: { status: kafka },
        draining: this.#state === 'draining',
        ready: reasons.length === 0,
        ...(reasons.length > 0 && { not_ready: reasons }),
        uptime_s: Math.round((Date.now() - this.#startedAt) / 1000),
      },
    };
  }

  #ready(): HttpReply {
    const reasons = this.#notReadyReasons();
    const ready = reasons.length === 0;
    return { status: ready ? 200 : 503, body: { ready, state: this.#state, ...(!ready && { reasons }) } };
  }

  /**
   * Why a load balancer should not send new clients here. A node whose Redis has been away
   * longer than READY_REDIS_GRACE_MS can serve only its own clients, so it stops taking more
   * (it stays live: /health is still 200, degraded). A short blip does not flap readiness.
   */
  #notReadyReasons(): string[] {
    const reasons: string[] = [];
    if (this.#state !== 'serving') reasons.push(this.#state === 'draining' ? 'draining' : `node is ${this.#state}`);
    const broker = this.broker.health();
    const now = Date.now();
    if (broker.healthy) this.#brokerDownSince = undefined;
    else {
      this.#brokerDownSince ??= now;
      const down = now - this.#brokerDownSince;
      if (down >= this.config.readyRedisGraceMs) reasons.push(`redis unreachable for ${Math.round(down / 1000)} s`);
    }
    return reasons;
  }

  stats(): Record<string, unknown> {
    let authenticated = 0;
    let subscriptions = 0;
    for (const conn of this.#conns) {
      if (conn.state === 'ready') authenticated++;
      subscriptions += conn.subscriptions.size;
    }
    return {
      worker_id: this.config.workerId,
      connections: this.#conns.size,
      authenticated_connections: authenticated,
      users: this.#byUser.size,
      sessions: this.sessions.count(),
      total_sessions: this.sessions.count(),
      total_workers: this.registry.totalWorkers(),
      channels: this.#channelSeq.size,
      subscriptions,
      messages_in: this.metrics.messagesIn,
      messages_out: this.metrics.messagesOut,
      uptime_s: Math.round((Date.now() - this.#startedAt) / 1000),
    };
  }

  async #broadcast(info: RequestInfo): Promise<HttpReply> {
    const token = bearer(info.authorization);
    if (token === undefined) throw new HttpError(401, ErrorCode.Unauthenticated, 'Authorization: Bearer <BROADCAST_API_KEY or JWT> required');
    const body = parseJsonBody(info);
    const channel = body['channel'];
    if (!isValidChannel(channel)) throw new HttpError(400, ErrorCode.BadChannel, '"channel" must be a valid channel name');
    const event = body['event'] ?? 'message';
    if (typeof event !== 'string' || event.length === 0 || event.length > 200) {
      throw new HttpError(400, ErrorCode.BadFrame, '"event" must be a string of 1–200 characters');
    }
    if (!('data' in body)) throw new HttpError(400, ErrorCode.BadFrame, '"data" is required');
    if (!keyMatches(this.config.broadcastApiKey, token)) {
      let claims: Claims;
      try {
        claims = await this.#verifier.verify(token);
      } catch (err) {
        throw new HttpError(401, err instanceof AuthError ? err.reason : ErrorCode.Unauthenticated, 'bad API key or token');
      }
      if (!canPublish(claims, channel)) throw new HttpError(403, ErrorCode.Forbidden, `no publish right on ${channel}`);
    }
    const coalesce = body['coalesce'];
    if (coalesce !== undefined && !isValidChannel(coalesce)) {
      throw new HttpError(400, ErrorCode.BadFrame, '"coalesce" must be 1–200 characters of A-Z a-z 0-9 : _ - . @ /');
    }
    const seq = await this.#publishOrLocal(channel, event, JSON.stringify(body['data']), coalesce);
    this.metrics.count('broadcast', 'in');
    return { status: 202, body: seq === null ? { channel, seq: null, degraded: true } : { channel, seq } };
  }

  async #mintToken(info: RequestInfo): Promise<HttpReply> {
    const key = bearer(info.authorization);
    if (!this.config.devTokens && !keyMatches(this.config.adminApiKey, key)) {
      throw new HttpError(401, ErrorCode.Unauthenticated, 'Authorization: Bearer <ADMIN_API_KEY> required (or DEV_TOKENS=true)');
    }
    if (this.config.jwtSecret === undefined) {
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
    if (!Number.isInteger(ttl) || (ttl as number) < 1 || (ttl as number) > this.config.maxTokenTtlS) {
      throw new HttpError(400, ErrorCode.BadFrame, `"ttl_s" must be an integer from 1 to ${this.config.maxTokenTtlS}`);
    }
    const { token, expiresAt } = await mintToken(this.config.jwtSecret, {
      sub: userId,
      ...lists,
      ttlS: ttl as number,
      ...(this.config.jwtIssuer !== undefined && { issuer: this.config.jwtIssuer }),
      ...(this.config.jwtAudience !== undefined && { audience: this.config.jwtAudience }),
    } as Parameters<typeof mintToken>[1]);
    return { status: 200, body: { token, expires_at: new Date(expiresAt * 1000).toISOString(), expires_in: ttl } };
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
    if (this.#state !== 'serving') return this.stop();
    this.#state = 'draining';
    const deadline = Date.now() + this.config.drainTimeoutMs;
    const jitter = Math.min(MAX_RECONNECT_JITTER_MS, Math.floor(this.config.drainTimeoutMs / 4));
    this.log.info({ connections: this.#conns.size }, 'draining');
    // Leave the registry first so the cluster stops counting (and routing to) this node.
    await this.registry.leave().catch((err: unknown) => this.log.warn({ err }, 'leaving the registry failed'));
    for (const conn of [...this.#conns]) {
      conn.send(encodeFrame({ type: 'reconnect', reason: 'draining', after_ms: Math.floor(Math.random() * (jitter + 1)) }));
      this.metrics.count('reconnect', 'out');
      conn.end(CloseCode.Restart, 'draining');
    }
    while (this.#conns.size > 0 && Date.now() < deadline) await sleep(25);
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
    this.#state = 'stopped';
    clearInterval(this.#pingTimer);
    clearInterval(this.#pressureTimer);
    clearInterval(this.#rebalanceTimer);
    this.#rebalanceTimer = undefined;
    this.#pingTimer = undefined;
    this.#pressureTimer = undefined;
    if (this.#listenSocket !== undefined) {
      loadUws().us_listen_socket_close(this.#listenSocket);
      this.#listenSocket = undefined;
    }
    for (const conn of [...this.#conns]) {
      if (conn.open) conn.ws!.close();
    }
    // Sessions are saved by the close handlers above; the registry flushes positions and
    // leaves; only then may the broker's connections (which the others share) go.
    await Promise.allSettled([this.sessions.close(), this.registry.close()]);
    await this.#jobs?.close?.().catch((err: unknown) => this.log.warn({ err }, 'closing jobs failed'));
    await this.broker.close();
    this.log.info('edge stopped');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Constant-time comparison of a configured API key with a presented one. */
function keyMatches(expected: string | undefined, presented: string | undefined): boolean {
  if (expected === undefined || presented === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

export { jobChannel };
