import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Centrifugo release the bench compares with, fetched from the Go module proxy. */
export const CENTRIFUGO_MODULE = 'github.com/centrifugal/centrifugo/v6';
export const CENTRIFUGO_VERSION = 'v6.9.1';
/** The HTTP API key the bench's Centrifugo nodes accept (loopback only, bench only). */
export const CENTRIFUGO_API_KEY = 'switchyard-bench-centrifugo-api-key';

const CACHE = fileURLToPath(new URL('../../../.cache/centrifugo/', import.meta.url));

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Either the binary's path, or why Centrifugo cannot take part in this run. */
export type CentrifugoBuild = { binary: string } | { skipped: string };

/**
 * Builds Centrifugo with `go install` into the git-ignored .cache (once per version; a
 * built binary is reused). Concurrent benches share one build: a lock directory (mkdir is
 * atomic) is held while building, the others wait for it; a lock older than the build's
 * time bound is taken over. Without Go the answer says so, and the bench runs without it.
 */
export async function ensureCentrifugo(log: (line: string) => void): Promise<CentrifugoBuild> {
  const dir = join(CACHE, CENTRIFUGO_VERSION);
  const binary = join(dir, 'centrifugo');
  if (existsSync(binary)) return { binary };
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error !== undefined || go.status !== 0) {
    return { skipped: `centrifugo: not measured, Go is not installed here (it is built with \`go install ${CENTRIFUGO_MODULE}@${CENTRIFUGO_VERSION}\`).` };
  }
  mkdirSync(CACHE, { recursive: true });
  const lock = join(CACHE, `${CENTRIFUGO_VERSION}.lock`);
  const boundMs = 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(binary)) return { binary };
      try {
        if (Date.now() - statSync(lock).mtimeMs > boundMs) rmSync(lock, { recursive: true, force: true });
      } catch {
        /* released meanwhile */
      }
      await sleep(500);
    }
  }
  try {
    if (existsSync(binary)) return { binary };
    log(`building Centrifugo ${CENTRIFUGO_VERSION} (go install; minutes on a cold cache)`);
    // Into a directory of its own, renamed into place whole: a half-written binary is never found.
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    const r = spawnSync('go', ['install', `${CENTRIFUGO_MODULE}@${CENTRIFUGO_VERSION}`], {
      encoding: 'utf8',
      timeout: boundMs,
      env: { ...process.env, GOBIN: tmp },
    });
    if (r.status !== 0 || !existsSync(join(tmp, 'centrifugo'))) {
      rmSync(tmp, { recursive: true, force: true });
      const why = (r.error?.message ?? `${r.stdout}${r.stderr}`).trim().split('\n').slice(-3).join(' ');
      return { skipped: `centrifugo: not measured, \`go install ${CENTRIFUGO_MODULE}@${CENTRIFUGO_VERSION}\` failed: ${why}` };
    }
    rmSync(dir, { recursive: true, force: true });
    spawnSync('mv', [tmp, dir]);
    return existsSync(binary) ? { binary } : { skipped: `centrifugo: not measured, the built binary did not land in ${dir}` };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface CentrifugoNodeConfig {
  port: number;
  hmacSecret: string;
  /** Redis engine on this URL (the 3-node topology); the memory engine without. */
  redisUrl: string | undefined;
  /** Keys in Redis under this prefix: each bench run its own. */
  redisPrefix: string;
}

/**
 * One node's configuration file (Centrifugo v6 layout). History is on as Switchyard's is
 * (1000 events, recovery forced on every subscription); clients may subscribe to any channel
 * with a connection JWT; publishing goes through the HTTP API with the key.
 */
export function writeCentrifugoConfig(dir: string, c: CentrifugoNodeConfig): string {
  const config = {
    http_server: { address: '127.0.0.1', port: c.port },
    log: { level: 'error' },
    client: { token: { hmac_secret_key: c.hmacSecret }, allowed_origins: ['*'] },
    http_api: { key: CENTRIFUGO_API_KEY },
    health: { enabled: true },
    prometheus: { enabled: true },
    usage_stats: { disabled: true },
    channel: {
      without_namespace: {
        allow_subscribe_for_client: true,
        history_size: 1000,
        history_ttl: '300s',
        force_recovery: true,
      },
    },
    engine: c.redisUrl === undefined ? { type: 'memory' } : { type: 'redis', redis: { address: [c.redisUrl], prefix: c.redisPrefix } },
  };
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
  return file;
}
