/**
 * Turns a stream of progress lines into job.progress events: at most one per interval
 * (the latest wins), a stage change at once, events strictly in order.
 */
export class ProgressReporter {
  readonly #intervalMs: number;
  readonly #send: (p: { progress?: number; stage?: string; message?: string }) => Promise<void>;
  #chain: Promise<void> = Promise.resolve();
  #pending: { progress?: number; stage?: string; message?: string } | undefined;
  #lastSent = 0;
  #stage: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(intervalMs: number, send: (p: { progress?: number; stage?: string; message?: string }) => Promise<void>) {
    this.#intervalMs = intervalMs;
    this.#send = send;
  }

  update(p: { progress?: number; stage?: string; message?: string }): void {
    if (this.#closed) return;
    const stageChanged = p.stage !== undefined && p.stage !== this.#stage;
    if (p.stage !== undefined) this.#stage = p.stage;
    this.#pending = { ...p, ...(p.stage === undefined && this.#stage !== undefined && { stage: this.#stage }) };
    const due = Date.now() - this.#lastSent >= this.#intervalMs;
    if (stageChanged || due) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), this.#intervalMs - (Date.now() - this.#lastSent));
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const p = this.#pending;
    if (p === undefined) return;
    this.#pending = undefined;
    this.#lastSent = Date.now();
    this.#chain = this.#chain.then(() => this.#send(p)).catch(() => undefined);
  }

  /** Sends what is pending and waits for every event to be out. */
  async close(): Promise<void> {
    this.#flush();
    this.#closed = true;
    await this.#chain;
  }
}
