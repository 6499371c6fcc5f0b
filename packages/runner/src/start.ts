import { MemoryBroker, RedisBroker, type Broker } from '@switchyard/broker';
import {
  JobService,
  MemoryJobControl,
  MemoryJobQueue,
  MemoryJobStore,
  RedisJobControl,
  RedisJobStore,
  createKafka,
  leaseIndexKey,
  type JobLogger,
} from '@switchyard/jobs';
import type { Counter, Registry } from 'prom-client';
import type { RunnerConfig } from './config.js';
import { resolveSlots, type Discover } from './gpu.js';
import { KafkaTransport } from './kafka-transport.js';
import { MemoryTransport } from './memory-transport.js';
import { RunnerMetrics } from './metrics.js';
import { Runner } from './runner.js';
import { RunnerServer } from './server.js';

/** How long a starting runner waits for Redis. */
const REDIS_READY_TIMEOUT_MS = 30_000;

export interface RunnerProcess {
  readonly runner: Runner;
  readonly metrics: RunnerMetrics;
  /** The port of /health, /ready, /metrics. */
  readonly port: number;
  /** SIGTERM behaviour: stop taking jobs, finish or hand back the running ones, leave. Idempotent. */
  stop(): Promise<void>;
}

/**
 * `switchyard runner`: a Kafka consumer group member that runs jobs, with Redis for status,
 * events and cancels, and its own HTTP server. Everything it starts is stopped by `stop()`.
 */
export interface StartRunnerOptions {
  /** For tests of GPU discovery; runs nvidia-smi by default. */
  discover?: Discover;
  /** The Kafka consumer stopped for good; the caller should stop and exit non-zero. */
  onFatal?: (err: Error) => void;
}

export async function startRunner(config: RunnerConfig, logger: JobLogger, options: StartRunnerOptions = {}): Promise<RunnerProcess> {
  const cleanup: (() => Promise<void>)[] = [];
  const release = async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch((err: unknown) => logger.warn({ err }, 'cleanup step failed'));
  };
  try {
    const broker = new RedisBroker({
      ...(config.redisClusterNodes !== undefined ? { clusterNodes: config.redisClusterNodes } : { url: config.redisUrl! }),
      historySize: config.historySize,
      historyTtlS: config.historyTtlS,
      logger,
    });
    cleanup.push(() => broker.close());
    await broker.ready(REDIS_READY_TIMEOUT_MS);
    const store = new RedisJobStore(broker.client, { ttlS: config.jobStatusTtlS, broker, leaseIndexKey: leaseIndexKey(config.kafkaJobsTopic) });
    const control = new RedisJobControl(broker.client, { logger });
    cleanup.push(() => control.close());
    const metrics = new RunnerMetrics();
    const transport = new KafkaTransport({
      kafka: createKafka({ brokers: config.kafkaServers!, clientId: config.kafkaClientId, logger }),
      groupId: config.kafkaGroupId,
      topics: { jobs: config.kafkaJobsTopic, retry: config.kafkaRetryTopic, dlq: config.kafkaDlqTopic },
      partitions: config.kafkaTopicPartitions,
      replicationFactor: config.kafkaReplicationFactor,
      sessionTimeoutMs: config.kafkaSessionTimeoutMs,
      heartbeatIntervalMs: config.kafkaHeartbeatIntervalMs,
      logger,
      onLag: (topic, partition, lag) => metrics.lag.labels(topic, String(partition)).set(lag),
      lagIntervalMs: config.lagCheckIntervalMs,
      ...(options.onFatal !== undefined && { onFatal: options.onFatal }),
    });
    cleanup.push(() => transport.stop());
    const { slots, source } = await resolveSlots(config.gpuDevices, config.runnerConcurrency, options.discover);
    const runner = new Runner(config, { transport, store, control, slots, metrics, logger });
    const server = new RunnerServer({
      host: config.runnerHost,
      port: config.runnerPort,
      runnerId: config.runnerId,
      runner,
      transport,
      metrics,
      redis: () => broker.health(),
      maxConsumerLag: config.maxConsumerLag,
      readyRedisGraceMs: config.readyRedisGraceMs,
    });
    const port = await server.listen();
    cleanup.push(() => server.close());
    // The runner's stop (below) stops the transport itself; this entry covers a failed start.
    await runner.start();
    await control.ready();
    logger.info({ port, runner_id: config.runnerId, slots: slots.map((s) => s.id), slot_source: source, topic: config.kafkaJobsTopic }, 'runner ready');
    let stopping: Promise<void> | undefined;
    return {
      runner,
      metrics,
      port,
      stop() {
        stopping ??= (async () => {
          await runner.stop();
          await release();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await release();
    throw err;
  }
}

export interface InProcessJobs {
  /** For the edge (`deps.jobs`): POST/GET/DELETE /jobs, owner checks, cancel. */
  readonly service: JobService;
  /** Starts the runner; metrics go into the node's registry (and its `switchyard_jobs_total`). */
  start(metrics: { registry: Registry; jobs: Counter<'status'> }): Promise<Runner>;
  /** The queue (tests and the dev banner look at it). */
  readonly queue: MemoryJobQueue;
}

/**
 * The jobs of a lone node without Kafka (`switchyard dev`, `switchyard edge` without
 * KAFKA_SERVERS): an in-process queue and runner, sharing the node's broker, so job events
 * reach the node's WebSocket clients. Status lives in Redis when the broker is Redis, else in
 * memory. Closing the service stops the runner (running jobs are stopped: an in-process queue
 * does not outlive its process).
 */
export function inProcessJobs(config: RunnerConfig, broker: Broker, logger: JobLogger, options: { discover?: Discover } = {}): InProcessJobs {
  const queue = new MemoryJobQueue();
  const store =
    broker instanceof RedisBroker
      ? new RedisJobStore(broker.client, { ttlS: config.jobStatusTtlS, broker })
      : new MemoryJobStore({ ttlS: config.jobStatusTtlS, ...(broker instanceof MemoryBroker && { broker }) });
  const control = new MemoryJobControl();
  let runner: Runner | undefined;
  const service = new JobService({
    store,
    queue,
    control,
    maxJobBytes: config.maxJobBytes,
    logger,
    onClose: async () => {
      await runner?.stop({ graceMs: 0 });
    },
  });
  return {
    service,
    queue,
    async start(m) {
      const metrics = new RunnerMetrics({ registry: m.registry, jobs: m.jobs });
      const { slots, source } = await resolveSlots(config.gpuDevices, config.runnerConcurrency, options.discover);
      const transport = new MemoryTransport(queue, { logger });
      runner = new Runner(config, { transport, store, control, slots, metrics, logger });
      await runner.start();
      logger.info({ slots: slots.map((s) => s.id), slot_source: source, pipeline: config.pipelineExecutable }, 'in-process job runner ready');
      return runner;
    },
  };
}
