import { spawn, type ChildProcessWithoutNullStreams, type SpawnOptionsWithoutStdio } from 'node:child_process';

/**
 * A third-party client run as a child process: its stdout split into lines, a way to wait
 * for a line, and a kill that always settles. Every wait is bounded.
 */
export class ChildClient {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #rest = '';
  #waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  /** Index of the first line not yet taken by `nextLine`. */
  #cursor = 0;

  constructor(
    command: string,
    args: string[],
    options: SpawnOptionsWithoutStdio = {},
    /** Rewrites each raw line before it is stored (e.g. to drop a prompt). */
    readonly clean: (line: string) => string = (line) => line,
  ) {
    this.proc = spawn(command, args, { ...options, stdio: 'pipe' });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    this.proc.stdout.on('data', (chunk: Buffer) => {
      this.#rest += chunk.toString();
      let i: number;
      while ((i = this.#rest.indexOf('\n')) >= 0) {
        this.#line(this.clean(this.#rest.slice(0, i)));
        this.#rest = this.#rest.slice(i + 1);
      }
    });
    this.proc.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
  }

  #line(line: string): void {
    this.lines.push(line);
    for (const w of [...this.#waiters]) if (w.match(line)) w.resolve(line);
  }

  /** Resolves with the first line (from the start of output) that matches, within `timeoutMs`. */
  waitFor(match: (line: string) => boolean, timeoutMs = 10_000): Promise<string> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (line: string) => {
          clearTimeout(timer);
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching line within ${timeoutMs} ms.\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** The JSON frames printed so far (lines that parse as JSON objects). */
  frames(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.lines) {
      try {
        const value = JSON.parse(line) as unknown;
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) out.push(value as Record<string, unknown>);
      } catch {
        /* not a frame */
      }
    }
    return out;
  }

  /** Waits for the first printed frame of `type` (and matching `extra`, if given). */
  async waitForFrame(type: string, extra: (f: Record<string, unknown>) => boolean = () => true, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const line = await this.waitFor((l) => {
      try {
        const f = JSON.parse(l) as Record<string, unknown>;
        return f['type'] === type && extra(f);
      } catch {
        return false;
      }
    }, timeoutMs);
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** Waits for the process to exit, killing it with SIGKILL after `timeoutMs`. */
  async exit(timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process if it is still running and waits for it to be gone. */
  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

/** POST /broadcast with a bearer key; returns the `seq` the node assigned. */
export async function broadcast(http: string, key: string, channel: string, event: string, data: unknown): Promise<number> {
  const res = await fetch(`${http}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, event, data }),
  });
  const body = (await res.json()) as { seq?: number };
  if (res.status !== 202 || typeof body.seq !== 'number') throw new Error(`broadcast failed: ${res.status} ${JSON.stringify(body)}`);
  return body.seq;
}
