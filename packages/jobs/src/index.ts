export {
  JobEvent,
  DEFAULT_MAX_JOB_BYTES,
  MAX_JOB_ID_LENGTH,
  MAX_OWNER_LENGTH,
  MAX_FIELD_LENGTH,
  newJobId,
  isValidJobId,
  validateJob,
  parseJobMessage,
  preview,
  sniffJobId,
} from './job.js';
export type { JobSpec, JobState, FinalState, FailureClass, JobCheck, JobMessageCheck } from './job.js';
export { JobError } from './errors.js';
export type { JobErrorCode } from './errors.js';
export type { JobLogger } from './logger.js';
export { NOOP_LOGGER } from './logger.js';
export { isFinalState, recordFromHash } from './store.js';
export type {
  JobStore,
  JobRecord,
  ClaimOutcome,
  ClaimRequest,
  CancelOutcome,
  RenewOutcome,
  ProgressUpdate,
  FinishFields,
} from './store.js';
export { MemoryJobStore } from './memory-store.js';
export { RedisJobStore, jobKey } from './redis-store.js';
export { MemoryJobControl, RedisJobControl, DEFAULT_CONTROL_CHANNEL } from './control.js';
export type { JobControl } from './control.js';
export { JobEvents, jobChannelOf } from './events.js';
export { MemoryJobQueue, KafkaJobQueue, DEFAULT_MEMORY_QUEUE_LIMIT } from './queue.js';
export type { JobQueue, QueuedJob, QueueStatus, KafkaJobQueueOptions } from './queue.js';
export { createKafka, ensureTopics, checkTopicName, kafkajs } from './kafka.js';
export type { KafkaOptions } from './kafka.js';
export { JobService } from './service.js';
export type { JobServiceOptions, CancelResult } from './service.js';
export { jobSettings, DEFAULT_JOB_STATUS_TTL_S, DEFAULT_JOBS_TOPIC } from './settings.js';
