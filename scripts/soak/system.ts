import { spawnSync } from 'node:child_process';
import { startEdge, TEST_SECRET, type EdgeProcess } from '../../test/harness/edge.js';
import { startKafka, type KafkaServer } from '../../test/harness/kafka.js';
import { startRedis, type RedisServer } from '../../test/harness/redis.js';
import { startRunner, type RunnerProcess } from '../../test/jobs/helpers.js';
import type { SoakTarget } from './driver.js';

/**
 * The soak's cluster, started with the test harness on free loopback ports: one Redis, one
 * Kafka, three edges and a runner, each its own process.
 */
export interface SoakSystem {
  target: SoakTarget;
  redis: RedisServer;
  edges: EdgeProcess[];
  runner: RunnerProcess;
  stop(): Promise<void>;
}

/** Session keys outlive connections by this much; short, so a fixed workload plateaus. */
const SESSION_TTL_S = '60';

export async function startSoakSystem(): Promise<SoakSystem> {
  let redis: RedisServer | undefined;
  let kafka: KafkaServer | undefined;
  const edges: EdgeProcess[] = [];
  let runner: RunnerProcess | undefined;
  const stop = async () => {
    await Promise.allSettled([...edges.map((e) => e.stop()), runner?.stop()]);
    await Promise.allSettled([kafka?.stop(), redis?.stop()]);
  };
  try {
    [redis, kafka] = await Promise.all([startRedis(), startKafka()]);
    const env = {
      REDIS_URL: redis.url,
      KAFKA_SERVERS: kafka.brokers,
      WEBSOCKET_SESSION_TTL: SESSION_TTL_S,
      MAX_CONNECTIONS_PER_USER: '100000',
      USER_RATE_LIMIT_PER_S: '100000',
      RATE_LIMIT_PER_S: '1000',
      RATE_LIMIT_BURST: '2000',
      LOG_LEVEL: 'info',
    };
    runner = await startRunner('soak-runner', { KAFKA_SERVERS: kafka.brokers, REDIS_URL: redis.url, RUNNER_CONCURRENCY: '4' }, 90_000);
    for (let i = 0; i < 3; i++) edges.push(await startEdge({ ...env, WORKER_ID: `soak-e${i}` }, { timeoutMs: 60_000 }));
  } catch (err) {
    await stop();
    throw err;
  }
  const r = redis;
  const target: SoakTarget = {
    edges: edges.map((e, i) => ({ name: `edge${i}`, ws: e.url, http: e.http })),
    others: [{ name: 'runner', http: `http://127.0.0.1:${runner.port}` }],
    jwtSecret: TEST_SECRET,
    redisFigures() {
      const info = spawnSync('redis-cli', ['-p', String(r.port), 'info', 'memory'], { encoding: 'utf8', timeout: 5000 }).stdout ?? '';
      const used = /^used_memory:(\d+)/m.exec(info);
      return { keys: Number(r.cli('dbsize').trim()), usedMemoryBytes: used === null ? NaN : Number(used[1]) };
    },
  };
  return { target, redis, edges, runner, stop };
}
