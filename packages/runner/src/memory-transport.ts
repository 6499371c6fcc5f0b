import type { JobLogger, MemoryJobQueue, QueuedJob } from '@switchyard/jobs';
import type { DeadLetter, Delivery, JobTransport, RetryRequest, TransportStatus } from './transport.js';

/** Dead letters kept in memory (the oldest go first). */
export const DEFAULT_DEAD_LETTER_LIMIT = 1000;

/**
 * The in-process transport of `switchyard dev` (and of a lone edge without Kafka): jobs come
 * from a MemoryJobQueue, retries go back into it with their not-before time, and dead
 * letters are kept in a bounded list and logged.
 */
export class MemoryTransport implements JobTransport {
  readonly kind = 'memory';
  readonly #queue: MemoryJobQueue;
  readonly #log: JobLogger;
  readonly #limit: number;
  readonly deadLetters: DeadLetter[] = [];
  #paused = false;
  #wake: (() => void) | undefined;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #seq = 0;

  constructor(queue: MemoryJobQueue, options: { logger: JobLogger; deadLetterLimit?: number }) {
    this.#queue = queue;
    this.#log = options.logger;
    this.#limit = options.deadLetterLimit ?? DEFAULT_DEAD_LETTER_LIMIT;
  }

  async start(sink: (delivery: Delivery) => void): Promise<void> {
    this.#loop = this.#run(sink);
  }

  async #run(sink: (delivery: Delivery) => void): Promise<void> {
    while (!this.#stopped) {
      if (this.#paused) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        continue;
      }
      const item = await this.#queue.take();
      if (item === undefined || this.#stopped) return;
      sink(this.#delivery(item));
    }
  }

  #delivery(item: QueuedJob): Delivery {
    return {
      value: item.value,
      attempt: item.attempt,
      ...(item.notBefore !== undefined && { notBefore: item.notBefore }),
      source: `memory#${++this.#seq}`,
      ack: () => {},
    };
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async retry(r: RetryRequest): Promise<void> {
    this.#queue.push({ value: Buffer.from(JSON.stringify(r.job)), attempt: r.attempt, notBefore: r.notBefore });
  }

  async deadLetter(letter: DeadLetter): Promise<void> {
    this.deadLetters.push(letter);
    if (this.deadLetters.length > this.#limit) this.deadLetters.shift();
    this.#log.warn({ job_id: letter.job_id ?? letter.job?.job_id, error: letter.error, class: letter.class, attempts: letter.attempts }, 'job dead-lettered');
  }

  health(): { status: TransportStatus; ready: boolean } {
    return { status: 'disabled', ready: !this.#stopped };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.resume();
    await this.#queue.close();
    await this.#loop;
  }
}
