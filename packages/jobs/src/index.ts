export {
  JobEvent,
  DEFAULT_MAX_JOB_BYTES,
  MAX_JOB_ID_LENGTH,
  MAX_OWNER_LENGTH,
  MAX_FIELD_LENGTH,
  newJobId,
  isValidJobId,
  JOB_ID_ALPHABET,
  validateJob,
  parseJobMessage,
  preview,
  sniffJobId,
} from './job.js';
export type { JobSpec, JobState, FinalState, FailureClass, JobFailureClass, JobCheck, JobMessageCheck } from './job.js';
export { JobError } from './errors.js';
export type { JobErrorCode } from './errors.js';
export type { JobLogger } from './logger.js';
export { NOOP_LOGGER } from './logger.js';
export { isFinalState, recordFromHash, snapshotFromHash } from './store.js';
export type {
  JobStore,
  JobRecord,
  JobSnapshot,
  Announcement,
  ClaimOutcome,
  ClaimRequest,
  CancelOutcome,
  RenewOutcome,
  ProgressUpdate,
  FinishFields,
  StallOutcome,
  StallOptions,
  DueLease,
} from './store.js';
export { MemoryJobStore } from './memory-store.js';
export type { MemoryJobStoreOptions } from './memory-store.js';
export { RedisJobStore, jobKey, leaseIndexKey, DEFAULT_LEASE_INDEX_KEY } from './redis-store.js';
export type { RedisJobStoreOptions } from './redis-store.js';
export { JobReaper, REAP_BATCH, REAP_HOLD_MS, DEFAULT_MAX_RETRIES } from './reaper.js';
export type { JobReaperOptions, StallSink, DeadLetter, ReapOutcome } from './reaper.js';
export { MemoryJobControl, RedisJobControl, DEFAULT_CONTROL_CHANNEL } from './control.js';
export type { JobControl } from './control.js';
export { jobChannelOf } from './events.js';
export { MemoryJobQueue, KafkaJobQueue, DEFAULT_MEMORY_QUEUE_LIMIT } from './queue.js';
export type { JobQueue, QueuedJob, QueueStatus, KafkaJobQueueOptions } from './queue.js';
export { createKafka, ensureTopics, checkTopicName, kafkajs, HEADER_ATTEMPT, HEADER_NOT_BEFORE, HEADER_ERROR, HEADER_CLASS } from './kafka.js';
export type { KafkaOptions } from './kafka.js';
export { JobService } from './service.js';
export { newestFirst, recentFromRedis, MAX_SCANNED_JOBS } from './recent.js';
export type { JobServiceOptions, CancelResult, JobSnapshotView } from './service.js';
export { jobSettings, jobTopics, DEFAULT_JOB_STATUS_TTL_S, DEFAULT_JOBS_TOPIC, DEFAULT_JOB_REAP_INTERVAL_MS } from './settings.js';
