import { hostname } from 'node:os';
import { ConfigError, describedAs, int, list, loadSettings, num, sharedSettings, str, type SettingsOf, type SettingsSources } from '@switchyard/config';
import { jobSettings, jobTopics } from '@switchyard/jobs';

/** Every runner setting, its default and its meaning: the one place defaults live. */
export const runnerSettings = {
  pipelineExecutable: str('PIPELINE_EXECUTABLE', undefined, 'the program run once per job (job JSON on stdin); `.js`/`.mjs` files run with this Node'),
  biogpuExecutable: str('BIOGPU_EXECUTABLE', undefined, 'accepted instead of `PIPELINE_EXECUTABLE`'),
  referenceDbPath: str('REFERENCE_DB_PATH', undefined, 'passed to the pipeline in its environment'),
  resistanceDbPath: str('RESISTANCE_DB_PATH', undefined, 'passed to the pipeline in its environment'),
  gpuDevices: list('GPU_DEVICES', 'GPU indices, one job slot each (`0,1`); `none` for no GPUs; unset: ask `nvidia-smi`'),
  runnerConcurrency: int('RUNNER_CONCURRENCY', 1, 'jobs run at once when there are no GPUs', { min: 1, max: 256 }),
  jobTimeoutS: num('JOB_TIMEOUT_S', 3600, 'longest a job may run before it is killed (a transient failure)', { min: 0.1 }),
  maxRetries: int('MAX_RETRIES', 3, 'retries of a transient (or unknown) failure before the job goes to the DLQ', { min: 0, max: 100 }),
  baseRetryDelayS: num('BASE_RETRY_DELAY', 60, 'seconds before the first retry; retry n waits BASE × 2^(n-1), ±20 % jitter', { min: 0 }),
  maxRetryDelayS: num('MAX_RETRY_DELAY_S', 3600, 'longest wait before a retry', { min: 0 }),
  jobLeaseS: num('JOB_LEASE_S', 30, 'a running job’s lease in Redis, renewed every third of it; another runner may take the job over once it lapses', { min: 0.3 }),
  killGraceS: num('KILL_GRACE_S', 10, 'seconds between SIGTERM and SIGKILL when a job is stopped', { min: 0 }),
  shutdownGraceS: num('SHUTDOWN_GRACE_S', 30, 'on SIGTERM, how long running jobs may finish before they are handed back', { min: 0 }),
  progressIntervalMs: int('PROGRESS_INTERVAL_MS', 250, 'least time between two `job.progress` events of a job (stage changes are sent at once)', { min: 0 }),
  pipelineEnvAllow: list('PIPELINE_ENV_ALLOW', 'comma list of the runner’s environment variables the pipeline sees (`NAME` or `PREFIX*`); the job’s own (JOB_ID, GPU_DEVICE_ID, CUDA_VISIBLE_DEVICES, REFERENCE_DB_PATH, RESISTANCE_DB_PATH) always pass, REDIS_URL / JWT_SECRET / API keys never; unset: PATH, HOME, USER, LANG, LANGUAGE, LC_*, TZ, TMPDIR, SHELL, LD_LIBRARY_PATH, CUDA_*, NVIDIA_*, PYTHON*, VIRTUAL_ENV, CONDA_*, OMP_NUM_THREADS'),
  maxLineBytes: int('MAX_LINE_BYTES', 65_536, 'longest pipeline stdout line read; longer lines are skipped', { min: 256 }),

  ...jobSettings,
  kafkaGroupId: str('KAFKA_GROUP_ID', 'switchyard-runners', 'consumer group of the runners'),
  kafkaClientId: str('KAFKA_CLIENT_ID', 'switchyard-runner', 'Kafka client id'),
  kafkaTopicPartitions: int('KAFKA_TOPIC_PARTITIONS', 6, 'partitions of the topics the runner creates when they are missing', { min: 1 }),
  kafkaReplicationFactor: int('KAFKA_REPLICATION_FACTOR', -1, 'replication of the topics the runner creates (-1: the broker’s default)', { min: -1 }),
  kafkaSessionTimeoutMs: int('KAFKA_SESSION_TIMEOUT_MS', 30_000, 'consumer session timeout: a runner silent this long loses its partitions', { min: 1000 }),
  kafkaHeartbeatIntervalMs: int('KAFKA_HEARTBEAT_INTERVAL_MS', 3000, 'consumer heartbeat interval', { min: 100 }),
  maxConsumerLag: int('MAX_CONSUMER_LAG', 0, '`/ready` turns 503 while the jobs waiting on this runner’s partitions of the jobs topic (its consumer lag) are more than this; 0: never', { min: 0 }),
  lagCheckIntervalMs: int('LAG_CHECK_INTERVAL_MS', 5000, 'how often consumer lag is measured (`switchyard_consumer_lag`, MAX_CONSUMER_LAG)', { min: 100 }),

  // Defined once in @switchyard/config with the edge; worded here for what they mean to a runner.
  redisUrl: describedAs(sharedSettings.redisUrl, 'Redis for job status, events and cancels (required with KAFKA_SERVERS)'),
  redisClusterNodes: sharedSettings.redisClusterNodes,
  historySize: describedAs(sharedSettings.historySize, 'events kept per channel (as on the edges)'),
  historyTtlS: describedAs(sharedSettings.historyTtlS, 'seconds a channel’s history lives (as on the edges)'),
  readyRedisGraceMs: describedAs(sharedSettings.readyRedisGraceMs, '`/ready` turns 503 once Redis has been unreachable this long (as on the edges)'),

  runnerId: str('RUNNER_ID', undefined, 'this runner’s id (default host-pid)'),
  runnerPort: int('RUNNER_PORT', 9465, 'port of the runner’s /health, /ready and /metrics (0: any free port)', { min: 0, max: 65535 }),
  runnerHost: str('RUNNER_HOST', '0.0.0.0', 'address of the runner’s HTTP server'),
  logLevel: sharedSettings.logLevel,
} as const;

export type RunnerSettings = SettingsOf<typeof runnerSettings>;

/** Settings after cross-field checks, with derived values filled in. */
export interface RunnerConfig extends Omit<RunnerSettings, 'runnerId' | 'pipelineExecutable' | 'kafkaRetryTopic' | 'kafkaDlqTopic'> {
  runnerId: string;
  /** PIPELINE_EXECUTABLE, else BIOGPU_EXECUTABLE. */
  pipelineExecutable: string;
  kafkaRetryTopic: string;
  kafkaDlqTopic: string;
}

export interface LoadOptions {
  /** The in-process runner of `switchyard dev` / a lone edge: Kafka settings are not used. */
  inProcess?: boolean;
}

/**
 * Parses the environment (and an optional `--config` file) once, at start-up. Any bad
 * value throws a ConfigError naming the setting.
 */
export function loadRunnerConfig(sources: SettingsSources = {}, overrides: Partial<RunnerSettings> = {}, options: LoadOptions = {}): RunnerConfig {
  const s = { ...loadSettings(runnerSettings, sources), ...overrides };
  const executable = s.pipelineExecutable ?? s.biogpuExecutable;
  if (executable === undefined || executable === '') {
    throw new ConfigError('PIPELINE_EXECUTABLE', 'is required (or BIOGPU_EXECUTABLE): the program the runner runs for each job');
  }
  if (!options.inProcess) {
    if (s.kafkaServers === undefined) throw new ConfigError('KAFKA_SERVERS', 'is required for `switchyard runner` (without Kafka, `switchyard dev` runs jobs in process)');
    if (s.redisUrl === undefined && s.redisClusterNodes === undefined) {
      throw new ConfigError('REDIS_URL', 'is required with KAFKA_SERVERS (or REDIS_CLUSTER_NODES): job status, events and cancels go through Redis');
    }
  }
  if (s.maxRetryDelayS < s.baseRetryDelayS) throw new ConfigError('MAX_RETRY_DELAY_S', `must be at least BASE_RETRY_DELAY (${s.baseRetryDelayS})`);
  if (s.kafkaHeartbeatIntervalMs * 3 > s.kafkaSessionTimeoutMs) {
    throw new ConfigError('KAFKA_HEARTBEAT_INTERVAL_MS', `must be at most a third of KAFKA_SESSION_TIMEOUT_MS (${s.kafkaSessionTimeoutMs})`);
  }
  const { retry, dlq } = jobTopics(s);
  if (new Set([s.kafkaJobsTopic, retry, dlq]).size !== 3) throw new ConfigError('KAFKA_DLQ_TOPIC', 'the jobs, retry and dead-letter topics must be three different topics');
  return {
    ...s,
    pipelineExecutable: executable,
    runnerId: s.runnerId ?? `${hostname()}-${process.pid}`,
    kafkaRetryTopic: retry,
    kafkaDlqTopic: dlq,
  };
}
