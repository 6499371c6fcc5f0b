import { spawn, type ChildProcess } from 'node:child_process';
import { pinned } from './pin.js';

/** What one load-client process reports (see native/loadgen.c). */
export interface LoadReport {
  conns: number;
  ready: number;
  ready_now: number;
  failed: number;
  events: number;
  frames: number;
  bytes: number;
  lost: number;
  tail: number;
  dups: number;
  min_last: number;
  max_last: number;
  reconnects: number;
  closed_by_server: number;
  resumed: number;
  resumed_since: number;
  resume_max_us: number;
  resume_last_at_us: number;
  churn: number;
  churn_fail: number;
  /** A Centrifugo publisher's HTTP API answers: 200s, and the others. */
  http_ok: number;
  http_errors: number;
  published: number;
  next_i: number;
  now_us: number;
  /** [microseconds, count] per non-empty bucket. */
  hist: [number, number][];
  /** Close frames received from the server, by close code. */
  close_codes: Record<string, number>;
}

export type Role = 'sub' | 'pub' | 'churn';
export type Proto = 'sy' | 'raw' | 'sio' | 'cf';

export interface LoadOptions {
  role: Role;
  proto: Proto;
  ports: readonly number[];
  src: string;
  conns?: number;
  channel: string;
  tokensFile?: string;
  tokenOffset?: number;
  /** Latency is recorded on every `sample`-th connection. */
  sample?: number;
  reconnect?: boolean;
  concurrency?: number;
  shm?: { path: string; slot?: number; slots?: number };
  deadlineS: number;
  payload?: [number, number];
  /** Which server node these connections go to (for cross-node figures). */
  node?: number;
  /** The key for a system's HTTP publish API (Centrifugo's X-API-Key). */
  apiKey?: string;
}

/**
 * One load-client process, driven line by line over stdin/stdout. It exits by itself at
 * its deadline or when our end of stdin closes, so a crashed bench leaves nothing behind.
 */
export class LoadProc {
  readonly proc: ChildProcess;
  readonly options: LoadOptions;
  readonly readyCounts: Promise<{ ok: number; failed: number }>;
  readonly #lines: string[] = [];
  readonly #waiters: ((line: string) => void)[] = [];
  readonly #stderr: string[] = [];
  #exited = false;
  readonly exited: Promise<void>;

  constructor(binary: string, options: LoadOptions) {
    this.options = options;
    const args = [
      '--role', options.role,
      '--proto', options.proto,
      '--host', '127.0.0.1',
      '--src', options.src,
      '--ports', options.ports.join(','),
      '--conns', String(options.conns ?? 1),
      '--channel', options.channel,
      '--sample', String(options.sample ?? 8),
      '--deadline', String(options.deadlineS),
    ];
    if (options.tokensFile !== undefined) args.push('--tokens', options.tokensFile, '--token-offset', String(options.tokenOffset ?? 0));
    if (options.reconnect === true) args.push('--reconnect');
    if (options.concurrency !== undefined) args.push('--concurrency', String(options.concurrency));
    if (options.shm !== undefined) {
      args.push('--shm', options.shm.path);
      if (options.shm.slot !== undefined) args.push('--slot', String(options.shm.slot));
      if (options.shm.slots !== undefined) args.push('--slots', String(options.shm.slots));
    }
    if (options.apiKey !== undefined) args.push('--api-key', options.apiKey);
    if (options.payload !== undefined) args.push('--payload', `${options.payload[0]}-${options.payload[1]}`);
    this.proc = spawn(...pinned('load', binary, args), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.proc.once('exit', () => {
      this.#exited = true;
      for (const w of this.#waiters.splice(0)) w('');
      resolve();
    }));
    let rest = '';
    this.proc.stdout!.on('data', (chunk: Buffer) => {
      rest += chunk.toString();
      let i: number;
      while ((i = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, i);
        rest = rest.slice(i + 1);
        const w = this.#waiters.shift();
        if (w !== undefined) w(line);
        else this.#lines.push(line);
      }
    });
    this.proc.stderr!.on('data', (chunk: Buffer) => {
      if (this.#stderr.length < 50) this.#stderr.push(chunk.toString());
    });
    this.proc.stdin!.on('error', () => undefined);
    this.readyCounts = this.#line(0).then((line) => {
      const m = /^ready (\d+) (\d+)/.exec(line);
      if (m === null) throw new Error(`load client did not start: ${line || this.#stderr.join('')}`);
      return { ok: Number(m[1]), failed: Number(m[2]) };
    });
    this.readyCounts.catch(() => undefined);
  }

  /** The next stdout line; '' if the process has exited. */
  #line(timeoutMs: number): Promise<string> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#exited) return Promise.resolve('');
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.#waiters.push(waiter);
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new Error(`load client did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  /** Waits for the "ready" line (every connection set up or failed). */
  async ready(timeoutMs: number): Promise<{ ok: number; failed: number }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`load client not ready within ${timeoutMs} ms (${this.options.role}, ${this.options.conns ?? 1} conns)`)), timeoutMs);
    });
    try {
      return await Promise.race([this.readyCounts, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async command(line: string, timeoutMs = 10_000): Promise<string> {
    if (this.#exited) throw new Error(`load client exited: ${this.#stderr.join('')}`);
    this.proc.stdin!.write(`${line}\n`);
    const answer = await this.#line(timeoutMs);
    if (answer === '') throw new Error(`load client exited: ${this.#stderr.join('')}`);
    return answer;
  }

  async report(finalI?: number): Promise<LoadReport> {
    const line = await this.command(finalI === undefined ? 'report' : `report ${finalI}`);
    return JSON.parse(line) as LoadReport;
  }

  async quit(): Promise<void> {
    if (this.#exited) return;
    this.proc.stdin!.write('quit\n');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.#exited) this.proc.kill('SIGKILL');
  }
}

let nextSource = 0;

/** Spreads client processes over 127.0.0.2 … 127.0.0.251 (each has its own 28k ephemeral ports). */
export function nextSourceAddress(): string {
  const a = 2 + (nextSource++ % 250);
  return `127.0.0.${a}`;
}
