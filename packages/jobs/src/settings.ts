import { int, list, str } from '@switchyard/config';
import { DEFAULT_MAX_JOB_BYTES } from './job.js';
import { checkTopicName } from './kafka.js';

/** Seconds a job's status hash lives after its last change. */
export const DEFAULT_JOB_STATUS_TTL_S = 86_400;
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
} as const;
