import type { Kafka, Producer } from 'kafkajs';
import { JobError } from './errors.js';
import { HEADER_ATTEMPT, HEADER_CLASS, HEADER_ERROR, HEADER_NOT_BEFORE, kafkajs } from './kafka.js';
import type { JobSpec } from './job.js';
import { NOOP_LOGGER, type JobLogger } from './logger.js';
import type { DeadLetter, StallSink } from './reaper.js';

export type QueueStatus = 'ok' | 'connecting' | 'down' | 'disabled';

/** Where submitted jobs go: the Kafka topic, or the in-process queue of a lone node. */
export interface JobQueue {
  readonly kind: 'kafka' | 'memory';
  submit(job: JobSpec): Promise<void>;
  health(): { status: QueueStatus };
  /** Idempotent. */
  close(): Promise<void>;
}

/** One job waiting in the in-process queue. */
export interface QueuedJob {
  value: Buffer;
  /** Runs already made (0 for a new job). */
  attempt: number;
  /** Not to be run before this time (ms since the epoch): a scheduled retry. */
  notBefore?: number;
}

/**
 * Jobs held in memory.
 * @default 10000
 */
export const DEFAULT_MEMORY_QUEUE_LIMIT = 10_000;

/**
 * The in-process queue of a node without Kafka: FIFO, bounded, consumed by the in-process
 * runner with `take()`. Jobs in it are lost if the process dies; that is what Kafka is for.
 */
export class MemoryJobQueue implements JobQueue {
  readonly kind = 'memory';
  readonly #items: QueuedJob[] = [];
  readonly #takers: ((item: QueuedJob | undefined) => void)[] = [];
  readonly #limit: number;
  #closed = false;

  constructor(options: { limit?: number } = {}) {
    this.#limit = options.limit ?? DEFAULT_MEMORY_QUEUE_LIMIT;
  }

  get size(): number {
    return this.#items.length;
  }

  async submit(job: JobSpec): Promise<void> {
    this.push({ value: Buffer.from(JSON.stringify(job)), attempt: 0 });
  }

  /** Adds a raw item (a retry, or bytes that may not even be a job). */
  push(item: QueuedJob): void {
    if (this.#closed) throw new JobError('unavailable', 'the job queue is closed');
    const taker = this.#takers.shift();
    if (taker !== undefined) {
      taker(item);
      return;
    }
    if (this.#items.length >= this.#limit) throw new JobError('unavailable', `the in-process job queue is full (${this.#limit} jobs)`);
    this.#items.push(item);
  }

  /** The next item; waits for one. Resolves undefined once the queue is closed. */
  take(): Promise<QueuedJob | undefined> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#takers.push(resolve));
  }

  health(): { status: QueueStatus } {
    return { status: 'disabled' };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#takers.splice(0)) t(undefined);
  }
}

export interface KafkaJobQueueOptions {
  kafka: Kafka;
  topic: string;
  /** Where a reaper re-queues a stalled job. @default `<topic>.retry` */
  retryTopic?: string;
  /** Where a reaper dead-letters a stalled job past its retries. @default `<topic>.dlq` */
  dlqTopic?: string;
  logger?: JobLogger;
  /** While Kafka is unreachable, how often to look whether it is back. @default 3000 */
  probeMs?: number;
}

const DEFAULT_PROBE_MS = 3000;

/**
 * Produces submitted jobs to the jobs topic (key: the job id; acks from all in-sync replicas).
 * Connects on `start()`; a submit while disconnected tries to connect first. It is also the
 * edge's StallSink: a stalled job goes to the retry topic (due now) or the dead letters.
 */
export class KafkaJobQueue implements JobQueue, StallSink {
  readonly kind = 'kafka';
  readonly #producer: Producer;
  readonly #topic: string;
  readonly #retryTopic: string;
  readonly #dlqTopic: string;
  readonly #log: JobLogger;
  #status: QueueStatus = 'connecting';
  #connecting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  readonly #kafka: Kafka;
  readonly #probeMs: number;
  #probe: NodeJS.Timeout | undefined;
  #probing = false;

  constructor(options: KafkaJobQueueOptions) {
    this.#kafka = options.kafka;
    this.#probeMs = options.probeMs ?? DEFAULT_PROBE_MS;
    this.#topic = options.topic;
    this.#retryTopic = options.retryTopic ?? `${options.topic}.retry`;
    this.#dlqTopic = options.dlqTopic ?? `${options.topic}.dlq`;
    this.#log = options.logger ?? NOOP_LOGGER;
    this.#producer = options.kafka.producer({ createPartitioner: kafkajs().Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
    this.#producer.on(this.#producer.events.CONNECT, () => {
      this.#markUp();
    });
    this.#producer.on(this.#producer.events.DISCONNECT, () => this.#markDown());
  }

  /**
   * A failed send means Kafka is unreachable (the producer stays "connected" through a broker
   * restart): health says down until a send succeeds or a probe finds the cluster again.
   */
  #markDown(): void {
    if (this.#closing !== undefined) return;
    this.#status = 'down';
    if (this.#probe !== undefined) return;
    this.#probe = setInterval(() => void this.#probeCluster(), this.#probeMs);
    this.#probe.unref();
  }

  #markUp(): void {
    if (this.#closing !== undefined) return;
    this.#status = 'ok';
    clearInterval(this.#probe);
    this.#probe = undefined;
  }

  async #probeCluster(): Promise<void> {
    if (this.#probing || this.#closing !== undefined) return;
    this.#probing = true;
    const admin = this.#kafka.admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      await admin.describeCluster();
      this.#markUp();
    } catch {
      /* still away; the next probe looks again */
    } finally {
      await admin.disconnect().catch(() => undefined);
      this.#probing = false;
    }
  }

  /** Connects; failures are logged and retried on the next submit. */
  start(): Promise<void> {
    this.#connecting ??= this.#producer.connect().then(
      () => this.#markUp(),
      (err: unknown) => {
        this.#markDown();
        this.#connecting = undefined;
        this.#log.warn({ err }, 'kafka producer could not connect');
        throw err;
      },
    );
    return this.#connecting;
  }

  async submit(job: JobSpec): Promise<void> {
    if (this.#closing !== undefined) throw new JobError('unavailable', 'the job queue is closed');
    try {
      await this.start();
      await this.#producer.send({ topic: this.#topic, acks: -1, messages: [{ key: job.job_id, value: JSON.stringify(job) }] });
      this.#markUp();
    } catch (err) {
      this.#markDown();
      throw new JobError('unavailable', `could not queue the job on Kafka topic ${this.#topic}: ${(err as Error).message}`, { cause: err });
    }
  }

  async requeue(job: JobSpec, attempt: number, error: string): Promise<void> {
    await this.#send(this.#retryTopic, {
      key: job.job_id,
      value: JSON.stringify(job),
      headers: { [HEADER_ATTEMPT]: String(attempt), [HEADER_NOT_BEFORE]: String(Date.now()), [HEADER_ERROR]: error.slice(0, 1000), [HEADER_CLASS]: 'stalled' },
    });
  }

  async deadLetter(letter: DeadLetter): Promise<void> {
    await this.#send(this.#dlqTopic, { key: letter.job_id ?? letter.job?.job_id ?? null, value: JSON.stringify(letter) });
  }

  async #send(topic: string, message: { key: string | null; value: string; headers?: Record<string, string> }): Promise<void> {
    if (this.#closing !== undefined) throw new JobError('unavailable', 'the job queue is closed');
    try {
      await this.start();
      await this.#producer.send({ topic, acks: -1, messages: [message] });
      this.#markUp();
    } catch (err) {
      this.#markDown();
      throw new JobError('unavailable', `could not produce to Kafka topic ${topic}: ${(err as Error).message}`, { cause: err });
    }
  }

  health(): { status: QueueStatus } {
    return { status: this.#status };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#status = 'disabled';
      clearInterval(this.#probe);
      this.#probe = undefined;
      await this.#producer.disconnect().catch(() => undefined);
    })();
    return this.#closing;
  }
}
