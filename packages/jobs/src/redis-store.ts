import type { Cluster, Redis } from 'ioredis';
import { JobError } from './errors.js';
import type { FinalState, JobSpec } from './job.js';
import {
  finishFieldsToHash,
  isFinalState,
  progressToHash,
  recordFromHash,
  type CancelOutcome,
  type ClaimOutcome,
  type ClaimRequest,
  type FinishFields,
  type JobRecord,
  type JobStore,
  type ProgressUpdate,
  type RenewOutcome,
} from './store.js';

type Client = Redis | Cluster;

/** The key the contract names: the hash `job:<id>`. */
export function jobKey(jobId: string): string {
  return `job:${jobId}`;
}

/** Milliseconds now, by the Redis server's clock: every runner compares leases on one clock. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS[1]; ARGV: ttl, field, value, ... → 1 created, 0 taken. */
const CREATE_LUA = `if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1`;

/** KEYS[1]; ARGV: runner, leaseMs, ttl, attempt, nowIso, owner, jobId, gpu, sampleId. */
const CLAIM_LUA = `${NOW}
local h = redis.call('HMGET', KEYS[1], 'final', 'runner', 'lease_until', 'cancel_requested', 'job_id', 'state', 'attempts')
if h[1] then return {'final', h[1]} end
local made = tonumber(h[7] or '0') or 0
local attempt = tonumber(ARGV[4])
if made > attempt or (h[6] == 'retrying' and made >= attempt) then return {'stale', tostring(made)} end
local lease = tonumber(h[3] or '0') or 0
if h[2] and h[2] ~= ARGV[1] and lease > now then return {'leased', h[2], tostring(lease - now)} end
local existed = '0'
if h[5] then existed = '1' else
  redis.call('HSET', KEYS[1], 'job_id', ARGV[7], 'created_at', ARGV[5])
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'owner', ARGV[6]) end
  if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'sample_id', ARGV[9]) end
end
if h[4] == '1' then
  redis.call('HSET', KEYS[1], 'final', 'cancelled', 'state', 'cancelled', 'finished_at', ARGV[5], 'updated_at', ARGV[5], 'lease_until', '0')
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {'cancelled', existed}
end
redis.call('HSET', KEYS[1], 'state', 'running', 'runner', ARGV[1], 'lease_until', tostring(now + tonumber(ARGV[2])), 'attempts', ARGV[4],
  'started_at', ARGV[5], 'updated_at', ARGV[5], 'progress', '0', 'stage', '', 'message', '')
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'gpu', ARGV[8]) else redis.call('HDEL', KEYS[1], 'gpu') end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {'claimed', existed}`;

/** KEYS[1]; ARGV: runner, leaseMs, ttl → {held, cancel}. */
const RENEW_LUA = `${NOW}
local h = redis.call('HMGET', KEYS[1], 'runner', 'final', 'cancel_requested')
local cancel = '0'
if h[3] == '1' or h[2] == 'cancelled' then cancel = '1' end
if h[1] ~= ARGV[1] or h[2] then return {'0', cancel} end
redis.call('HSET', KEYS[1], 'lease_until', tostring(now + tonumber(ARGV[2])))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {'1', cancel}`;

/** KEYS[1]; ARGV: ttl, field, value, ... (only an existing record is updated). */
const PROGRESS_LUA = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1`;

/** KEYS[1]; ARGV: runner, state, ttl, nowIso, field, value, ... */
const RELEASE_LUA = `local h = redis.call('HMGET', KEYS[1], 'runner', 'final')
if h[2] or h[1] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'lease_until', '0', 'updated_at', ARGV[4], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1`;

/** KEYS[1]; ARGV: final, ttl, nowIso, jobId, field, value, ... → 1 for the first terminal state only. */
const FINISH_LUA = `if redis.call('HEXISTS', KEYS[1], 'final') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'job_id', ARGV[4], 'final', ARGV[1], 'state', ARGV[1], 'finished_at', ARGV[3], 'updated_at', ARGV[3], 'lease_until', '0', unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1`;

/** KEYS[1]; ARGV: user ('' skips the owner check), ttl, nowIso. */
const CANCEL_LUA = `${NOW}
local h = redis.call('HMGET', KEYS[1], 'job_id', 'owner', 'final', 'state', 'lease_until')
if not h[1] then return 'not_found' end
if ARGV[1] ~= '' and h[2] ~= ARGV[1] then return 'forbidden' end
if h[3] then return 'finished' end
local lease = tonumber(h[5] or '0') or 0
if h[4] == 'running' and lease > now then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'updated_at', ARGV[3])
  return 'requested'
end
redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'final', 'cancelled', 'state', 'cancelled', 'finished_at', ARGV[3], 'updated_at', ARGV[3], 'lease_until', '0')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 'cancelled'`;

type Arg = string | number;
interface Scripts {
  syJobCreate(key: string, ...args: Arg[]): Promise<number>;
  syJobClaim(key: string, ...args: Arg[]): Promise<string[]>;
  syJobRenew(key: string, ...args: Arg[]): Promise<string[]>;
  syJobProgress(key: string, ...args: Arg[]): Promise<number>;
  syJobRelease(key: string, ...args: Arg[]): Promise<number>;
  syJobFinish(key: string, ...args: Arg[]): Promise<number>;
  syJobCancel(key: string, ...args: Arg[]): Promise<string>;
}

const SCRIPTS: Record<keyof Scripts, string> = {
  syJobCreate: CREATE_LUA,
  syJobClaim: CLAIM_LUA,
  syJobRenew: RENEW_LUA,
  syJobProgress: PROGRESS_LUA,
  syJobRelease: RELEASE_LUA,
  syJobFinish: FINISH_LUA,
  syJobCancel: CANCEL_LUA,
};

function flat(fields: Record<string, string>): string[] {
  return Object.entries(fields).flat();
}

/**
 * Job status in the hash `job:<id>` (TTL JOB_STATUS_TTL_S, renewed on every change). Works
 * on a single Redis and on a Redis Cluster (each script touches one key). Shares the
 * command connection it is given; closing the store does not close it.
 */
export class RedisJobStore implements JobStore {
  readonly kind = 'redis';
  readonly #client: Client;
  readonly #s: Scripts;
  readonly #ttlS: number;

  constructor(client: Client, options: { ttlS: number }) {
    this.#client = client;
    this.#ttlS = options.ttlS;
    const withScripts = client as unknown as Partial<Scripts>;
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (typeof withScripts[name as keyof Scripts] !== 'function') client.defineCommand(name, { numberOfKeys: 1, lua });
    }
    this.#s = client as unknown as Scripts;
  }

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new JobError('unavailable', `job store (Redis) failed to ${what}: ${(err as Error).message}`, { cause: err });
    }
  }

  create(job: JobSpec, owner: string): Promise<boolean> {
    const now = new Date().toISOString();
    const fields: Record<string, string> = { job_id: job.job_id, owner, state: 'queued', attempts: '0', created_at: now, updated_at: now };
    if (job.sample_id !== undefined) fields['sample_id'] = job.sample_id;
    return this.#call('create a job', async () => (await this.#s.syJobCreate(jobKey(job.job_id), this.#ttlS, ...flat(fields))) === 1);
  }

  get(jobId: string): Promise<JobRecord | undefined> {
    return this.#call('read a job', async () => recordFromHash(await this.#client.hgetall(jobKey(jobId))));
  }

  claim(jobId: string, r: ClaimRequest): Promise<ClaimOutcome> {
    return this.#call('claim a job', async () => {
      const out = await this.#s.syJobClaim(
        jobKey(jobId),
        r.runner,
        Math.round(r.leaseMs),
        this.#ttlS,
        r.attempt,
        new Date().toISOString(),
        r.job.owner ?? '',
        jobId,
        r.gpu ?? '',
        r.job.sample_id ?? '',
      );
      const [kind, a, b] = out.map(String);
      if (kind === 'final' && isFinalState(a)) return { kind: 'final', final: a };
      if (kind === 'leased') return { kind: 'leased', runner: a ?? '', remainingMs: Number(b) };
      if (kind === 'cancelled') return { kind: 'cancelled', existed: a === '1' };
      if (kind === 'stale') return { kind: 'stale', attempts: Number(a) };
      return { kind: 'claimed', existed: a === '1' };
    });
  }

  renew(jobId: string, runner: string, leaseMs: number): Promise<RenewOutcome> {
    return this.#call('renew a lease', async () => {
      const [held, cancel] = (await this.#s.syJobRenew(jobKey(jobId), runner, Math.round(leaseMs), this.#ttlS)).map(String);
      return { held: held === '1', cancelRequested: cancel === '1' };
    });
  }

  progress(jobId: string, update: ProgressUpdate): Promise<void> {
    const fields = { ...progressToHash(update), updated_at: new Date().toISOString() };
    return this.#call('record progress', async () => {
      await this.#s.syJobProgress(jobKey(jobId), this.#ttlS, ...flat(fields));
    });
  }

  release(jobId: string, runner: string, state: 'queued' | 'retrying', fields?: FinishFields): Promise<void> {
    return this.#call('release a job', async () => {
      await this.#s.syJobRelease(jobKey(jobId), runner, state, this.#ttlS, new Date().toISOString(), ...flat(finishFieldsToHash(fields)));
    });
  }

  finish(jobId: string, final: FinalState, fields?: FinishFields): Promise<boolean> {
    return this.#call('finish a job', async () => {
      const won = await this.#s.syJobFinish(jobKey(jobId), final, this.#ttlS, new Date().toISOString(), jobId, ...flat(finishFieldsToHash(fields)));
      return won === 1;
    });
  }

  cancel(jobId: string, byUser: string | undefined): Promise<CancelOutcome> {
    return this.#call('cancel a job', async () => (await this.#s.syJobCancel(jobKey(jobId), byUser ?? '', this.#ttlS, new Date().toISOString())) as CancelOutcome);
  }

  /** The connection belongs to whoever gave it. */
  async close(): Promise<void> {}
}
