import { spawn, type ChildProcess } from 'node:child_process';

/** One Server-Sent Events message: its `id:`, its `data:` parsed as JSON, or a `:` comment. */
export interface SseMessage {
  id?: string;
  data?: Record<string, unknown>;
  comment?: string;
}

/**
 * An SSE stream read by real `curl -N` (no buffering), the way an operator follows a stream
 * from a shell. Parses the status line, headers and messages as they arrive.
 */
export class CurlSse {
  readonly proc: ChildProcess;
  readonly messages: SseMessage[] = [];
  status = 0;
  readonly headers: Record<string, string> = {};
  /** The raw body after the headers. */
  body = '';
  readonly ended: Promise<void>;
  #raw = '';
  #headDone = false;
  #rest = '';
  readonly #waiters = new Set<() => void>();

  constructor(url: string, headers: Record<string, string> = {}) {
    const args = ['-sS', '-N', '-i', '--http1.1'];
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
    args.push(url);
    this.proc = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (chunk: Buffer) => this.#onData(chunk.toString()));
    this.ended = new Promise((resolve) => this.proc.on('exit', () => resolve()));
    void this.ended.then(() => this.#wake());
  }

  #onData(text: string): void {
    if (!this.#headDone) {
      this.#raw += text;
      const end = this.#raw.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = this.#raw.slice(0, end).split('\r\n');
      this.status = Number(lines[0]!.split(' ')[1]);
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) this.headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      this.#headDone = true;
      text = this.#raw.slice(end + 4);
    }
    this.body += text;
    this.#rest += text;
    let i: number;
    while ((i = this.#rest.indexOf('\n\n')) >= 0) {
      const block = this.#rest.slice(0, i);
      this.#rest = this.#rest.slice(i + 2);
      const message: SseMessage = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) message.comment = line.slice(1).trim();
        else if (line.startsWith('id: ')) message.id = line.slice(4);
        else if (line.startsWith('data: ')) message.data = JSON.parse(line.slice(6)) as Record<string, unknown>;
      }
      this.messages.push(message);
    }
    this.#wake();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Data messages so far (comments left out). */
  get frames(): Record<string, unknown>[] {
    return this.messages.flatMap((m) => (m.data === undefined ? [] : [m.data]));
  }

  /** Events so far, as `channel:seq` strings. */
  events(channel?: string): number[] {
    return this.frames.filter((f) => f['type'] === 'event' && (channel === undefined || f['channel'] === channel)).map((f) => f['seq'] as number);
  }

  /** The id of the latest message that had one. */
  get lastId(): string | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) if (this.messages[i]!.id !== undefined) return this.messages[i]!.id;
    return undefined;
  }

  /** Waits (bounded) until `check` holds on what arrived; rejects with what did arrive. */
  until(check: (s: CurlSse) => boolean, timeoutMs = 10_000, what = 'a condition'): Promise<void> {
    if (check(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
      };
      const wake = () => {
        if (check(this)) {
          done();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`SSE: no ${what} within ${timeoutMs} ms; got status ${this.status}:\n${this.body.slice(-3000)}`));
      }, timeoutMs);
      this.#waiters.add(wake);
    });
  }

  /** Waits for the n-th data message matching `match` (first by default). */
  async next(match: (f: Record<string, unknown>) => boolean, timeoutMs = 10_000, what = 'matching message'): Promise<Record<string, unknown>> {
    await this.until((s) => s.frames.some(match), timeoutMs, what);
    return this.frames.find(match)!;
  }

  close(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    return this.ended;
  }
}
