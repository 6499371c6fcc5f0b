import { RedisBroker, type Broker } from '@switchyard/broker';
import { JOB_ID_ALPHABET, JobError, JobReaper, JobService, KafkaJobQueue, RedisJobControl, RedisJobStore, createKafka, isValidJobId, jobTopics, leaseIndexKey } from '@switchyard/jobs';
import { ErrorCode } from '@switchyard/protocol';
import type { Logger } from 'pino';
import type { Claims, TokenVerifier } from './auth.js';
import type { EdgeConfig } from './config.js';
import { AuthError } from './errors.js';
import { HttpError, bearer, parseJsonBody, route, type CommonHeaders, type HttpReply, type RequestInfo } from './http.js';
import type { EdgeMetrics } from './metrics.js';
import type { JobAccess } from './job-access.js';
import { canPublish, canSubscribe } from './permissions.js';
import type { TemplatedApp } from './uws.js';

/**
 * The edge's jobs when KAFKA_SERVERS is set: jobs are produced to the jobs topic, status and
 * cancels go through the node's Redis, and (JOB_REAPER) the node sweeps for stalled jobs —
 * so stalls are settled even while no runner is alive. Without Kafka there is nothing to
 * build here: a lone node gets in-process jobs from whoever starts it (`switchyard dev` /
 * `switchyard edge`).
 */
export function createEdgeJobs(config: EdgeConfig, broker: Broker, log: Logger, metrics?: Pick<EdgeMetrics, 'jobs'>): JobService | undefined {
  if (config.kafkaServers === undefined) return undefined;
  const logger = log.child({ component: 'jobs' });
  if (!(broker instanceof RedisBroker)) {
    logger.warn({}, 'KAFKA_SERVERS is set but this node has no Redis broker: the job API is disabled');
    return undefined;
  }
  const kafka = createKafka({ brokers: config.kafkaServers, clientId: `switchyard-edge-${config.workerId}`, logger });
  const topics = jobTopics(config);
  const queue = new KafkaJobQueue({ kafka, topic: topics.jobs, retryTopic: topics.retry, dlqTopic: topics.dlq, logger });
  // Connect early so the first POST /jobs does not pay for it; a failure is retried on submit.
  queue.start().catch(() => undefined);
  const store = new RedisJobStore(broker.client, { ttlS: config.jobStatusTtlS, broker, leaseIndexKey: leaseIndexKey(topics.jobs) });
  let reaper: JobReaper | undefined;
  if (config.jobReaper) {
    reaper = new JobReaper({
      store,
      sink: queue,
      id: config.workerId,
      intervalMs: config.jobReapIntervalMs,
      logger,
      ...(metrics !== undefined && { onOutcome: (outcome) => metrics.jobs.labels(outcome).inc() }),
    });
    reaper.start();
  }
  return new JobService({
    store,
    queue,
    control: new RedisJobControl(broker.client, { logger }),
    ...(reaper !== undefined && { reaper }),
    maxJobBytes: config.maxJobBytes,
    logger,
  });
}

export interface JobRouteDeps {
  jobs: JobAccess | undefined;
  verifier: TokenVerifier;
  metrics: EdgeMetrics;
  maxJobBytes: number;
}

/** Request bodies over MAX_JOB_BYTES by this much are refused unread (413). */
const BODY_SLACK_BYTES = 1024;
const PREFIX = '/jobs/';

/**
 * `POST /jobs`, `GET /jobs/:id`, `DELETE /jobs/:id` (PROTOCOL.md §6–7). Authentication is the
 * WebSocket's: a JWT as `Authorization: Bearer` (or `?token=`). The owner of a job is the
 * `sub` that submitted it; reading also needs only a read right on `job:<id>`, cancelling a
 * write right on it.
 */
export function registerJobRoutes(app: TemplatedApp, deps: JobRouteDeps, common: CommonHeaders): void {
  const limit = deps.maxJobBytes + BODY_SLACK_BYTES;
  app.post('/jobs', route((info) => submit(deps, info), common, limit));
  app.get('/jobs/:id', route((info) => status(deps, info), common));
  app.del('/jobs/:id', route((info) => cancel(deps, info), common));
}

async function authenticate(deps: JobRouteDeps, info: RequestInfo): Promise<Claims> {
  const token = bearer(info.authorization) ?? new URLSearchParams(info.query).get('token') ?? undefined;
  if (token === undefined || token === '') throw new HttpError(401, ErrorCode.Unauthenticated, 'Authorization: Bearer <JWT> required');
  try {
    return await deps.verifier.verify(token);
  } catch (err) {
    throw new HttpError(401, err instanceof AuthError ? err.reason : ErrorCode.Unauthenticated, err instanceof AuthError ? err.message : 'token rejected');
  }
}

function available<K extends 'submit' | 'status'>(deps: JobRouteDeps, method: K): NonNullable<JobAccess[K]> {
  const fn = deps.jobs?.[method];
  if (fn === undefined) {
    throw new HttpError(503, 'jobs_disabled', 'this node runs no job queue: set KAFKA_SERVERS (with REDIS_URL), or PIPELINE_EXECUTABLE for an in-process runner');
  }
  return fn.bind(deps.jobs) as NonNullable<JobAccess[K]>;
}

function jobIdOf(info: RequestInfo): string {
  const raw = info.url.startsWith(PREFIX) ? info.url.slice(PREFIX.length) : '';
  let id: string;
  try {
    id = decodeURIComponent(raw);
  } catch {
    id = '';
  }
  if (!isValidJobId(id)) throw new HttpError(400, ErrorCode.BadChannel, `the job id must be ${JOB_ID_ALPHABET}`);
  return id;
}

function asHttp(err: unknown): never {
  if (err instanceof JobError) throw new HttpError(err.httpStatus, err.code, err.message);
  throw err;
}

async function submit(deps: JobRouteDeps, info: RequestInfo): Promise<HttpReply> {
  const claims = await authenticate(deps, info);
  const submitJob = available(deps, 'submit');
  const body = parseJsonBody(info);
  const { jobId } = await submitJob(body, claims.sub).catch(asHttp);
  deps.metrics.jobs.labels('submitted').inc();
  return { status: 202, body: { job_id: jobId } };
}

async function status(deps: JobRouteDeps, info: RequestInfo): Promise<HttpReply> {
  const claims = await authenticate(deps, info);
  const read = available(deps, 'status');
  const id = jobIdOf(info);
  const record = await read(id).catch(asHttp);
  if (record === undefined) throw new HttpError(404, ErrorCode.NotFound, `no job ${id}`);
  if (record.owner !== claims.sub && !canSubscribe(claims, `job:${id}`)) throw new HttpError(403, ErrorCode.Forbidden, `job ${id} is not yours`);
  return { status: 200, body: record };
}

async function cancel(deps: JobRouteDeps, info: RequestInfo): Promise<HttpReply> {
  const claims = await authenticate(deps, info);
  const read = available(deps, 'status');
  const id = jobIdOf(info);
  const jobs = deps.jobs!;
  if (jobs.cancel === undefined) throw new HttpError(503, 'jobs_disabled', 'this node cannot cancel jobs');
  const record = await read(id).catch(asHttp);
  if (record === undefined) throw new HttpError(404, ErrorCode.NotFound, `no job ${id}`);
  const owner = record.owner;
  if (owner !== claims.sub && !canPublish(claims, `job:${id}`)) throw new HttpError(403, ErrorCode.Forbidden, `job ${id} is not yours`);
  // Rights are checked above (the owner, or a write right): cancel as the owner.
  const outcome = await jobs.cancel(id, owner ?? claims.sub).catch(asHttp);
  if (outcome === 'not_found') throw new HttpError(404, ErrorCode.NotFound, `no job ${id}`);
  if (outcome === 'forbidden') throw new HttpError(403, ErrorCode.Forbidden, `job ${id} is not yours`);
  if (outcome === 'finished') throw new HttpError(409, 'job_finished', `job ${id} has already finished`);
  deps.metrics.jobs.labels('cancel_requested').inc();
  return { status: 202, body: { job_id: id, cancel: 'requested' } };
}
