import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, splitLines } from './edge.js';
import { freePort, waitFor } from './ports.js';

/**
 * Real fault injection: Shopify's Toxiproxy, built from the Go module proxy with the machine's
 * Go into the git-ignored .cache/toxiproxy/ (once; later runs reuse the binary), run on a free
 * loopback port and driven over its HTTP API.
 */
export const TOXIPROXY_VERSION = 'v2.5.0';
const MODULE = 'github.com/Shopify/toxiproxy/v2';
const CACHE = join(ROOT, '.cache', 'toxiproxy');
const BIN_DIR = join(CACHE, TOXIPROXY_VERSION, 'bin');
export const TOXIPROXY_SERVER = join(BIN_DIR, 'toxiproxy-server');
const LOCK = join(CACHE, `${TOXIPROXY_VERSION}.lock`);
const BUILD_TIMEOUT_MS = 10 * 60_000;
/** A lock older than a build can take belongs to a run that died mid-build. */
const STALE_LOCK_MS = BUILD_TIMEOUT_MS + 60_000;
const START_TIMEOUT_MS = 15_000;

const GO_CANDIDATES = [process.env['GO'], '/usr/local/go/bin/go', 'go'].filter((g): g is string => g !== undefined && g !== '');

/** The Go toolchain, or undefined where the machine has none. */
export function goBinary(): string | undefined {
  return GO_CANDIDATES.find((g) => spawnSync(g, ['version'], { stdio: 'ignore' }).status === 0);
}

/** Why chaos tests cannot run here, or undefined when they can (for `describe.skipIf`). */
export function toxiproxyUnavailable(): string | undefined {
  if (existsSync(TOXIPROXY_SERVER)) return undefined;
  return goBinary() === undefined ? `Go is not installed (looked for ${GO_CANDIDATES.join(', ')}): cannot build Toxiproxy ${TOXIPROXY_VERSION}; chaos tests skipped` : undefined;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Builds toxiproxy-server once per cache. Parallel test files race here: the first to create
 * the lock file builds, the others wait for the binary (a stale lock is taken over).
 */
export function buildToxiproxy(): string {
  if (existsSync(TOXIPROXY_SERVER)) return TOXIPROXY_SERVER;
  const go = goBinary();
  if (go === undefined) throw new Error(toxiproxyUnavailable());
  mkdirSync(CACHE, { recursive: true });
  const deadline = Date.now() + BUILD_TIMEOUT_MS + 60_000;
  for (;;) {
    if (existsSync(TOXIPROXY_SERVER)) return TOXIPROXY_SERVER;
    let fd: number | undefined;
    try {
      fd = openSync(LOCK, 'wx');
    } catch {
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { force: true });
      } catch {
        /* the builder just removed it */
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for another run to build Toxiproxy (lock ${LOCK})`);
      sleepSync(500);
      continue;
    }
    try {
      closeSync(fd);
      if (existsSync(TOXIPROXY_SERVER)) return TOXIPROXY_SERVER;
      const gopath = join(CACHE, 'gopath');
      const staging = join(CACHE, `build-${process.pid}`);
      rmSync(staging, { recursive: true, force: true });
      const r = spawnSync(go, ['install', `${MODULE}/cmd/server@${TOXIPROXY_VERSION}`], {
        encoding: 'utf8',
        timeout: BUILD_TIMEOUT_MS,
        env: {
          ...process.env,
          GOBIN: staging,
          GOPATH: gopath,
          GOMODCACHE: join(gopath, 'pkg', 'mod'),
          GOCACHE: join(CACHE, 'gocache'),
          GOFLAGS: '-mod=mod',
          CGO_ENABLED: '0',
        },
      });
      if (r.status !== 0) throw new Error(`go install ${MODULE}/cmd/server@${TOXIPROXY_VERSION} failed (exit ${r.status ?? r.signal ?? r.error?.message}):\n${r.stdout}\n${r.stderr}`);
      mkdirSync(BIN_DIR, { recursive: true });
      // The module names its server command "server"; the cache keeps Toxiproxy's own name.
      renameSync(join(staging, 'server'), TOXIPROXY_SERVER);
      rmSync(staging, { recursive: true, force: true });
      return TOXIPROXY_SERVER;
    } finally {
      rmSync(LOCK, { force: true });
    }
  }
}

export type ToxicType = 'latency' | 'timeout' | 'reset_peer' | 'bandwidth' | 'slow_close' | 'slicer' | 'limit_data';

export interface ToxicSpec {
  type: ToxicType;
  /** Defaults to `<type>_<stream>`. */
  name?: string;
  /** `downstream` (server to client, the default) or `upstream`. */
  stream?: 'upstream' | 'downstream';
  toxicity?: number;
  attributes: Record<string, number>;
}

export interface ToxiProxy {
  readonly name: string;
  /** `127.0.0.1:port` the clients dial instead of the upstream. */
  readonly listen: string;
  readonly port: number;
  readonly upstream: string;
  /** Adds a toxic; returns its name. */
  addToxic(spec: ToxicSpec): Promise<string>;
  removeToxic(name: string): Promise<void>;
  /** Removes every toxic of this proxy. */
  clearToxics(): Promise<void>;
  /** A disabled proxy refuses new connections and closes the open ones. */
  disable(): Promise<void>;
  enable(): Promise<void>;
  /**
   * A network partition: every byte both ways is dropped (connections stay open, as behind a
   * dead link) until `heal`, which lets Toxiproxy close them, like a peer timing out.
   */
  partition(): Promise<void>;
  heal(): Promise<void>;
}

export interface Toxiproxy {
  readonly api: string;
  /** A proxy from a fresh loopback port to `upstream` (`host:port`). */
  proxy(name: string, upstream: string): Promise<ToxiProxy>;
  /** Removes every toxic and re-enables every proxy. */
  reset(): Promise<void>;
  readonly lines: string[];
  stop(): Promise<void>;
}

class ToxiproxyApiError extends Error {
  constructor(
    readonly status: number,
    what: string,
    body: string,
  ) {
    super(`Toxiproxy ${what} answered ${status}: ${body}`);
  }
}

/** Builds (once) and starts toxiproxy-server on a free loopback port. */
export async function startToxiproxy(): Promise<Toxiproxy> {
  const bin = buildToxiproxy();
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const lines: string[] = [];
  const proc: ChildProcess = spawn(bin, ['-host', '127.0.0.1', '-port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  splitLines(proc.stdout!, (l) => lines.push(l));
  splitLines(proc.stderr!, (l) => lines.push(l));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  try {
    await waitFor(async () => (proc.exitCode !== null ? Promise.reject(new Error(`toxiproxy-server exited:\n${lines.join('\n')}`)) : (await fetch(`${api}/version`)).ok || undefined), START_TIMEOUT_MS, `toxiproxy-server on ${port}`);
  } catch (err) {
    await stop();
    throw err;
  }

  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${api}${path}`, { method, ...(body !== undefined && { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
    const text = await res.text();
    if (!res.ok) throw new ToxiproxyApiError(res.status, `${method} ${path}`, text);
    return text === '' ? undefined : JSON.parse(text);
  };

  const proxy = async (name: string, upstream: string): Promise<ToxiProxy> => {
    // Toxiproxy cannot take port 0; a port that a race takes meanwhile fails loudly here.
    const listenPort = await freePort();
    const listen = `127.0.0.1:${listenPort}`;
    await call('POST', '/proxies', { name, listen, upstream, enabled: true });
    const base = `/proxies/${encodeURIComponent(name)}`;
    const toxics = async () => (await call('GET', `${base}/toxics`)) as { name: string }[];
    const handle: ToxiProxy = {
      name,
      listen,
      port: listenPort,
      upstream,
      async addToxic(spec) {
        const stream = spec.stream ?? 'downstream';
        const toxicName = spec.name ?? `${spec.type}_${stream}`;
        await call('POST', `${base}/toxics`, { name: toxicName, type: spec.type, stream, toxicity: spec.toxicity ?? 1, attributes: spec.attributes });
        return toxicName;
      },
      async removeToxic(toxicName) {
        await call('DELETE', `${base}/toxics/${encodeURIComponent(toxicName)}`);
      },
      async clearToxics() {
        for (const t of await toxics()) await handle.removeToxic(t.name);
      },
      async disable() {
        await call('POST', base, { enabled: false });
      },
      async enable() {
        await call('POST', base, { enabled: true });
      },
      async partition() {
        await handle.addToxic({ type: 'timeout', name: 'partition_up', stream: 'upstream', attributes: { timeout: 0 } });
        await handle.addToxic({ type: 'timeout', name: 'partition_down', stream: 'downstream', attributes: { timeout: 0 } });
      },
      async heal() {
        await handle.removeToxic('partition_up');
        await handle.removeToxic('partition_down');
      },
    };
    return handle;
  };

  return {
    api,
    proxy,
    lines,
    async reset() {
      await call('POST', '/reset');
    },
    stop,
  };
}
