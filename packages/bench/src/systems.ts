import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CENTRIFUGO_API_KEY, writeCentrifugoConfig } from './centrifugo.js';
import type { Proto } from './loadproc.js';
import { pinned } from './pin.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/**
 * From the sources (a checkout) the servers run through tsx; compiled (an installed package)
 * they are plain JavaScript, and the Switchyard edge is this very `switchyard` command.
 */
const COMPILED = import.meta.url.endsWith('.js');
const EXT = COMPILED ? 'js' : 'ts';
const NODE_ARGS = COMPILED ? [] : ['--import', 'tsx'];
const CLI = COMPILED ? (process.argv[1] ?? 'switchyard') : fileURLToPath(new URL('../../cli/src/main.ts', import.meta.url));
const UWS_RAW = fileURLToPath(new URL(`./servers/uws-raw.${EXT}`, import.meta.url));
const SOCKETIO = fileURLToPath(new URL(`./servers/socketio.${EXT}`, import.meta.url));

export type SystemName = 'switchyard' | 'uws_raw' | 'socketio_redis' | 'centrifugo';
export const SYSTEMS: readonly SystemName[] = ['switchyard', 'uws_raw', 'socketio_redis', 'centrifugo'];

export const PROTO: Record<SystemName, Proto> = { switchyard: 'sy', uws_raw: 'raw', socketio_redis: 'sio', centrifugo: 'cf' };

/** What a system needs from the bench beyond its name: Centrifugo's binary, built at bench start. */
export interface SystemOptions {
  centrifugoBinary?: string;
  /**
   * Switchyard's nodes run with V8's CPU profiler (`--cpu-prof`) and write a `.cpuprofile`
   * here when they stop; they are then stopped with SIGTERM (a short drain) instead of SIGKILL,
   * since a profile is written only on a normal exit.
   */
  profileDir?: string;
}

/** A bench-only secret, for the JWTs every authenticated client presents. */
export const BENCH_SECRET = 'switchyard-bench-secret-0123456789-abcdefghijklmnop';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(probe: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface Redis {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  cli(...args: string[]): string;
  stop(): Promise<void>;
}

export function redisAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A private redis-server on a free loopback port: no persistence, stopped with the bench. */
export async function startRedis(): Promise<Redis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sy-bench-redis-'));
  const proc = spawn(...pinned('server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no', '--loglevel', 'warning']), {
    stdio: 'ignore',
  });
  const cli = (...args: string[]) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  await waitFor(() => cli('ping').trim() === 'PONG', 10_000, `redis-server on ${port}`);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: proc.pid!,
    cli,
    async stop() {
      await killProc(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function killProc(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}

export interface Node {
  readonly port: number;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Output lines kept for error reports. */
  readonly lines: string[];
  /** Removed when the node is stopped (Centrifugo's configuration). */
  readonly dir?: string;
  /** Stopped with SIGTERM first (a profiled node writes its profile on a normal exit). */
  readonly graceful?: boolean;
}

export interface RunningSystem {
  readonly name: SystemName;
  readonly proto: Proto;
  readonly nodes: Node[];
  /** Redis, when this topology uses it (its CPU counts with the system's). */
  readonly redis: Redis | undefined;
  /** The key a publisher presents to the system's HTTP publish API (Centrifugo's). */
  readonly apiKey: string | undefined;
  /** Every process whose CPU is the system's: its nodes, and Redis when it uses one. */
  pids(): number[];
  ports(): number[];
  /** SIGKILL one node (the node-kill scenario). */
  killNode(i: number): Promise<void>;
  /** Starts a killed node again, on a new port. */
  restartNode(i: number): Promise<void>;
  stop(): Promise<void>;
}

function collect(proc: ChildProcess, lines: string[]): void {
  for (const stream of [proc.stdout, proc.stderr]) {
    let rest = '';
    stream?.on('data', (chunk: Buffer) => {
      rest += chunk.toString();
      let i: number;
      while ((i = rest.indexOf('\n')) >= 0) {
        if (lines.length < 200) lines.push(rest.slice(0, i));
        else lines.splice(100, 1, rest.slice(0, i));
        rest = rest.slice(i + 1);
      }
    });
  }
}

async function startNode(name: SystemName, index: number, redisUrl: string | undefined, opts: SystemOptions, redisPrefix: string): Promise<Node> {
  const port = await freePort();
  const lines: string[] = [];
  let dir: string | undefined;
  const base: NodeJS.ProcessEnv = { ...process.env, PORT: String(port) };
  delete base['UWS_USE_FALLBACK'];
  if (redisUrl !== undefined) base['REDIS_URL'] = redisUrl;
  else delete base['REDIS_URL'];
  let args: string[];
  if (name === 'switchyard') {
    const profile = opts.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`];
    args = [...NODE_ARGS, ...profile, CLI, 'edge'];
    Object.assign(base, {
      HOST: '127.0.0.1',
      WORKER_ID: `bench-${index}`,
      JWT_SECRET: BENCH_SECRET,
      LOG_LEVEL: 'warn',
      // The publisher sends far more than a browser would; the bench lifts the per-client
      // limits that exist to protect a node from abusive clients, nothing else.
      RATE_LIMIT_PER_S: '100000000',
      RATE_LIMIT_BURST: '100000000',
      USER_RATE_LIMIT_PER_S: '100000000',
      MAX_CONNECTIONS_PER_USER: '100000',
      MAX_TOTAL_CONNECTIONS: '1000000',
      // The bench places clients on nodes itself; shedding them mid-measurement would skew it.
      REBALANCE: 'false',
      // Profiled nodes are stopped with SIGTERM: clients are told to go at once, no drain wait.
      ...(opts.profileDir !== undefined && { DRAIN_TIMEOUT_MS: '500' }),
    });
    delete base['REDIS_CLUSTER_NODES'];
    delete base['JWT_PUBLIC_KEY'];
    delete base['JWKS_URL'];
    delete base['ALLOWED_ORIGINS'];
  } else if (name === 'uws_raw') {
    args = [...NODE_ARGS, UWS_RAW];
  } else if (name === 'centrifugo') {
    if (opts.centrifugoBinary === undefined) throw new Error('centrifugo: no binary (ensureCentrifugo first)');
    dir = mkdtempSync(join(tmpdir(), 'sy-bench-centrifugo-'));
    const config = writeCentrifugoConfig(dir, { port, hmacSecret: BENCH_SECRET, redisUrl, redisPrefix });
    args = ['-c', config];
  } else {
    args = [...NODE_ARGS, SOCKETIO];
    base['JWT_SECRET'] = BENCH_SECRET;
  }
  const command = name === 'centrifugo' ? opts.centrifugoBinary! : process.execPath;
  const proc = spawn(...pinned('server', command, args), { cwd: ROOT, env: base, stdio: ['ignore', 'pipe', 'pipe'] });
  collect(proc, lines);
  let exited = false;
  proc.once('exit', () => (exited = true));
  const listening = async () => {
    if (exited) throw new Error('exited');
    if (name === 'switchyard' || name === 'centrifugo') {
      const res = await fetch(`http://127.0.0.1:${port}/${name === 'switchyard' ? 'ready' : 'health'}`);
      return res.status === 200;
    }
    return lines.some((l) => l.startsWith('listening'));
  };
  try {
    await waitFor(async () => {
      if (exited) return true;
      return listening();
    }, 30_000, `${name} node ${index} on ${port}`);
    if (exited) throw new Error('exited during start-up');
  } catch (err) {
    await killProc(proc);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    throw new Error(`${name} node ${index} did not start: ${(err as Error).message}\n${lines.slice(-20).join('\n')}`);
  }
  return { port, proc, pid: proc.pid!, lines, ...(dir !== undefined && { dir }), graceful: name === 'switchyard' && opts.profileDir !== undefined };
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
async function terminate(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

async function stopNode(n: Node): Promise<void> {
  await (n.graceful === true ? terminate(n.proc, 15_000) : killProc(n.proc));
  if (n.dir !== undefined) rmSync(n.dir, { recursive: true, force: true });
}

/** Starts a system as `nodes` processes; with more than one, on the given Redis. */
export async function startSystem(name: SystemName, nodes: number, redis: Redis | undefined, opts: SystemOptions = {}): Promise<RunningSystem> {
  const started: Node[] = [];
  const prefix = `sybench-${randomBytes(4).toString('hex')}`;
  const useRedis = nodes > 1 ? redis : undefined;
  if (nodes > 1 && useRedis === undefined) throw new Error(`${name}: ${nodes} nodes need Redis`);
  try {
    // One at a time: start-up is CPU-heavy (tsx) and this machine is small.
    for (let i = 0; i < nodes; i++) started.push(await startNode(name, i, useRedis?.url, opts, prefix));
  } catch (err) {
    await Promise.all(started.map(stopNode));
    throw err;
  }
  return {
    name,
    proto: PROTO[name],
    nodes: started,
    redis: useRedis,
    apiKey: name === 'centrifugo' ? CENTRIFUGO_API_KEY : undefined,
    pids() {
      const pids = started.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null).map((n) => n.pid);
      if (useRedis !== undefined) pids.push(useRedis.pid);
      return pids;
    },
    ports: () => started.map((n) => n.port),
    async killNode(i: number) {
      await killProc(started[i]!.proc);
    },
    async restartNode(i: number) {
      await stopNode(started[i]!);
      started[i] = await startNode(name, i, useRedis?.url, opts, prefix);
    },
    async stop() {
      // Nothing of a bench node is worth draining: SIGKILL, and wait for the exit.
      await Promise.all(started.map(stopNode));
    },
  };
}
