import { bool, int, list, str } from '@switchyard/config';
import { DEFAULT_MAX_JOB_BYTES } from './job.js';
import { checkTopicName } from './kafka.js';

/** Seconds a job's status hash lives after its last change. */
export const DEFAULT_JOB_STATUS_TTL_S = 86_400;
/** Time between two sweeps of a process's job reaper. */
export const DEFAULT_JOB_REAP_INTERVAL_MS = 5000;
export const DEFAULT_JOBS_TOPIC = 'new_jobs';

/**
 * Job settings that edges and runners share (the same names mean the same on both). Each
 * side spreads them into its own settings table.
 */
export const jobSettings = {
  kafkaServers: list('KAFKA_SERVERS', 'Kafka brokers `host:port,...` for jobs; unset: a lone node runs jobs on an in-process queue'),
  kafkaJobsTopic: str('KAFKA_JOBS_TOPIC', DEFAULT_JOBS_TOPIC, 'Kafka topic of new jobs', checkTopicName),
  jobStatusTtlS: int('JOB_STATUS_TTL_S', DEFAULT_JOB_STATUS_TTL_S, 'seconds a job’s status hash `job:<id>` lives after its last change', { min: 1 }),
  maxJobBytes: int('MAX_JOB_BYTES', DEFAULT_MAX_JOB_BYTES, 'largest job JSON accepted (`POST /jobs` body, a message on the jobs topic)', { min: 256 }),
  kafkaRetryTopic: str('KAFKA_RETRY_TOPIC', undefined, 'topic of scheduled retries (default `<KAFKA_JOBS_TOPIC>.retry`)', checkTopicName),
  kafkaDlqTopic: str('KAFKA_DLQ_TOPIC', undefined, 'dead-letter topic (default `<KAFKA_JOBS_TOPIC>.dlq`)', checkTopicName),
  jobReaper: bool('JOB_REAPER', true, 'sweep for jobs whose runner stopped renewing its lease: `job.stalled`, then re-queue or fail them (edges with jobs, runners)'),
  jobReapIntervalMs: int('JOB_REAP_INTERVAL_MS', DEFAULT_JOB_REAP_INTERVAL_MS, 'time between two reaper sweeps (±20 %)', { min: 50 }),
} as const;

/** The retry and dead-letter topics, from their settings or the jobs topic's name. */
export function jobTopics(s: { kafkaJobsTopic: string; kafkaRetryTopic?: string | undefined; kafkaDlqTopic?: string | undefined }): { jobs: string; retry: string; dlq: string } {
  return { jobs: s.kafkaJobsTopic, retry: s.kafkaRetryTopic ?? `${s.kafkaJobsTopic}.retry`, dlq: s.kafkaDlqTopic ?? `${s.kafkaJobsTopic}.dlq` };
}
