import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createKafka } from '../../packages/jobs/src/index.js';
import { connect, type Frame, type TestClient } from '../harness/client.js';
import { ROOT, TEST_SECRET, splitLines } from '../harness/edge.js';
import { childEnv } from '../harness/env.js';
import { waitFor } from '../harness/ports.js';
import type { RedisCli } from '../harness/positions.js';
import { jobKey, leaseIndexKey } from '../../packages/jobs/src/index.js';

const CLI = fileURLToPath(new URL('../../packages/cli/src/main.ts', import.meta.url));
export const DEMO_PIPELINE = fileURLToPath(new URL('../../examples/pipeline/demo-pipeline.mjs', import.meta.url));

/** Test-speed runner settings; tests add the Kafka and Redis addresses and their topic. */
export const FAST_RUNNER_ENV: Record<string, string> = {
  PIPELINE_EXECUTABLE: DEMO_PIPELINE,
  GPU_DEVICES: 'none',
  RUNNER_CONCURRENCY: '3',
  BASE_RETRY_DELAY: '0.05',
  MAX_RETRIES: '2',
  JOB_LEASE_S: '3',
  KILL_GRACE_S: '1',
  SHUTDOWN_GRACE_S: '5',
  PROGRESS_INTERVAL_MS: '0',
  KAFKA_SESSION_TIMEOUT_MS: '3000',
  KAFKA_HEARTBEAT_INTERVAL_MS: '500',
  KAFKA_TOPIC_PARTITIONS: '1',
  KAFKA_REPLICATION_FACTOR: '1',
  RUNNER_PORT: '0',
  RUNNER_HOST: '127.0.0.1',
  LOG_LEVEL: 'info',
};

export interface RunnerProcess {
  readonly id: string;
  readonly port: number;
  readonly proc: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGKILL if still running; always resolves. */
  stop(): Promise<void>;
  metrics(): Promise<string>;
}

/**
 * Starts `switchyard runner` as its own process; resolves once it logged "runner ready" and
 * its /ready says it has joined the consumer group.
 */
export async function startRunner(id: string, env: Record<string, string>, timeoutMs = 30_000): Promise<RunnerProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, 'runner'], {
    cwd: ROOT,
    env: childEnv(FAST_RUNNER_ENV, { RUNNER_ID: id }, env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`runner ${id} did not start in time:\n${lines.join('\n')}`)), timeoutMs);
    splitLines(proc.stdout!, (line) => {
      lines.push(line);
      if (!line.includes('"runner ready"')) return;
      const p = (JSON.parse(line) as { port?: number }).port;
      if (typeof p === 'number') {
        clearTimeout(timer);
        resolve(p);
      }
    });
    splitLines(proc.stderr!, (line) => lines.push(line));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`runner ${id} exited (${code ?? signal}) before it was ready:\n${lines.join('\n')}`));
    });
  });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200 || undefined, timeoutMs, `runner ${id} in the consumer group`);
  return {
    id,
    port,
    proc,
    lines,
    exited,
    kill: (signal = 'SIGTERM') => void proc.kill(signal),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
    metrics: async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
  };
}

/** A Kafka producer and a topic reader for the tests, on the real broker. */
export function kafkaTools(brokers: string) {
  const kafka = createKafka({ brokers: [brokers], clientId: 'switchyard-tests' });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  const admin = kafka.admin();
  let connected: Promise<void> | undefined;
  const ready = () => (connected ??= Promise.all([producer.connect(), admin.connect()]).then(() => undefined));
  const consumers: { disconnect(): Promise<void> }[] = [];
  return {
    async createTopic(topic: string, partitions: number): Promise<void> {
      await ready();
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
    },
    /** Produces raw values (strings or buffers), optionally to a given partition. */
    async produce(topic: string, messages: { value: string | Buffer; key?: string; partition?: number }[]): Promise<void> {
      await ready();
      await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ value: m.value, ...(m.key !== undefined && { key: m.key }), ...(m.partition !== undefined && { partition: m.partition }) })) });
    },
    /** Reads a topic from the beginning into `messages` (parsed JSON values) until stopped. */
    async reader(topic: string): Promise<{ messages: Record<string, unknown>[]; take(n: number, timeoutMs?: number): Promise<Record<string, unknown>[]> }> {
      const consumer = kafka.consumer({ groupId: `reader-${topic}-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 200 });
      consumers.push(consumer);
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const messages: Record<string, unknown>[] = [];
      await consumer.run({
        eachMessage: async ({ message }) => {
          messages.push(JSON.parse(message.value?.toString() ?? 'null') as Record<string, unknown>);
        },
      });
      return {
        messages,
        take: (n, timeoutMs = 20_000) => waitFor(() => (messages.length >= n ? messages.slice(0, n) : undefined), timeoutMs, `${n} message(s) on ${topic}`),
      };
    },
    async close(): Promise<void> {
      await Promise.allSettled([...consumers.map((c) => c.disconnect()), producer.disconnect(), admin.disconnect()]);
    },
  };
}

const TERMINAL = new Set(['job.completed', 'job.failed', 'job.cancelled']);

/** The job events of a channel received so far (event frames only). */
export function jobEvents(client: TestClient, jobId: string): Frame[] {
  return client.frames.filter((f) => f.type === 'event' && f['channel'] === `job:${jobId}`);
}

/** Waits for a job's events until one matches `until` (default: a terminal event); returns all of them. */
export async function eventsUntil(client: TestClient, jobId: string, until: (f: Frame) => boolean = (f) => TERMINAL.has(String(f['event'])), timeoutMs = 20_000): Promise<Frame[]> {
  await client.next((f) => f.type === 'event' && f['channel'] === `job:${jobId}` && until(f), timeoutMs);
  return jobEvents(client, jobId);
}

export const names = (events: Frame[]) => events.map((e) => String(e['event']));

/**
 * Connects with a token and subscribes to a job's channel. `full`
 * (the default) asks for the plain replay of every retained event (`snapshot: false`);
 * `snapshot` takes the default form: the job's `snapshot` frame, then the events after it.
 */
export async function watchJob(url: string, token: string, jobId: string, mode: 'full' | 'snapshot' = 'full'): Promise<{ client: TestClient; result: Frame; snapshot?: Frame }> {
  const { client, hello } = await connect(url, token);
  if (hello.type !== 'auth_success') throw new Error(`auth failed: ${JSON.stringify(hello)}`);
  // 'full': the contract's replay of every event from the start; 'snapshot': the job's status,
  // then only the events after it (no `since`).
  const result = await client.request({ type: 'subscribe', job_id: jobId, ...(mode === 'full' && { since: 0, snapshot: false }) });
  if (mode === 'full' || result['success'] !== true) return { client, result };
  return { client, result, snapshot: await client.next('snapshot') };
}

export async function postJob(http: string, token: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${http}/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export async function getJob(http: string, token: string, jobId: string, method = 'GET'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${http}/jobs/${encodeURIComponent(jobId)}`, { method, headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Asserts job events are in a valid order: queued first, started before progress, one terminal event, last. */
export function checkOrder(events: Frame[]): string[] {
  const n = names(events);
  const seqs = events.map((e) => Number(e['seq']));
  for (let i = 1; i < seqs.length; i++) if (seqs[i] !== seqs[i - 1]! + 1) throw new Error(`seq gap or disorder: ${seqs.join(',')}`);
  return n;
}

/**
 * Waits out everything that could still run a job again after its runner died at `diedAt`, so
 * that "nothing more came" afterwards is a finding and not a guess: the job is final in Redis and
 * gone from its topic's lease index (no reaper will pick it up again), and the dead member's Kafka
 * session has timed out with as much again for the rebalance after it (its partitions will not
 * move again; `diedAt` undefined: no runner died). Returns how long it waited.
 */
export async function waitOutRedelivery(redis: RedisCli, jobId: string, topic: string, diedAt: number | undefined, env: Record<string, string> = FAST_RUNNER_ENV): Promise<number> {
  const started = Date.now();
  await waitFor(
    () => (redis.cli('hget', jobKey(jobId), 'final').trim() !== '' && redis.cli('zscore', leaseIndexKey(topic), jobId).trim() === '') || undefined,
    60_000,
    `job ${jobId} final and out of the lease index`,
  );
  if (diedAt === undefined) return Date.now() - started;
  const sessionMs = Number(env['KAFKA_SESSION_TIMEOUT_MS'] ?? FAST_RUNNER_ENV['KAFKA_SESSION_TIMEOUT_MS']);
  const quietUntil = diedAt + 2 * sessionMs + Number(env['KAFKA_HEARTBEAT_INTERVAL_MS'] ?? FAST_RUNNER_ENV['KAFKA_HEARTBEAT_INTERVAL_MS']);
  const left = quietUntil - Date.now();
  // sleep-ok: a no-duplicate window sized from the Kafka session timeout it watches, not a wait for a condition
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  return Date.now() - started;
}

export { TEST_SECRET };
