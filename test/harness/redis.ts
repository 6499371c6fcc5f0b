import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortPair, startOnFreePort, waitFor } from './ports.js';

const REDIS_SERVER = 'redis-server';
const REDIS_CLI = 'redis-cli';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stops (SIGKILL) and starts again on the same port, empty (no persistence). */
  restart(downMs?: number): Promise<void>;
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  cli(...args: string[]): string;
}

function ping(port: number): boolean {
  const r = spawnSync(REDIS_CLI, ['-p', String(port), 'ping'], { encoding: 'utf8', timeout: 2000 });
  return r.stdout.trim() === 'PONG';
}

function launch(port: number, dir: string, extra: string[] = []): ChildProcess {
  const proc = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no', '--loglevel', 'warning', ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  // Kept to say why a start failed (e.g. "Address already in use", which startRedis retries).
  let said = '';
  proc.stderr!.on('data', (d: Buffer) => (said = (said + d.toString()).slice(-4000)));
  Object.defineProperty(proc, 'said', { get: () => said });
  return proc;
}

/** Waits until the server on `port` answers, failing at once (with what it said) if it exited. */
async function answering(proc: ChildProcess, port: number, what: string): Promise<void> {
  const said = () => (proc as ChildProcess & { said?: string }).said ?? '';
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${what} exited (${proc.exitCode ?? proc.signalCode}): ${said()}`);
    if (ping(port)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not answer within 10 s: ${said()}`);
    await new Promise((r) => setTimeout(r, 50)); // sleep-ok: poll interval of a bounded wait on the condition
  }
}

async function kill(proc: ChildProcess | undefined): Promise<void> {
  if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}

/** A real redis-server on a free loopback port, no persistence, in a temp dir. */
export function startRedis(): Promise<RedisServer> {
  // A free port can be taken before redis-server binds it: then start again on another.
  return startOnFreePort(startRedisOn);
}

async function startRedisOn(port: number): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sy-redis-'));
  let proc: ChildProcess | undefined;
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      proc = launch(port, dir);
      await answering(proc, port, `redis-server on ${port}`);
    },
    async kill() {
      await kill(proc);
      proc = undefined;
    },
    async restart(downMs = 0) {
      await server.kill();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs)); // sleep-ok: the outage itself, which the caller sized
      await server.start();
    },
    async stop() {
      await server.kill();
      rmSync(dir, { recursive: true, force: true });
    },
    cli: (...args) => spawnSync(REDIS_CLI, ['-p', String(port), ...args], { encoding: 'utf8' }).stdout,
  };
  try {
    await server.start();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

export interface RedisCluster {
  /** `host:port` of every master, for REDIS_CLUSTER_NODES. */
  readonly nodes: string[];
  readonly ports: number[];
  /** The port of the master serving a key's slot. */
  masterFor(key: string): number;
  /** redis-cli against the cluster, following MOVED redirects (`-c`). */
  cli(...args: string[]): string;
  /**
   * Kills every master (SIGKILL), keeps them down `downMs`, and starts them again on the same
   * ports, empty; their nodes.conf keeps the slot map, so the same cluster comes back. Resolves
   * once every node says cluster_state:ok.
   */
  restart(downMs?: number): Promise<void>;
  /** Every node, masters and replicas (seeds for REDIS_CLUSTER_NODES may be any of them). */
  readonly allPorts: number[];
  /** Ports of the replicas of the master on `masterPort`. */
  replicasOf(masterPort: number): number[];
  /**
   * A coordinated failover (`CLUSTER FAILOVER` on one of its replicas): resolves with the
   * promoted replica's port once it serves as master and the cluster is ok again.
   */
  failover(masterPort: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

const cli = (port: number, ...args: string[]) => spawnSync(REDIS_CLI, ['-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 }).stdout ?? '';

/** `role` of a node: `master` or `slave`, and for a replica its master's port. */
function roleOf(port: number): { role: string; masterPort?: number } {
  const lines = cli(port, 'role').split('\n').map((l) => l.trim());
  return lines[0] === 'slave' ? { role: 'slave', masterPort: Number(lines[2]) } : { role: lines[0] ?? '' };
}

/**
 * A real Redis Cluster on free loopback ports: `masters` masters (3 by default) and
 * `replicasPerMaster` replicas of each (none by default).
 */
export async function startRedisCluster(masters = 3, replicasPerMaster = 0): Promise<RedisCluster> {
  const ports: number[] = [];
  const procs: ChildProcess[] = [];
  const dirs: string[] = [];
  for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
    const port = await freePortPair(10_000);
    const dir = mkdtempSync(join(tmpdir(), 'sy-rcluster-'));
    dirs.push(dir);
    ports.push(port);
  }
  const clusterArgs = (i: number) => ['--cluster-enabled', 'yes', '--cluster-config-file', join(dirs[i]!, 'nodes.conf'), '--cluster-node-timeout', '2000'];
  const launchAll = async () => {
    for (let i = 0; i < ports.length; i++) procs[i] = launch(ports[i]!, dirs[i]!, clusterArgs(i));
    // Fails at once with what the node said if it exited (a port taken while it was down, say).
    for (let i = 0; i < ports.length; i++) await answering(procs[i]!, ports[i]!, `redis cluster node ${ports[i]}`);
  };
  const clusterOk = () => ports.every((p) => cli(p, 'cluster', 'info').includes('cluster_state:ok'));
  const waitClusterOk = () => waitFor(() => clusterOk() || undefined, 20_000, 'cluster_state:ok on every node');
  await launchAll();
  const create = spawnSync(REDIS_CLI, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}\n${create.stderr}`);
  await waitClusterOk();
  if (replicasPerMaster > 0) {
    await waitFor(
      () => ports.filter((p) => roleOf(p).role === 'slave').every((p) => cli(p, 'info', 'replication').includes('master_link_status:up')) || undefined,
      30_000,
      'every replica in sync with its master',
    );
  }
  const masterPorts = () => ports.filter((p) => roleOf(p).role === 'master');
  return {
    get nodes() {
      return masterPorts().map((p) => `127.0.0.1:${p}`);
    },
    get ports() {
      return masterPorts();
    },
    allPorts: ports,
    replicasOf: (masterPort) => ports.filter((p) => roleOf(p).masterPort === masterPort),
    async failover(masterPort, timeoutMs = 30_000) {
      const replica = ports.find((p) => roleOf(p).masterPort === masterPort);
      if (replica === undefined) throw new Error(`no replica of ${masterPort} to fail over to`);
      const answer = cli(replica, 'cluster', 'failover').trim();
      if (answer !== 'OK') throw new Error(`CLUSTER FAILOVER on ${replica} answered ${answer}`);
      await waitFor(() => (roleOf(replica).role === 'master' && clusterOk()) || undefined, timeoutMs, `replica ${replica} promoted`);
      return replica;
    },
    masterFor(key: string) {
      const slot = Number(cli(ports[0]!, 'cluster', 'keyslot', key).trim());
      const slots = cli(ports[0]!, 'cluster', 'slots').split('\n').map((l) => l.trim());
      // Flat output: start, end, ip, port, id, ... per range.
      for (let i = 0; i + 3 < slots.length; i++) {
        const start = Number(slots[i]);
        const end = Number(slots[i + 1]);
        if (Number.isInteger(start) && Number.isInteger(end) && slots[i + 2] === '127.0.0.1' && slot >= start && slot <= end) return Number(slots[i + 3]);
      }
      throw new Error(`no master for slot ${slot}`);
    },
    cli: (...args) => spawnSync(REDIS_CLI, ['-c', '-p', String(masterPorts()[0] ?? ports[0]), ...args], { encoding: 'utf8' }).stdout,
    async restart(downMs = 0) {
      await Promise.all(procs.map(kill));
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs)); // sleep-ok: the outage itself, which the caller sized
      await launchAll();
      await waitClusterOk();
    },
    async stop() {
      await Promise.all(procs.map(kill));
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}
