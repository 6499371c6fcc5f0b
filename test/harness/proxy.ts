import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderProxyConfig, type ProxyKind, type Upstream } from '../../scripts/render-proxy-config.js';
import { freePort, startOnFreePort, waitFor } from './ports.js';
import { HAPROXY, NGINX } from './system.js';

export type { ProxyKind } from '../../scripts/render-proxy-config.js';

/** A throw-away self-signed certificate for 127.0.0.1 / localhost, made with openssl. */
export interface TestCert {
  readonly certPath: string;
  readonly keyPath: string;
  /** Certificate and key in one file (what HAProxy's `crt` takes). */
  readonly pemPath: string;
  /** The certificate, for a client's `ca`. */
  readonly certPem: string;
}

export function makeTestCert(dir: string): TestCert {
  const certPath = join(dir, 'tls.crt');
  const keyPath = join(dir, 'tls.key');
  const pemPath = join(dir, 'tls.pem');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyPath, '-out', certPath],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  const certPem = readFileSync(certPath, 'utf8');
  writeFileSync(pemPath, certPem + readFileSync(keyPath, 'utf8'), { mode: 0o600 });
  return { certPath, keyPath, pemPath, certPem };
}

export interface ProxyOptions {
  /** Edge ports on 127.0.0.1, in order; HAProxy names them by `names` (default edge1, ...). */
  upstreams: number[];
  names?: string[];
  /** Adds the TLS listener with a fresh self-signed certificate. */
  tls?: boolean;
  /** Placeholder values over the production defaults (limits, check intervals, ...). */
  values?: Record<string, string>;
}

export interface HaproxyServerState {
  /** UP, DOWN, "UP 1/2", "DOWN 1/2", MAINT, ... */
  status: string;
  /** L7OK, L7STS (wrong status), L4CON (connection refused), ... */
  checkStatus: string;
  /** The HTTP status of the last layer-7 check, when there was one. */
  checkCode: string;
}

export interface ProxyProcess {
  readonly kind: ProxyKind;
  readonly port: number;
  /** ws://127.0.0.1:PORT/ws */
  readonly url: string;
  /** http://127.0.0.1:PORT */
  readonly http: string;
  /** wss://127.0.0.1:TLSPORT/ws, with `cert` to trust, when started with `tls`. */
  readonly wssUrl?: string;
  readonly https?: string;
  readonly cert?: TestCert;
  /** The rendered configuration. */
  readonly config: string;
  readonly dir: string;
  /** stdout/stderr lines (HAProxy logs to stdout; nginx's logs are files in `dir`). */
  readonly lines: string[];
  readonly proc: ChildProcess;
  /** nginx: the access and error logs so far. */
  logs(): string;
  /** HAProxy only: each server's state from the runtime API (`show stat`). */
  servers(): Promise<Record<string, HaproxyServerState>>;
  stop(): Promise<void>;
}

function collect(stream: NodeJS.ReadableStream, lines: string[]): void {
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    rest += chunk.toString();
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      lines.push(rest.slice(0, i));
      rest = rest.slice(i + 1);
    }
  });
}

/** GET over plain HTTP from 127.0.0.1; resolves with the status, or rejects on a socket error. */
export function httpGet(url: string, options: { localAddress?: string; agent?: import('node:http').Agent } = {}): Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress: options.localAddress, agent: options.agent, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function runtimeApi(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(socketPath);
    let out = '';
    const timer = setTimeout(() => sock.destroy(new Error('runtime API timed out')), 3000);
    sock.on('connect', () => sock.end(`${command}\n`));
    sock.on('data', (d: Buffer) => (out += d.toString()));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * Renders nginx/nginx.conf.template or haproxy/haproxy.cfg.template with the given edges and
 * starts the real Debian binary on free loopback ports, its pid, logs, temp files and socket in a
 * temp dir, in the foreground as a child of the test. Resolves once the proxy answers its own
 * health path.
 */
export function startProxy(kind: ProxyKind, options: ProxyOptions): Promise<ProxyProcess> {
  // A free port can be taken before the proxy binds it: then start again on another.
  return startOnFreePort((port) => startProxyOn(kind, options, port));
}

async function startProxyOn(kind: ProxyKind, options: ProxyOptions, port: number): Promise<ProxyProcess> {
  const dir = mkdtempSync(join(tmpdir(), `sy-${kind}-`));
  // nginx's workers drop to `nobody` when the master is root; they must reach the temp dirs.
  chmodSync(dir, 0o755);
  const tlsPort = options.tls ? await freePort() : undefined;
  const cert = options.tls ? makeTestCert(dir) : undefined;
  const upstreams: Upstream[] = options.upstreams.map((p, i) => ({ host: '127.0.0.1', port: p, name: options.names?.[i] ?? `edge${i + 1}` }));
  const values: Record<string, string> =
    kind === 'nginx'
      ? {
          LISTEN: `127.0.0.1:${port}`,
          RUN_DIR: dir,
          LOG_DIR: dir,
          TEMP_DIR: dir,
          ERROR_LOG_LEVEL: 'info',
          WORKER_CONNECTIONS: '1024',
          WORKER_RLIMIT_NOFILE: '4096',
          ...(cert && tlsPort && { TLS_LISTEN: `127.0.0.1:${tlsPort}`, TLS_CERT: cert.certPath, TLS_KEY: cert.keyPath }),
          ...options.values,
        }
      : {
          LISTEN: `127.0.0.1:${port}`,
          RUN_DIR: dir,
          MAXCONN: '2000',
          SERVER_MAXCONN: '1000',
          ...(cert && tlsPort && { TLS_LISTEN: `127.0.0.1:${tlsPort}`, TLS_PEM: cert.pemPath }),
          ...options.values,
        };
  const config = renderProxyConfig(kind, { upstreams, tls: options.tls === true, values });
  const configPath = join(dir, kind === 'nginx' ? 'nginx.conf' : 'haproxy.cfg');
  writeFileSync(configPath, config);

  const check =
    kind === 'nginx'
      ? spawnSync(NGINX, ['-t', '-p', dir, '-e', join(dir, 'error.log'), '-c', configPath], { encoding: 'utf8', timeout: 15_000 })
      : // -dW: any warning fails the check too.
        spawnSync(HAPROXY, ['-c', '-dW', '-f', configPath], { encoding: 'utf8', timeout: 15_000 });
  // nginx -t exits 0 on warnings: they count as failures here.
  if (check.status !== 0 || /\[warn\]/.test(check.stderr)) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${kind} refused its configuration:\n${check.stdout}${check.stderr}\n--- config ---\n${config}`);
  }

  const args =
    kind === 'nginx'
      ? ['-p', dir, '-e', join(dir, 'error.log'), '-c', configPath, '-g', 'daemon off;']
      : ['-db', '-f', configPath, '-p', join(dir, 'haproxy.pid')];
  const proc = spawn(kind === 'nginx' ? NGINX : HAPROXY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  collect(proc.stdout!, lines);
  collect(proc.stderr!, lines);
  const logs = () =>
    ['access.log', 'error.log']
      .map((f) => {
        try {
          return readFileSync(join(dir, f), 'utf8');
        } catch {
          return '';
        }
      })
      .join('');
  const stop = async () => {
    // nginx: SIGTERM is its fast shutdown (workers included); HAProxy stops at once on it too.
    await stopProcess(proc, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const health = kind === 'nginx' ? '/nginx-health' : '/haproxy-health';
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`${kind} exited (${proc.exitCode}): ${lines.join('\n')}\n${logs()}`);
        return (await httpGet(`http://127.0.0.1:${port}${health}`)).status === 200 ? true : undefined;
      },
      10_000,
      `${kind} on ${port}`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const socketPath = join(dir, 'haproxy.sock');
  return {
    kind,
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    http: `http://127.0.0.1:${port}`,
    ...(tlsPort !== undefined && { wssUrl: `wss://127.0.0.1:${tlsPort}/ws`, https: `https://127.0.0.1:${tlsPort}` }),
    ...(cert && { cert }),
    config,
    dir,
    lines,
    proc,
    logs,
    async servers() {
      if (kind !== 'haproxy') throw new Error('servers() is HAProxy only');
      const csv = await runtimeApi(socketPath, 'show stat');
      const rows = csv.split('\n').filter((l) => l.length > 0);
      const header = rows[0]!.replace(/^# /, '').split(',');
      const col = (name: string) => header.indexOf(name);
      const out: Record<string, HaproxyServerState> = {};
      for (const row of rows.slice(1)) {
        const f = row.split(',');
        if (f[col('pxname')] !== 'switchyard_edges' || ['FRONTEND', 'BACKEND'].includes(f[col('svname')]!)) continue;
        out[f[col('svname')]!] = { status: f[col('status')]!, checkStatus: f[col('check_status')]!, checkCode: f[col('check_code')]! };
      }
      return out;
    },
    stop,
  };
}
