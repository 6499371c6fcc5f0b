import { PUBLISH_FUNCTION_LUA, type PublishTarget, type RedisBroker } from '@switchyard/broker';
import { eventSuffix } from '@switchyard/protocol';
import { JobError } from './errors.js';
import { recentFromRedis } from './recent.js';
import { jobChannelOf } from './events.js';
import { JobEvent, type FinalState, type JobSpec } from './job.js';
import {
  announcementJson,
  finishFieldsToHash,
  isFinalState,
  progressToHash,
  recordFromHash,
  snapshotFromHash,
  type Announcement,
  type CancelOutcome,
  type ClaimOutcome,
  type ClaimRequest,
  type DueLease,
  type FinishFields,
  type JobRecord,
  type JobSnapshot,
  type JobStore,
  type ProgressUpdate,
  type RenewOutcome,
  type StallOptions,
  type StallOutcome,
} from './store.js';

type Client = RedisBroker['client'];

/** The key the contract names: the hash `job:<id>`. */
export function jobKey(jobId: string): string {
  return `job:${jobId}`;
}

/** The sorted set of running jobs by when their lease (or reaping) lapses, swept by reapers. */
export const DEFAULT_LEASE_INDEX_KEY = 'sy:jobs:leases';

/**
 * The lease index of the jobs of one Kafka jobs topic: its reapers re-queue and dead-letter
 * on that topic's retry and DLQ topics, so each topic's jobs are indexed apart.
 */
export function leaseIndexKey(jobsTopic: string | undefined): string {
  return jobsTopic === undefined ? DEFAULT_LEASE_INDEX_KEY : `${DEFAULT_LEASE_INDEX_KEY}:${jobsTopic}`;
}

/** Milliseconds now, by the Redis server's clock: every runner compares leases on one clock. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Shared head of the scripts that may announce their transition. KEYS: the job hash, then
 * the meta and history keys of its channel `job:<id>` (same hash slot). ARGV[1] = k, the
 * number of prepared event suffixes; ARGV[2..8] = the channel's frame prefix ('' = no
 * broker: publish nothing), new epoch, history size, history ttl, pubsub channel, now ms,
 * sharded; ARGV[9..8+k] = the suffixes; the script's own arguments follow, as A[1], A[2], ...
 * `announce(i)` publishes suffix i and records its seq and epoch in the job hash.
 */
const ANNOUNCE = `${PUBLISH_FUNCTION_LUA}
local k = tonumber(ARGV[1])
local A = {}
for i = 9 + k, #ARGV do A[#A + 1] = ARGV[i] end
local function emit(suffix)
  if ARGV[2] == '' then return end
  local seq, epoch = sy_publish(KEYS[2], KEYS[3], ARGV[2], suffix, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
  redis.call('HSET', KEYS[1], 'seq', seq, 'epoch', epoch)
end
local function announce(i)
  if i <= k then emit(ARGV[8 + i]) end
end
-- data_json is built field by field with json_string, in the order the TypeScript side writes it
-- (announcementJson), so a frame made here equals the one the TypeScript encoder makes.
local function suffix(event, data_json, iso)
  return ',"event":' .. json_string(event) .. ',"data":' .. data_json .. ',"timestamp":"' .. iso .. '"}'
end`;

/** A: ttl, field, value, ... Suffix 1: job.queued. → 1 created, 0 taken. */
const CREATE_LUA = `${ANNOUNCE}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(A, 2))
announce(1)
redis.call('EXPIRE', KEYS[1], A[1])
return 1`;

/**
 * A: runner, leaseMs, ttl, attempt, nowIso, owner, jobId, gpu, sampleId, spec, maxRetries.
 * Suffixes: 1 job.queued (for a job first seen here), 2 job.started, 3 job.cancelled.
 */
const CLAIM_LUA = `${ANNOUNCE}
${NOW}
local h = redis.call('HMGET', KEYS[1], 'final', 'runner', 'lease_until', 'cancel_requested', 'job_id', 'state', 'attempts', 'stall_decision')
if h[1] then return {'final', h[1]} end
local made = tonumber(h[7] or '0') or 0
local attempt = tonumber(A[4])
local waiting = h[6] == 'retrying' or h[6] == 'stalled'
if made > attempt or (waiting and made >= attempt) or (h[6] == 'stalled' and h[8] == 'fail') then return {'stale', tostring(made)} end
local lease = tonumber(h[3] or '0') or 0
if h[2] and h[2] ~= A[1] and lease > now then return {'leased', h[2], tostring(lease - now)} end
if h[6] == 'running' and h[2] == A[1] and made == attempt and not h[4] then
  -- This runner's claim of this run again (a call retried after a lost reply): nothing new to announce.
  local again = now + tonumber(A[2])
  redis.call('HSET', KEYS[1], 'lease_until', tostring(again))
  return {'claimed', '1', tostring(again)}
end
local existed = '0'
if h[5] then existed = '1' else
  redis.call('HSET', KEYS[1], 'job_id', A[7], 'created_at', A[5])
  if A[6] ~= '' then redis.call('HSET', KEYS[1], 'owner', A[6]) end
  if A[9] ~= '' then redis.call('HSET', KEYS[1], 'sample_id', A[9]) end
end
if h[4] == '1' then
  redis.call('HSET', KEYS[1], 'final', 'cancelled', 'state', 'cancelled', 'finished_at', A[5], 'updated_at', A[5], 'lease_until', '0')
  if existed == '0' then announce(1) end
  announce(3)
  redis.call('EXPIRE', KEYS[1], A[3])
  return {'cancelled', existed}
end
if h[6] == 'running' and h[2] and h[2] ~= A[1] then return {'expired', h[2]} end
local lease_until = now + tonumber(A[2])
redis.call('HSET', KEYS[1], 'state', 'running', 'runner', A[1], 'lease_until', tostring(lease_until), 'attempts', A[4],
  'started_at', A[5], 'updated_at', A[5], 'progress', '0', 'stage', '', 'message', '')
if A[8] ~= '' then redis.call('HSET', KEYS[1], 'gpu', A[8]) else redis.call('HDEL', KEYS[1], 'gpu') end
if A[10] ~= '' and redis.call('HEXISTS', KEYS[1], 'spec') == 0 then redis.call('HSET', KEYS[1], 'spec', A[10]) end
if A[11] ~= '' then redis.call('HSET', KEYS[1], 'max_retries', A[11]) end
redis.call('HDEL', KEYS[1], 'reaper', 'reap_until', 'stall_decision')
if existed == '0' then announce(1) end
announce(2)
redis.call('EXPIRE', KEYS[1], A[3])
return {'claimed', existed, tostring(lease_until)}`;

/** KEYS[1]; ARGV: runner, leaseMs, ttl → {held, cancel, lease until, lost}. */
const RENEW_LUA = `${NOW}
local h = redis.call('HMGET', KEYS[1], 'runner', 'final', 'cancel_requested', 'state', 'job_id')
local cancel = '0'
if h[3] == '1' or h[2] == 'cancelled' then cancel = '1' end
if not h[5] then return {'0', cancel, '0', '0'} end
if h[1] ~= ARGV[1] or h[2] or h[4] ~= 'running' then return {'0', cancel, '0', '1'} end
local lease_until = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'lease_until', tostring(lease_until))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {'1', cancel, tostring(lease_until), '0'}`;

/** A: ttl, runner ('' = whoever), field, value, ... (only an existing record is updated). Suffix 1: job.progress. */
const PROGRESS_LUA = `${ANNOUNCE}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if A[2] ~= '' then
  local h = redis.call('HMGET', KEYS[1], 'runner', 'state', 'final')
  if h[1] ~= A[2] or h[2] ~= 'running' or h[3] then return 0 end
end
redis.call('HSET', KEYS[1], unpack(A, 3))
announce(1)
redis.call('EXPIRE', KEYS[1], A[1])
return 1`;

/** A: runner, state, ttl, nowIso, field, value, ... Suffix 1: what announces it. */
const RELEASE_LUA = `${ANNOUNCE}
local h = redis.call('HMGET', KEYS[1], 'runner', 'final', 'state')
if h[2] or h[1] ~= A[1] or h[3] ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'state', A[2], 'lease_until', '0', 'updated_at', A[4], unpack(A, 5))
announce(1)
redis.call('EXPIRE', KEYS[1], A[3])
return 1`;

/** A: final, ttl, nowIso, jobId, field, value, ... Suffix 1: what announces it. → 1 for the first terminal state only. */
const FINISH_LUA = `${ANNOUNCE}
if redis.call('HEXISTS', KEYS[1], 'final') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'job_id', A[4], 'final', A[1], 'state', A[1], 'finished_at', A[3], 'updated_at', A[3], 'lease_until', '0', unpack(A, 5))
redis.call('HDEL', KEYS[1], 'reaper', 'reap_until', 'stall_decision')
announce(1)
redis.call('EXPIRE', KEYS[1], A[2])
return 1`;

/** A: user ('' skips the owner check), ttl, nowIso. Suffix 1: job.cancelled (when cancelled here). */
const CANCEL_LUA = `${ANNOUNCE}
${NOW}
local h = redis.call('HMGET', KEYS[1], 'job_id', 'owner', 'final', 'state', 'lease_until')
if not h[1] then return 'not_found' end
if A[1] ~= '' and h[2] ~= A[1] then return 'forbidden' end
if h[3] then return 'finished' end
local lease = tonumber(h[5] or '0') or 0
if h[4] == 'running' and lease > now then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'updated_at', A[3])
  return 'requested'
end
redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'final', 'cancelled', 'state', 'cancelled', 'finished_at', A[3], 'updated_at', A[3], 'lease_until', '0')
redis.call('HDEL', KEYS[1], 'reaper', 'reap_until', 'stall_decision')
announce(1)
redis.call('EXPIRE', KEYS[1], A[2])
return 'cancelled'`;

/**
 * A: reaper, nowIso, reapMs, ttl, defaultMaxRetries. A running job whose lease has lapsed
 * becomes `stalled` here, once: job.stalled goes out, and this reaper holds it for reapMs.
 * A stalled job whose reaper let its hold lapse is taken over (no second job.stalled).
 */
const STALL_LUA = `${ANNOUNCE}
${NOW}
local h = redis.call('HMGET', KEYS[1], 'job_id', 'final', 'state', 'lease_until', 'runner', 'attempts', 'max_retries', 'reaper', 'reap_until', 'stall_decision', 'spec', 'cancel_requested', 'error')
if not h[1] or h[2] then return {'idle'} end
local attempts = tonumber(h[6] or '0') or 0
local reap_until = now + tonumber(A[3])
if h[3] == 'running' then
  local lease = tonumber(h[4] or '0') or 0
  if lease > now then return {'alive', tostring(lease)} end
  if h[12] == '1' then
    redis.call('HSET', KEYS[1], 'final', 'cancelled', 'state', 'cancelled', 'finished_at', A[2], 'updated_at', A[2], 'lease_until', '0')
    emit(suffix('job.cancelled', '{"job_id":' .. json_string(h[1]) .. '}', A[2]))
    redis.call('EXPIRE', KEYS[1], A[4])
    return {'cancelled'}
  end
  local max_retries = tonumber(h[7] or A[5]) or 0
  local decision = 'retry'
  if attempts > max_retries or not h[11] then decision = 'fail' end
  local runner = h[5] or ''
  local err = 'runner ' .. runner .. ' stopped renewing the lease of run ' .. attempts .. ' (it died or hangs)'
  redis.call('HSET', KEYS[1], 'state', 'stalled', 'lease_until', '0', 'reaper', A[1], 'reap_until', tostring(reap_until),
    'stall_decision', decision, 'error', err, 'class', 'stalled', 'updated_at', A[2])
  redis.call('HINCRBY', KEYS[1], 'stalls', 1)
  emit(suffix('job.stalled', '{"job_id":' .. json_string(h[1]) .. ',"attempt":' .. string.format('%d', attempts)
    .. ',"runner":' .. json_string(runner) .. ',"error":' .. json_string(err) .. ',"will_retry":' .. tostring(decision == 'retry')
    .. ',"max_retries":' .. string.format('%d', max_retries) .. '}', A[2]))
  redis.call('EXPIRE', KEYS[1], A[4])
  return {'stalled', decision, tostring(attempts), runner, err, h[11] or '', '0', tostring(reap_until)}
end
if h[3] == 'stalled' and h[8] then
  local held = tonumber(h[9] or '0') or 0
  if held > now and h[8] ~= A[1] then return {'reaping', h[8], tostring(held)} end
  redis.call('HSET', KEYS[1], 'reaper', A[1], 'reap_until', tostring(reap_until))
  return {'stalled', h[10] or 'fail', tostring(attempts), h[5] or '', h[13] or '', h[11] or '', '1', tostring(reap_until)}
end
return {'idle'}`;

/** KEYS[1]; ARGV: reaper. The stalled job was re-queued: it is free for its next run. */
const SETTLE_LUA = `local h = redis.call('HMGET', KEYS[1], 'state', 'reaper')
if h[1] == 'stalled' and h[2] == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'reaper', 'reap_until')
  return 1
end
return 0`;

/** KEYS[1] the lease index; ARGV: limit → member, score, ... due by the Redis clock. */
const DUE_LUA = `${NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))`;

/** KEYS[1] the lease index; ARGV: member, expected score, new score ('' = drop). */
const REINDEX_LUA = `local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not cur or tonumber(cur) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
return 1`;

type Arg = string | number;
interface Scripts {
  syJobCreate(...args: Arg[]): Promise<number>;
  syJobClaim(...args: Arg[]): Promise<string[]>;
  syJobRenew(key: string, ...args: Arg[]): Promise<string[]>;
  syJobProgress(...args: Arg[]): Promise<number>;
  syJobRelease(...args: Arg[]): Promise<number>;
  syJobFinish(...args: Arg[]): Promise<number>;
  syJobCancel(...args: Arg[]): Promise<string>;
  syJobStall(...args: Arg[]): Promise<string[]>;
  syJobSettle(key: string, ...args: Arg[]): Promise<number>;
  syJobDue(key: string, ...args: Arg[]): Promise<string[]>;
  syJobReindex(key: string, ...args: Arg[]): Promise<number>;
}

/** Each script with how many of its arguments are keys. */
const SCRIPTS: Record<keyof Scripts, { lua: string; keys: number }> = {
  syJobCreate: { lua: CREATE_LUA, keys: 3 },
  syJobClaim: { lua: CLAIM_LUA, keys: 3 },
  syJobRenew: { lua: RENEW_LUA, keys: 1 },
  syJobProgress: { lua: PROGRESS_LUA, keys: 3 },
  syJobRelease: { lua: RELEASE_LUA, keys: 3 },
  syJobFinish: { lua: FINISH_LUA, keys: 3 },
  syJobCancel: { lua: CANCEL_LUA, keys: 3 },
  syJobStall: { lua: STALL_LUA, keys: 3 },
  syJobSettle: { lua: SETTLE_LUA, keys: 1 },
  syJobDue: { lua: DUE_LUA, keys: 1 },
  syJobReindex: { lua: REINDEX_LUA, keys: 1 },
};

function flat(fields: Record<string, string>): string[] {
  return Object.entries(fields).flat();
}

export interface RedisJobStoreOptions {
  /** JOB_STATUS_TTL_S. */
  ttlS: number;
  /**
   * The cluster broker: transitions given an Announcement publish it on `job:<id>` in the
   * same atomic step. Without one, announcements are not published (and snapshots have no seq).
   */
  broker?: RedisBroker;
  /** The lease index (`leaseIndexKey(KAFKA_JOBS_TOPIC)`). @default DEFAULT_LEASE_INDEX_KEY */
  leaseIndexKey?: string;
}

/**
 * Job status in the hash `job:<id>` (TTL JOB_STATUS_TTL_S, renewed on every change). Works
 * on a single Redis and on a Redis Cluster: each transition script touches the job hash and
 * its channel's keys, which share a hash slot (`job:<id>` and `sy:{job:<id>}:*`); the lease
 * index is one more key, updated by separate commands. Shares the command connection it is
 * given; closing the store does not close it.
 */
export class RedisJobStore implements JobStore {
  readonly kind = 'redis';
  readonly #client: Client;
  readonly #s: Scripts;
  readonly #ttlS: number;
  readonly #broker: RedisBroker | undefined;
  readonly #index: string;
  /** The lease index score this store last wrote per job it claimed, to drop the entry when the job is let go. */
  readonly #indexed = new Map<string, number>();

  constructor(client: Client, options: RedisJobStoreOptions) {
    this.#client = client;
    this.#ttlS = options.ttlS;
    this.#broker = options.broker;
    this.#index = options.leaseIndexKey ?? DEFAULT_LEASE_INDEX_KEY;
    const withScripts = client as unknown as Partial<Scripts>;
    for (const [name, { lua, keys }] of Object.entries(SCRIPTS)) {
      if (typeof withScripts[name as keyof Scripts] !== 'function') client.defineCommand(name, { numberOfKeys: keys, lua });
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

  /** The keys and the announcement head of a transition script (see ANNOUNCE). */
  #head(jobId: string, announcements: readonly Announcement[]): Arg[] {
    const key = jobKey(jobId);
    // The channel `job:<id>` is named like the hash `job:<id>`: its keys share the hash's slot.
    const target: PublishTarget | undefined = this.#broker?.publishTarget(jobChannelOf(jobId));
    if (target === undefined) {
      if (announcements.length > 0) throw new Error('RedisJobStore: announcing a transition needs the broker (options.broker)');
      return [key, key, key, 0, '', '', 0, 0, '', 0, 0];
    }
    const now = Date.now();
    const suffixes = announcements.map((a) => eventSuffix(a.event, announcementJson(jobId, a), now));
    return [key, target.meta, target.hist, suffixes.length, target.prefix, target.newEpoch(), target.historySize, target.ttlS, target.pubsub, now, target.sharded ? 1 : 0, ...suffixes];
  }

  async create(job: JobSpec, owner: string, announce?: Announcement): Promise<boolean> {
    const now = new Date().toISOString();
    const fields: Record<string, string> = { job_id: job.job_id, owner, state: 'queued', attempts: '0', created_at: now, updated_at: now, spec: JSON.stringify(job) };
    if (job.sample_id !== undefined) fields['sample_id'] = job.sample_id;
    const head = this.#head(job.job_id, announce === undefined ? [] : [announce]);
    return this.#call('create a job', async () => (await this.#s.syJobCreate(...head, this.#ttlS, ...flat(fields))) === 1);
  }

  recent(limit: number): Promise<JobRecord[]> {
    return this.#call('list jobs', () => recentFromRedis(this.#client, limit));
  }

  get(jobId: string): Promise<JobRecord | undefined> {
    return this.#call('read a job', async () => recordFromHash(await this.#client.hgetall(jobKey(jobId))));
  }

  snapshot(jobId: string): Promise<JobSnapshot | undefined> {
    return this.#call('read a job', async () => snapshotFromHash(await this.#client.hgetall(jobKey(jobId))));
  }

  async claim(jobId: string, r: ClaimRequest): Promise<ClaimOutcome> {
    const head = this.#head(jobId, claimAnnouncements(r));
    return this.#call('claim a job', async () => {
      const leaseMs = Math.round(r.leaseMs);
      // The index first: a job that runs is always found by the reapers (a claim that does
      // not succeed leaves an entry that the next sweep drops).
      await this.#client.zadd(this.#index, Date.now() + leaseMs, jobId);
      const owner = r.job.owner;
      const out = await this.#s.syJobClaim(
        ...head,
        r.runner,
        leaseMs,
        this.#ttlS,
        r.attempt,
        new Date().toISOString(),
        owner ?? '',
        jobId,
        r.gpu ?? '',
        r.job.sample_id ?? '',
        JSON.stringify(r.job),
        r.maxRetries ?? '',
      );
      const [kind, a, b] = out.map(String);
      if (kind === 'final' && isFinalState(a)) return { kind: 'final', final: a };
      if (kind === 'leased') return { kind: 'leased', runner: a ?? '', remainingMs: Number(b) };
      if (kind === 'cancelled') return { kind: 'cancelled', existed: a === '1' };
      if (kind === 'stale') return { kind: 'stale', attempts: Number(a) };
      if (kind === 'expired') return { kind: 'expired', runner: a ?? '' };
      await this.#client.zadd(this.#index, Number(b), jobId);
      this.#indexed.set(jobId, Number(b));
      return { kind: 'claimed', existed: a === '1' };
    });
  }

  renew(jobId: string, runner: string, leaseMs: number): Promise<RenewOutcome> {
    return this.#call('renew a lease', async () => {
      const [held, cancel, until, lost] = (await this.#s.syJobRenew(jobKey(jobId), runner, Math.round(leaseMs), this.#ttlS)).map(String);
      if (held === '1') {
        await this.#client.zadd(this.#index, Number(until), jobId);
        this.#indexed.set(jobId, Number(until));
      }
      return { held: held === '1', cancelRequested: cancel === '1', ...(lost === '1' && { lost: true as const }) };
    });
  }

  async progress(jobId: string, update: ProgressUpdate, options: { runner?: string; announce?: Announcement } = {}): Promise<void> {
    const fields = { ...progressToHash(update), updated_at: new Date().toISOString() };
    const head = this.#head(jobId, options.announce === undefined ? [] : [options.announce]);
    return this.#call('record progress', async () => {
      await this.#s.syJobProgress(...head, this.#ttlS, options.runner ?? '', ...flat(fields));
    });
  }

  async release(jobId: string, runner: string, state: 'queued' | 'retrying', fields?: FinishFields, announce?: Announcement): Promise<void> {
    const head = this.#head(jobId, announce === undefined ? [] : [announce]);
    return this.#call('release a job', async () => {
      await this.#s.syJobRelease(
        ...head,
        runner,
        state,
        this.#ttlS,
        new Date().toISOString(),
        ...flat(finishFieldsToHash(fields)),
      );
      await this.#unindex(jobId);
    });
  }

  /** A job this store's runner let go (finished, released) leaves the lease index at once, if nobody moved its entry. */
  async #unindex(jobId: string): Promise<void> {
    const score = this.#indexed.get(jobId);
    if (score === undefined) return;
    this.#indexed.delete(jobId);
    await this.#s.syJobReindex(this.#index, jobId, score, '');
  }

  async finish(jobId: string, final: FinalState, fields?: FinishFields, announce?: Announcement): Promise<boolean> {
    const head = this.#head(jobId, announce === undefined ? [] : [announce]);
    return this.#call('finish a job', async () => {
      const won = await this.#s.syJobFinish(
        ...head,
        final,
        this.#ttlS,
        new Date().toISOString(),
        jobId,
        ...flat(finishFieldsToHash(fields)),
      );
      await this.#unindex(jobId);
      return won === 1;
    });
  }

  async cancel(jobId: string, byUser: string | undefined, announce?: Announcement): Promise<CancelOutcome> {
    const head = this.#head(jobId, announce === undefined ? [] : [announce]);
    return this.#call('cancel a job', async () => (await this.#s.syJobCancel(...head, byUser ?? '', this.#ttlS, new Date().toISOString())) as CancelOutcome);
  }

  async stall(jobId: string, reaper: string, options: StallOptions): Promise<StallOutcome> {
    const head = this.#head(jobId, []);
    return this.#call('stall a job', async () => {
      const out = (await this.#s.syJobStall(...head, reaper, new Date().toISOString(), Math.round(options.reapMs), this.#ttlS, options.defaultMaxRetries)).map(String);
      const kind = out[0];
      if (kind === 'alive') return { kind, leaseUntil: Number(out[1]) };
      if (kind === 'reaping') return { kind, reaper: out[1] ?? '', reapUntil: Number(out[2]) };
      if (kind === 'cancelled') return { kind };
      if (kind !== 'stalled') return { kind: 'idle' };
      const [, decision, attempts, runner, error, spec, takeover, reapUntil] = out;
      const result: StallOutcome = {
        kind,
        decision: decision === 'retry' ? 'retry' : 'fail',
        attempts: Number(attempts),
        runner: runner ?? '',
        error: error ?? '',
        job: parseSpec(spec),
        takeover: takeover === '1',
        reapUntil: Number(reapUntil),
      };
      // A reaper that dies before settling is noticed when its hold lapses.
      await this.#client.zadd(this.#index, result.reapUntil, jobId);
      return result;
    });
  }

  settleStall(jobId: string, reaper: string): Promise<void> {
    return this.#call('settle a stalled job', async () => {
      await this.#s.syJobSettle(jobKey(jobId), reaper);
    });
  }

  dueLeases(limit: number): Promise<DueLease[]> {
    return this.#call('read the lease index', async () => {
      const flatList = (await this.#s.syJobDue(this.#index, limit)).map(String);
      const due: DueLease[] = [];
      for (let i = 0; i + 1 < flatList.length; i += 2) due.push({ jobId: flatList[i]!, score: Number(flatList[i + 1]) });
      return due;
    });
  }

  reindex(entry: DueLease, score: number | undefined): Promise<void> {
    return this.#call('update the lease index', async () => {
      await this.#s.syJobReindex(this.#index, entry.jobId, entry.score, score ?? '');
    });
  }

  /** The connection belongs to whoever gave it. */
  async close(): Promise<void> {}
}

/**
 * The events a claim announces when asked to: job.queued (a job first seen here), then
 * job.started (claimed) or job.cancelled (a cancel was waiting for it).
 */
export function claimAnnouncements(r: ClaimRequest): Announcement[] {
  if (r.announce !== true) return [];
  return [
    { event: JobEvent.Queued, data: { owner: r.job.owner, attempt: r.attempt - 1 } },
    { event: JobEvent.Started, data: { attempt: r.attempt, runner: r.runner, gpu: r.gpu ?? null } },
    { event: JobEvent.Cancelled, data: {} },
  ];
}

/** The job JSON a status records (`spec`), if it is one. */
export function parseSpec(text: string | undefined): JobSpec | undefined {
  if (text === undefined || text === '') return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as JobSpec).job_id === 'string' ? (value as JobSpec) : undefined;
  } catch {
    return undefined;
  }
}
