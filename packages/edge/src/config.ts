import { hostname } from 'node:os';
import { ConfigError, bool, int, list, loadSettings, num, oneOf, str, type Setting, type SettingsOf, type SettingsSources } from '@switchyard/config';
import { jobSettings } from '@switchyard/jobs';
import { trustedProxyList } from './admission.js';

const MIN_SECRET_BYTES = 32;

/** Every edge setting, its default and its meaning: the one place defaults live. */
export const edgeSettings = {
  port: int('PORT', 8765, 'TCP port for WebSocket and HTTP', { min: 0, max: 65535 }),
  host: str('HOST', '0.0.0.0', 'address to listen on'),
  workerId: str('WORKER_ID', undefined, 'this node’s id in the cluster (Kubernetes: the pod name)'),
  logLevel: oneOf('LOG_LEVEL', 'info', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], 'pino log level'),

  jwtSecret: str('JWT_SECRET', undefined, 'HS256 secret, at least 32 bytes', (v) =>
    Buffer.byteLength(v) < MIN_SECRET_BYTES ? `must be at least ${MIN_SECRET_BYTES} bytes, got ${Buffer.byteLength(v)}` : undefined,
  ),
  jwtPublicKey: str('JWT_PUBLIC_KEY', undefined, 'PEM public key (RS256, ES256 or EdDSA), or a path to one'),
  jwksUrl: str('JWKS_URL', undefined, 'URL of a JSON Web Key Set, cached and refetched on an unknown `kid`', (v) =>
    /^https?:\/\//.test(v) ? undefined : 'must be an http(s) URL',
  ),
  jwtIssuer: str('JWT_ISSUER', undefined, 'required `iss` when set'),
  jwtAudience: str('JWT_AUDIENCE', undefined, 'required `aud` when set'),
  jwksCooldownMs: int('JWKS_COOLDOWN_MS', 1000, 'least time between two JWKS refetches for unknown `kid`s', { min: 0 }),
  authTimeoutMs: int('AUTH_TIMEOUT_MS', 10_000, 'time allowed for the first-frame `auth`', { min: 1 }),

  maxMessageBytes: int('MAX_MESSAGE_BYTES', 65_536, 'largest accepted client frame (bigger: `too_large`, close 1009)', { min: 64 }),
  maxConnectionsPerUser: int('MAX_CONNECTIONS_PER_USER', 5, 'connections one `sub` may hold (next: close 4009)', { min: 1 }),
  maxTotalConnections: int('MAX_TOTAL_CONNECTIONS', 100_000, 'authenticated connections per node (next upgrade: HTTP 503; a first-frame `auth` past it: `auth_error` and close 4009)', { min: 1 }),
  maxPendingAuth: int('MAX_PENDING_AUTH', 1000, 'connections per node that have not authenticated yet (next upgrade: HTTP 503); they do not count against `MAX_TOTAL_CONNECTIONS`', { min: 1 }),
  maxConnectionsPerIp: int('MAX_CONNECTIONS_PER_IP', 0, 'connections one client address may hold on a node, authenticated or not (next upgrade: HTTP 429 `{"error":"too_many_connections"}`); 0 = no limit', { min: 0 }),
  trustedProxies: list('TRUSTED_PROXIES', 'comma list of proxy IPs or CIDR blocks whose `X-Forwarded-For` gives the client address; unset: the peer address is used'),
  userRateLimitPerS: int('USER_RATE_LIMIT_PER_S', 200, 'publishes + directs per second one user may make, cluster-wide', { min: 1 }),
  maxSubscriptionsPerConnection: int('MAX_SUBSCRIPTIONS_PER_CONNECTION', 100, 'channels one connection may subscribe to', { min: 1 }),
  rateLimitPerS: int('RATE_LIMIT_PER_S', 50, 'frames per second a connection may send, sustained', { min: 1 }),
  rateLimitBurst: int('RATE_LIMIT_BURST', 100, 'frames a connection may send in a burst (past it: close 4008)', { min: 1 }),
  maxBackpressureBytes: int('MAX_BACKPRESSURE_BYTES', 1_048_576, 'bytes buffered for a slow client before it is closed 4010', { min: 1024 }),
  coalesceBytes: optionalInt('COALESCE_BYTES', 'buffered bytes past which a client’s coalescable events (job.progress, publishes with `coalesce`) keep only the latest', '¼ of `MAX_BACKPRESSURE_BYTES`', 1024),
  maxReplayBytesInFlight: int('MAX_REPLAY_BYTES_IN_FLIGHT', 16_777_216, 'history bytes a node holds at once for replays (`since`, resume) across all its clients; replays past it wait their turn', { min: 65_536 }),
  replayStallMs: int('REPLAY_STALL_MS', 5000, 'a replay that cannot continue because its client has not read for this long closes the client 4010 (session resumable)', { min: 100 }),
  backpressureCheckMs: int('BACKPRESSURE_CHECK_MS', 250, 'how often buffered amounts are checked', { min: 10 }),
  pingIntervalS: int('PING_INTERVAL_S', 25, 'seconds between server pings', { min: 1 }),
  idleTimeoutS: int('IDLE_TIMEOUT_S', 60, 'seconds without any frame from a client before it is dropped', { min: 2 }),
  allowedOrigins: list('ALLOWED_ORIGINS', 'comma list of allowed `Origin`s; unset allows any'),
  drainTimeoutMs: int('DRAIN_TIMEOUT_MS', 30_000, 'longest a SIGTERM drain may take before exit', { min: 0 }),

  historySize: int('HISTORY_SIZE', 1000, 'events kept per channel for `since` and resume', { min: 0 }),
  historyTtlS: int('HISTORY_TTL_S', 3600, 'seconds a channel’s history lives after its last event', { min: 1 }),
  sessionTtlS: int('WEBSOCKET_SESSION_TTL', 3600, 'seconds a session outlives its connection', { min: 1 }),

  broadcastApiKey: str('BROADCAST_API_KEY', undefined, 'bearer key for `POST /broadcast`'),
  adminApiKey: str('ADMIN_API_KEY', undefined, 'bearer key for `POST /auth/token` and the console’s `/admin/*` endpoints'),
  console: bool('CONSOLE', false, 'serve the operators’ console at `GET /console` (its data needs `ADMIN_API_KEY`)'),
  devTokens: bool('DEV_TOKENS', false, 'let anyone mint tokens at `POST /auth/token` (development only)'),
  maxTokenTtlS: int('MAX_TOKEN_TTL_S', 86_400, 'longest `ttl_s` that `POST /auth/token` grants', { min: 1 }),

  // Jobs (POST/GET/DELETE /jobs): the settings the runners share, defined in @switchyard/jobs.
  ...jobSettings,

  redisUrl: str('REDIS_URL', undefined, 'Redis for the cluster; unset: this node runs alone in memory'),
  redisClusterNodes: list('REDIS_CLUSTER_NODES', 'Redis Cluster seed nodes, `host:port,...`'),
  heartbeatMs: int('HEARTBEAT_MS', 2000, 'registry heartbeat; a silent node drops out after 3', { min: 50 }),
  rebalance: bool('REBALANCE', true, 'shed clients to newer nodes when far above the cluster mean (cluster only)'),
  rebalanceThreshold: num('REBALANCE_THRESHOLD', 0.1, 'shed only above mean × (1 + this)', { min: 0 }),
  rebalanceMaxPerS: int('REBALANCE_MAX_PER_S', 50, 'most clients shed per second', { min: 1 }),
  rebalanceMinConnections: int('REBALANCE_MIN_CONNECTIONS', 20, 'a node with fewer connections never sheds', { min: 0 }),
  presenceChannels: list('PRESENCE_CHANNELS', 'comma list of channel patterns (`*` wildcards) that keep cluster-wide presence (`presence`, `join`/`leave`, `GET /presence/<channel>`); unset: none'),
  presenceTtlS: int('PRESENCE_TTL_S', 30, 'seconds within which a dead node’s users leave presence (its entries are refreshed 4 times per this)', { min: 1 }),
  presenceMaxUsers: int('PRESENCE_MAX_USERS', 1000, 'most users one presence answer lists (more: `truncated: true`)', { min: 0 }),
  readyRedisGraceMs: int('READY_REDIS_GRACE_MS', 10_000, '/ready turns 503 once Redis has been unreachable this long', { min: 0 }),
} as const;

export type EdgeSettings = SettingsOf<typeof edgeSettings>;

/** Settings after cross-field checks, with derived values filled in. */
export interface EdgeConfig extends Omit<EdgeSettings, 'workerId' | 'coalesceBytes'> {
  workerId: string;
  coalesceBytes: number;
}

/** An integer setting whose default is derived from others in loadEdgeConfig. */
function optionalInt(env: string, doc: string, shown: string, min: number): Setting<number | undefined> {
  const base = int(env, 0, doc, { min });
  return { env, default: undefined, doc, shown, parse: (raw) => base.parse(raw) };
}

export function defaultWorkerId(): string {
  return `${hostname()}-${process.pid}`;
}

/**
 * Parses the environment (and an optional `--config` file) once, at start-up.
 * Any bad value throws a ConfigError naming the setting.
 */
export function loadEdgeConfig(sources: SettingsSources = {}, overrides: Partial<EdgeSettings> = {}): EdgeConfig {
  const settings = { ...loadSettings(edgeSettings, sources), ...overrides };
  const keys = [settings.jwtSecret, settings.jwtPublicKey, settings.jwksUrl].filter((k) => k !== undefined);
  if (keys.length === 0) {
    throw new ConfigError('JWT_SECRET', 'is required (or JWT_PUBLIC_KEY, or JWKS_URL): without a key no client can authenticate');
  }
  if (keys.length > 1) {
    throw new ConfigError('JWT_SECRET', 'conflicts: set exactly one of JWT_SECRET, JWT_PUBLIC_KEY, JWKS_URL');
  }
  if (settings.rateLimitBurst < settings.rateLimitPerS) {
    throw new ConfigError('RATE_LIMIT_BURST', `must be at least RATE_LIMIT_PER_S (${settings.rateLimitPerS})`);
  }
  const coalesceBytes = settings.coalesceBytes ?? Math.floor(settings.maxBackpressureBytes / 4);
  if (coalesceBytes >= settings.maxBackpressureBytes) {
    throw new ConfigError('COALESCE_BYTES', `must be below MAX_BACKPRESSURE_BYTES (${settings.maxBackpressureBytes})`);
  }
  if (settings.idleTimeoutS <= settings.pingIntervalS) {
    throw new ConfigError('IDLE_TIMEOUT_S', `must be greater than PING_INTERVAL_S (${settings.pingIntervalS})`);
  }
  trustedProxyList(settings.trustedProxies);
  if (settings.kafkaServers !== undefined && settings.redisUrl === undefined && settings.redisClusterNodes === undefined) {
    throw new ConfigError('KAFKA_SERVERS', 'needs REDIS_URL (or REDIS_CLUSTER_NODES): runners report job status and events through Redis');
  }
  return { ...settings, coalesceBytes, workerId: settings.workerId ?? defaultWorkerId() };
}
