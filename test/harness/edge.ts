import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childEnv } from './env.js';
import { freePort, isAddressInUse } from './ports.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../packages/cli/src/main.ts', import.meta.url));

/** A test-sized secret (the edge refuses fewer than 32 bytes). */
export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256!!';

export interface EdgeProcess {
  readonly port: number;
  readonly url: string;
  readonly http: string;
  readonly proc: ChildProcess;
  /** Every stdout/stderr line so far (JSON log lines and anything else). */
  readonly lines: string[];
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGKILL if still running; always resolves. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra CLI arguments after the subcommand. */
  args?: string[];
  /** Subcommand: `edge` by default. */
  command?: string;
  /** How long to wait for "edge listening". */
  timeoutMs?: number;
}

/**
 * Starts a real edge as its own process on a free port (PORT=0; the port is read back from
 * the "edge listening" log line). Env defaults suit tests; anything passed wins; nothing else
 * from this process's environment reaches it beyond the allow-list of ./env.ts.
 */
export async function startEdge(env: Record<string, string | undefined> = {}, options: StartOptions = {}): Promise<EdgeProcess> {
  // Only the allow-listed environment and the test's own settings: a REDIS_URL in the shell
  // must not turn a single-node test into a shared-Redis one.
  const fullEnv = childEnv({ PORT: '0', HOST: '127.0.0.1', JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'info' }, env);
  // PORT=0 cannot collide. A test that named a port (one freePort() picked a moment ago) can lose
  // it to another process before the edge binds it: start again on a fresh one, up to 5 times.
  const portNamed = fullEnv['PORT'] !== '0';
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchEdge(fullEnv, options);
    } catch (err) {
      if (!portNamed || attempt >= 5 || !isAddressInUse(String(err))) throw err;
      fullEnv['PORT'] = String(await freePort());
    }
  }
}

async function launchEdge(fullEnv: NodeJS.ProcessEnv, options: StartOptions): Promise<EdgeProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, options.command ?? 'edge', ...(options.args ?? [])], {
    cwd: ROOT,
    env: fullEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`edge did not start in time:\n${lines.join('\n')}`)), options.timeoutMs ?? 15_000);
    const onLine = (line: string) => {
      lines.push(line);
      if (!line.includes('edge listening')) return;
      try {
        const port = (JSON.parse(line) as { port?: number }).port;
        if (typeof port === 'number') {
          clearTimeout(timer);
          resolve(port);
        }
      } catch {
        /* not a JSON log line */
      }
    };
    splitLines(proc.stdout!, onLine);
    splitLines(proc.stderr!, (line) => lines.push(line));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`edge exited (${code ?? signal}) before listening:\n${lines.join('\n')}`));
    });
  });
  return {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    http: `http://127.0.0.1:${port}`,
    proc,
    lines,
    exited,
    kill: (signal = 'SIGTERM') => void proc.kill(signal),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Runs the CLI to completion (for commands that exit, or to watch start-up fail).
 */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const fullEnv = childEnv(env);
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`switchyard ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Calls `onLine` for each complete line a child process writes. */
export function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    rest += chunk.toString();
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      onLine(rest.slice(0, i));
      rest = rest.slice(i + 1);
    }
  });
}
