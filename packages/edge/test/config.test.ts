import { hostname } from 'node:os';
import { ConfigError } from '@switchyard/config';
import { describe, expect, it } from 'vitest';
import { defaultWorkerId, edgeSettings, loadEdgeConfig } from '../src/config.js';

const SECRET = 's'.repeat(32);

function refusal(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const load = (env: Record<string, string>, file?: Record<string, unknown>) =>
  loadEdgeConfig({ env: { JWT_SECRET: SECRET, ...env }, ...(file !== undefined && { file }) });

describe('loadEdgeConfig defaults (PROTOCOL.md)', () => {
  const c = load({});

  it('match the contract', () => {
    expect(c.port).toBe(8765);
    expect(c.authTimeoutMs).toBe(10_000);
    expect(c.maxMessageBytes).toBe(65_536);
    expect(c.maxConnectionsPerUser).toBe(5);
    expect(c.maxTotalConnections).toBe(100_000);
    expect(c.maxSubscriptionsPerConnection).toBe(100);
    expect(c.rateLimitPerS).toBe(50);
    expect(c.rateLimitBurst).toBe(100);
    expect(c.maxBackpressureBytes).toBe(1024 * 1024);
    expect(c.pingIntervalS).toBe(25);
    expect(c.idleTimeoutS).toBe(60);
    expect(c.drainTimeoutMs).toBe(30_000);
    expect(c.historySize).toBe(1000);
    expect(c.historyTtlS).toBe(3600);
    expect(c.sessionTtlS).toBe(3600);
    expect(c.devTokens).toBe(false);
    expect(c.allowedOrigins).toBeUndefined();
    expect(c.redisUrl).toBeUndefined();
  });

  it('read their settings from the documented environment names', () => {
    const names = Object.fromEntries(Object.entries(edgeSettings).map(([field, s]) => [field, s.env]));
    expect(names).toMatchObject({
      port: 'PORT',
      authTimeoutMs: 'AUTH_TIMEOUT_MS',
      maxMessageBytes: 'MAX_MESSAGE_BYTES',
      maxConnectionsPerUser: 'MAX_CONNECTIONS_PER_USER',
      maxTotalConnections: 'MAX_TOTAL_CONNECTIONS',
      maxSubscriptionsPerConnection: 'MAX_SUBSCRIPTIONS_PER_CONNECTION',
      rateLimitPerS: 'RATE_LIMIT_PER_S',
      rateLimitBurst: 'RATE_LIMIT_BURST',
      maxBackpressureBytes: 'MAX_BACKPRESSURE_BYTES',
      pingIntervalS: 'PING_INTERVAL_S',
      idleTimeoutS: 'IDLE_TIMEOUT_S',
      drainTimeoutMs: 'DRAIN_TIMEOUT_MS',
      historySize: 'HISTORY_SIZE',
      historyTtlS: 'HISTORY_TTL_S',
      sessionTtlS: 'WEBSOCKET_SESSION_TTL',
      devTokens: 'DEV_TOKENS',
      allowedOrigins: 'ALLOWED_ORIGINS',
      jwtSecret: 'JWT_SECRET',
      jwtPublicKey: 'JWT_PUBLIC_KEY',
      jwksUrl: 'JWKS_URL',
      jwtIssuer: 'JWT_ISSUER',
      jwtAudience: 'JWT_AUDIENCE',
      broadcastApiKey: 'BROADCAST_API_KEY',
      adminApiKey: 'ADMIN_API_KEY',
      redisUrl: 'REDIS_URL',
      redisClusterNodes: 'REDIS_CLUSTER_NODES',
    });
    const envNames = Object.values(names);
    expect(new Set(envNames).size).toBe(envNames.length);
  });

  it('fill in a worker id from the host and pid unless WORKER_ID is set', () => {
    expect(c.workerId).toBe(defaultWorkerId());
    expect(c.workerId).toBe(`${hostname()}-${process.pid}`);
    expect(load({ WORKER_ID: 'pod-7' }).workerId).toBe('pod-7');
  });
});

describe('loadEdgeConfig reads values', () => {
  it('from the environment over a config file', () => {
    const c = load({ PORT: '9001', ALLOWED_ORIGINS: 'https://a.example,https://b.example' }, { PORT: 9000, DEV_TOKENS: true });
    expect(c.port).toBe(9001);
    expect(c.devTokens).toBe(true);
    expect(c.allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
  });

  it('refuses an unknown config file key', () => {
    expect(refusal(() => load({}, { JWT_SECRETT: 'x' })).setting).toBe('JWT_SECRETT');
  });

  it('refuses bad values, naming the setting', () => {
    expect(refusal(() => load({ PORT: '70000' })).setting).toBe('PORT');
    expect(refusal(() => load({ LOG_LEVEL: 'chatty' })).setting).toBe('LOG_LEVEL');
    expect(refusal(() => load({ MAX_CONNECTIONS_PER_USER: '0' })).setting).toBe('MAX_CONNECTIONS_PER_USER');
    expect(refusal(() => load({ DEV_TOKENS: 'sure' })).setting).toBe('DEV_TOKENS');
  });
});

describe('loadEdgeConfig keys', () => {
  it('refuses a JWT_SECRET under 32 bytes and accepts exactly 32', () => {
    const err = refusal(() => loadEdgeConfig({ env: { JWT_SECRET: 's'.repeat(31) } }));
    expect(err.setting).toBe('JWT_SECRET');
    expect(err.reason).toContain('32 bytes');
    expect(loadEdgeConfig({ env: { JWT_SECRET: 's'.repeat(32) } }).jwtSecret).toBe('s'.repeat(32));
  });

  it('counts bytes, not characters', () => {
    // 16 two-byte characters: 32 bytes.
    expect(loadEdgeConfig({ env: { JWT_SECRET: 'é'.repeat(16) } }).jwtSecret).toBe('é'.repeat(16));
    expect(refusal(() => loadEdgeConfig({ env: { JWT_SECRET: 'é'.repeat(15) + 'x' } })).setting).toBe('JWT_SECRET');
  });

  it('needs exactly one key source', () => {
    const none = refusal(() => loadEdgeConfig({ env: {} }));
    expect(none.setting).toBe('JWT_SECRET');
    expect(none.reason).toMatch(/required/);
    const pem = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----';
    for (const env of [
      { JWT_SECRET: SECRET, JWT_PUBLIC_KEY: pem },
      { JWT_SECRET: SECRET, JWKS_URL: 'https://idp.example/jwks' },
      { JWT_PUBLIC_KEY: pem, JWKS_URL: 'https://idp.example/jwks' },
    ]) {
      expect(refusal(() => loadEdgeConfig({ env })).reason, Object.keys(env).join('+')).toMatch(/exactly one/);
    }
    expect(loadEdgeConfig({ env: { JWT_PUBLIC_KEY: pem } }).jwtPublicKey).toBe(pem);
    expect(loadEdgeConfig({ env: { JWKS_URL: 'https://idp.example/jwks' } }).jwksUrl).toBe('https://idp.example/jwks');
  });

  it('refuses a JWKS_URL that is not http(s)', () => {
    expect(refusal(() => loadEdgeConfig({ env: { JWKS_URL: 'file:///etc/jwks.json' } })).setting).toBe('JWKS_URL');
  });
});

describe('loadEdgeConfig cross-field checks', () => {
  it('refuses RATE_LIMIT_BURST below RATE_LIMIT_PER_S', () => {
    const err = refusal(() => load({ RATE_LIMIT_PER_S: '50', RATE_LIMIT_BURST: '49' }));
    expect(err.setting).toBe('RATE_LIMIT_BURST');
    expect(refusal(() => load({ RATE_LIMIT_PER_S: '200' })).setting).toBe('RATE_LIMIT_BURST');
    expect(load({ RATE_LIMIT_PER_S: '50', RATE_LIMIT_BURST: '50' }).rateLimitBurst).toBe(50);
  });

  it('refuses IDLE_TIMEOUT_S not above PING_INTERVAL_S', () => {
    expect(refusal(() => load({ PING_INTERVAL_S: '25', IDLE_TIMEOUT_S: '25' })).setting).toBe('IDLE_TIMEOUT_S');
    expect(refusal(() => load({ PING_INTERVAL_S: '30', IDLE_TIMEOUT_S: '20' })).setting).toBe('IDLE_TIMEOUT_S');
    expect(refusal(() => load({ PING_INTERVAL_S: '70' })).setting).toBe('IDLE_TIMEOUT_S');
    expect(load({ PING_INTERVAL_S: '25', IDLE_TIMEOUT_S: '26' }).idleTimeoutS).toBe(26);
  });

  it('applies the checks to overrides too', () => {
    expect(refusal(() => loadEdgeConfig({ env: { JWT_SECRET: SECRET } }, { idleTimeoutS: 5, pingIntervalS: 10 })).setting).toBe('IDLE_TIMEOUT_S');
    expect(loadEdgeConfig({ env: { JWT_SECRET: SECRET } }, { port: 0 }).port).toBe(0);
  });
});
