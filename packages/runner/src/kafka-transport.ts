import { HEADER_ATTEMPT, HEADER_CLASS, HEADER_ERROR, HEADER_NOT_BEFORE, ensureTopics, kafkajs, type JobLogger } from '@switchyard/jobs';
import type { Admin, Consumer, IHeaders, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { DeadLetter, Delivery, JobTransport, LagReport, RetryRequest, TransportStatus } from './transport.js';

export { HEADER_ATTEMPT, HEADER_NOT_BEFORE, HEADER_ERROR, HEADER_CLASS };

/**
 * How often consumer lag is measured, by default.
 * @default 5000
 */
export const DEFAULT_LAG_INTERVAL_MS = 5000;

export interface KafkaTransportOptions {
  kafka: Kafka;
  groupId: string;
  topics: { jobs: string; retry: string; dlq: string };
  /** For topics the transport creates. */
  partitions: number;
  replicationFactor: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  logger: JobLogger;
  /** Called with each partition's lag (latest offset minus committed offset). */
  onLag?: (topic: string, partition: number, lag: number) => void;
  /** @default DEFAULT_LAG_INTERVAL_MS */
  lagIntervalMs?: number;
  /** The consumer stopped for good (kafkajs will not restart it): the process should exit. */
  onFatal?: (err: Error) => void;
}

/**
 * Offsets of one partition that were handed out and not yet acked. What may be committed is
 * the lowest unacked offset, or past the highest one seen once all are acked: acks may come
 * in any order (jobs run side by side), the commit never passes a job still running.
 */
export class PartitionTracker {
  readonly #inflight = new Set<bigint>();
  #maxSeen = -1n;
  #committed = -1n;

  add(offset: bigint): void {
    // The first message handed out is where the group's committed position stands.
    if (this.#committed < 0n) this.#committed = offset;
    this.#inflight.add(offset);
    if (offset > this.#maxSeen) this.#maxSeen = offset;
  }

  /** Marks an offset done; returns the new commit position when it moved. */
  done(offset: bigint): bigint | undefined {
    if (!this.#inflight.delete(offset)) return undefined;
    let next = this.#maxSeen + 1n;
    for (const o of this.#inflight) if (o < next) next = o;
    if (next <= this.#committed) return undefined;
    this.#committed = next;
    return next;
  }

  get pending(): number {
    return this.#inflight.size;
  }
}

function header(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : one.toString();
}

/**
 * The runners' consumer group on the jobs and retry topics. Messages are handed to the
 * runner and the consumer's loop goes on at once (so heartbeats never wait for a job —
 * kafkajs #447); offsets are committed by hand as jobs end. Retries are produced to the
 * retry topic with a not-before time, dead letters to the DLQ topic.
 */
export class KafkaTransport implements JobTransport {
  readonly kind = 'kafka';
  readonly #o: KafkaTransportOptions;
  readonly #log: JobLogger;
  readonly #consumer: Consumer;
  readonly #producer: Producer;
  readonly #admin: Admin;
  /** Trackers of the current assignment; replaced wholesale at every rebalance. */
  #trackers = new Map<string, PartitionTracker>();
  readonly #toCommit = new Map<string, { topic: string; partition: number; offset: bigint }>();
  #commitScheduled = false;
  #commits: Promise<void> = Promise.resolve();
  #ready = false;
  #status: TransportStatus = 'connecting';
  #paused = false;
  #subscribed = false;
  #lagTimer: NodeJS.Timeout | undefined;
  /** Partitions of the current assignment, per topic. */
  #assigned = new Map<string, Set<number>>();
  #lag: LagReport | undefined;
  #stopping: Promise<void> | undefined;

  constructor(options: KafkaTransportOptions) {
    this.#o = options;
    this.#log = options.logger;
    this.#consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      rebalanceTimeout: Math.max(options.sessionTimeoutMs, 10_000),
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 1000,
    });
    this.#producer = options.kafka.producer({ createPartitioner: kafkajs().Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    this.#admin = options.kafka.admin();
  }

  async start(sink: (delivery: Delivery) => void): Promise<void> {
    const { jobs, retry, dlq } = this.#o.topics;
    await this.#admin.connect();
    await ensureTopics(
      this.#admin,
      [jobs, retry, dlq].map((topic) => ({ topic, numPartitions: this.#o.partitions, replicationFactor: this.#o.replicationFactor })),
    );
    await this.#producer.connect();
    const c = this.#consumer;
    c.on(c.events.GROUP_JOIN, ({ payload }) => {
      // After a rebalance kafkajs fetches every assigned partition again from its committed
      // offset: jobs still running here come back as duplicates (the runner joins them to the
      // running task), so the old trackers' acks must not commit anything any more.
      this.#trackers = new Map();
      this.#toCommit.clear();
      this.#assigned = new Map(Object.entries(payload.memberAssignment).map(([topic, partitions]) => [topic, new Set(partitions)]));
      this.#ready = true;
      this.#status = 'ok';
      this.#log.info({ assignment: payload.memberAssignment, leader: payload.isLeader }, 'joined the consumer group');
    });
    c.on(c.events.CRASH, ({ payload }) => {
      this.#log.error({ err: payload.error?.message, restart: payload.restart }, 'kafka consumer crashed');
      if (!payload.restart) {
        this.#status = 'down';
        if (this.#stopping === undefined) this.#o.onFatal?.(payload.error ?? new Error('kafka consumer crashed'));
      }
    });
    c.on(c.events.DISCONNECT, () => {
      if (this.#stopping === undefined) this.#status = 'down';
    });
    await c.connect();
    await c.subscribe({ topics: [jobs, retry], fromBeginning: true });
    this.#subscribed = true;
    if (this.#paused) this.pause();
    await c.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        this.#deliver(sink, topic, partition, message);
      },
    });
    this.#lagTimer = setInterval(() => void this.#measureLag(), this.#o.lagIntervalMs ?? DEFAULT_LAG_INTERVAL_MS);
    this.#lagTimer.unref();
  }

  #deliver(sink: (delivery: Delivery) => void, topic: string, partition: number, message: KafkaMessage): void {
    const key = `${topic}\u0000${partition}`;
    let tracker = this.#trackers.get(key);
    if (tracker === undefined) {
      tracker = new PartitionTracker();
      this.#trackers.set(key, tracker);
    }
    const offset = BigInt(message.offset);
    tracker.add(offset);
    const owner = tracker;
    const attempt = Number(header(message.headers, HEADER_ATTEMPT) ?? 0);
    const notBefore = Number(header(message.headers, HEADER_NOT_BEFORE) ?? 0);
    let acked = false;
    sink({
      value: message.value,
      attempt: Number.isInteger(attempt) && attempt >= 0 ? attempt : 0,
      ...(Number.isFinite(notBefore) && notBefore > 0 && { notBefore }),
      source: `${topic}[${partition}]@${message.offset}`,
      ack: () => {
        if (acked) return;
        acked = true;
        // A tracker from before the last rebalance: the message comes again, and is acked then.
        if (this.#trackers.get(key) !== owner) return;
        const next = owner.done(offset);
        if (next !== undefined) this.#scheduleCommit(topic, partition, next);
      },
    });
  }

  #scheduleCommit(topic: string, partition: number, offset: bigint): void {
    this.#toCommit.set(`${topic}\u0000${partition}`, { topic, partition, offset });
    if (this.#commitScheduled) return;
    this.#commitScheduled = true;
    setImmediate(() => {
      this.#commitScheduled = false;
      const batch = [...this.#toCommit.values()];
      this.#toCommit.clear();
      if (batch.length === 0) return;
      this.#commits = this.#commits.then(async () => {
        try {
          await this.#consumer.commitOffsets(batch.map((b) => ({ topic: b.topic, partition: b.partition, offset: b.offset.toString() })));
        } catch (err) {
          // A rebalance took the partition: its new owner starts from the last good commit.
          this.#log.warn({ err, offsets: batch.map((b) => `${b.topic}[${b.partition}]=${b.offset}`) }, 'offset commit failed');
        }
      });
    });
  }

  pause(): void {
    this.#paused = true;
    if (!this.#subscribed) return;
    try {
      this.#consumer.pause([{ topic: this.#o.topics.jobs }, { topic: this.#o.topics.retry }]);
    } catch (err) {
      this.#log.debug({ err }, 'pause failed');
    }
  }

  resume(): void {
    this.#paused = false;
    if (!this.#subscribed) return;
    try {
      this.#consumer.resume([{ topic: this.#o.topics.jobs }, { topic: this.#o.topics.retry }]);
    } catch (err) {
      this.#log.debug({ err }, 'resume failed');
    }
  }

  async retry(r: RetryRequest): Promise<void> {
    await this.#producer.send({
      topic: this.#o.topics.retry,
      acks: -1,
      messages: [
        {
          key: r.job.job_id,
          value: JSON.stringify(r.job),
          headers: {
            [HEADER_ATTEMPT]: String(r.attempt),
            [HEADER_NOT_BEFORE]: String(r.notBefore),
            [HEADER_ERROR]: r.error.slice(0, 1000),
            [HEADER_CLASS]: r.class,
          },
        },
      ],
    });
  }

  async deadLetter(letter: DeadLetter): Promise<void> {
    await this.#producer.send({
      topic: this.#o.topics.dlq,
      acks: -1,
      messages: [{ key: letter.job_id ?? letter.job?.job_id ?? null, value: JSON.stringify(letter) }],
    });
  }

  health(): { status: TransportStatus; ready: boolean } {
    return { status: this.#status, ready: this.#ready && this.#status === 'ok' };
  }

  /** The latest measurement of the lag on this runner's own partitions. */
  lag(): LagReport | undefined {
    return this.#lag;
  }

  async #measureLag(): Promise<void> {
    if (this.#stopping !== undefined) return;
    try {
      const { jobs, retry } = this.#o.topics;
      const mine = { [jobs]: 0, [retry]: 0 };
      const committed = await this.#admin.fetchOffsets({ groupId: this.#o.groupId, topics: [jobs, retry] });
      for (const { topic, partitions } of committed) {
        const latest = await this.#admin.fetchTopicOffsets(topic);
        const assigned = this.#assigned.get(topic);
        for (const p of latest) {
          const c = partitions.find((x) => x.partition === p.partition);
          const base = c === undefined || Number(c.offset) < 0 ? Number(p.low) : Number(c.offset);
          const lag = Math.max(0, Number(p.high) - base);
          this.#o.onLag?.(topic, p.partition, lag);
          if (assigned?.has(p.partition) === true) mine[topic] = (mine[topic] ?? 0) + lag;
        }
      }
      this.#lag = { jobs: mine[jobs] ?? 0, retry: mine[retry] ?? 0, measuredAt: Date.now() };
    } catch (err) {
      this.#log.debug({ err }, 'lag measurement failed');
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#lagTimer);
      this.#ready = false;
      // Let pending commits go out before leaving the group.
      await new Promise((r) => setImmediate(r));
      await this.#commits;
      await this.#consumer.disconnect().catch((err: unknown) => this.#log.warn({ err }, 'consumer disconnect failed'));
      await Promise.allSettled([this.#producer.disconnect(), this.#admin.disconnect()]);
      this.#status = 'disabled';
    })();
    return this.#stopping;
  }
}
