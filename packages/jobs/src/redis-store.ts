import { PUBLISH_FUNCTION_LUA, defineLua, luaSource, type PublishTarget, type RedisBroker } from '@switchyard/broker';
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

const HEAD = ['announceCount', 'prefix', 'newEpoch', 'historySize', 'historyTtlS', 'pubsub', 'nowMs', 'sharded'] as const;
const JOB_KEYS = ['jobKey', 'meta', 'hist'] as const;
type Head = { keys: Record<(typeof JOB_KEYS)[number], string>; head: Record<(typeof HEAD)[number], string | number>; suffixes: string[] };

const file = (name: string): string => luaSource(import.meta.url, `./lua/${name}`);
/** A transition script: it may publish its announcements (see lua/announce.lua). */
const announcing = <A extends string>(name: string, lua: string, own: readonly A[], clock = false) =>
  defineLua({
    name,
    lua: [PUBLISH_FUNCTION_LUA, file('announce.lua'), clock ? file('now.lua') : '', file(lua)].join('\n'),
    keys: JOB_KEYS,
    args: [...HEAD, ...own],
  });

const createScript = announcing('syJobCreate', 'create.lua', ['ttl']);
const claimScript = announcing(
  'syJobClaim',
  'claim.lua',
  ['runner', 'leaseMs', 'ttl', 'attempt', 'nowIso', 'owner', 'jobId', 'gpu', 'sampleId', 'spec', 'maxRetries'],
  true,
);
const progressScript = announcing('syJobProgress', 'progress.lua', ['ttl', 'runner']);
const releaseScript = announcing('syJobRelease', 'release.lua', ['runner', 'state', 'ttl', 'nowIso']);
const finishScript = announcing('syJobFinish', 'finish.lua', ['final', 'ttl', 'nowIso', 'jobId']);
const cancelScript = announcing('syJobCancel', 'cancel.lua', ['user', 'ttl', 'nowIso'], true);
const stallScript = announcing('syJobStall', 'stall.lua', ['reaper', 'nowIso', 'reapMs', 'ttl', 'defaultMaxRetries'], true);
const renewScript = defineLua({ name: 'syJobRenew', lua: `${file('now.lua')}\n${file('renew.lua')}`, keys: ['jobKey'], args: ['runner', 'leaseMs', 'ttl'] });
const settleScript = defineLua({ name: 'syJobSettle', lua: file('settle.lua'), keys: ['jobKey'], args: ['reaper'] });
const dueScript = defineLua({ name: 'syJobDue', lua: `${file('now.lua')}\n${file('due.lua')}`, keys: ['leaseIndex'], args: ['limit'] });
const reindexScript = defineLua({ name: 'syJobReindex', lua: file('reindex.lua'), keys: ['leaseIndex'], args: ['member', 'expectedScore', 'newScore'] });

const SCRIPTS = [createScript, claimScript, progressScript, releaseScript, finishScript, cancelScript, stallScript, renewScript, settleScript, dueScript, reindexScript];

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
    const defined = client as unknown as Record<string, unknown>;
    for (const script of SCRIPTS) if (typeof defined[script.name] !== 'function') script.define(client);
  }

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new JobError('unavailable', `job store (Redis) failed to ${what}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The keys, the announcement head and the prepared events of a transition script (lua/announce.lua). */
  #head(jobId: string, announcements: readonly Announcement[]): Head {
    const jobKey_ = jobKey(jobId);
    // The channel `job:<id>` is named like the hash `job:<id>`: its keys share the hash's slot.
    const target: PublishTarget | undefined = this.#broker?.publishTarget(jobChannelOf(jobId));
    if (target === undefined) {
      if (announcements.length > 0) throw new Error('RedisJobStore: announcing a transition needs the broker (options.broker)');
      const head = { announceCount: 0, prefix: '', newEpoch: '', historySize: 0, historyTtlS: 0, pubsub: '', nowMs: 0, sharded: 0 };
      return { keys: { jobKey: jobKey_, meta: jobKey_, hist: jobKey_ }, head, suffixes: [] };
    }
    const now = Date.now();
    const suffixes = announcements.map((a) => eventSuffix(a.event, announcementJson(jobId, a), now));
    return {
      keys: { jobKey: jobKey_, meta: target.meta, hist: target.hist },
      head: {
        announceCount: suffixes.length,
        prefix: target.prefix,
        newEpoch: target.newEpoch(),
        historySize: target.historySize,
        historyTtlS: target.ttlS,
        pubsub: target.pubsub,
        nowMs: now,
        sharded: target.sharded ? 1 : 0,
      },
      suffixes,
    };
  }

  async create(job: JobSpec, owner: string, announce?: Announcement): Promise<boolean> {
    const now = new Date().toISOString();
    const fields: Record<string, string> = { job_id: job.job_id, owner, state: 'queued', attempts: '0', created_at: now, updated_at: now, spec: JSON.stringify(job) };
    if (job.sample_id !== undefined) fields['sample_id'] = job.sample_id;
    const head = this.#head(job.job_id, announce === undefined ? [] : [announce]);
    return this.#call('create a job', async () => {
      const created = await createScript.call<number>(this.#client, { ...head.keys, ...head.head, ttl: this.#ttlS }, [...flat(fields), ...head.suffixes]);
      return created === 1;
    });
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
      const params = {
        ...head.keys,
        ...head.head,
        runner: r.runner,
        leaseMs,
        ttl: this.#ttlS,
        attempt: r.attempt,
        nowIso: new Date().toISOString(),
        owner: owner ?? '',
        jobId,
        gpu: r.gpu ?? '',
        sampleId: r.job.sample_id ?? '',
        spec: JSON.stringify(r.job),
        maxRetries: r.maxRetries ?? '',
      };
      const out = await claimScript.call<unknown[]>(this.#client, params, head.suffixes);
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
      const [held, cancel, until, lost] = (
        await renewScript.call<unknown[]>(this.#client, { jobKey: jobKey(jobId), runner, leaseMs: Math.round(leaseMs), ttl: this.#ttlS })
      ).map(String);
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
      await progressScript.call(this.#client, { ...head.keys, ...head.head, ttl: this.#ttlS, runner: options.runner ?? '' }, [...flat(fields), ...head.suffixes]);
    });
  }

  async release(jobId: string, runner: string, state: 'queued' | 'retrying', fields?: FinishFields, announce?: Announcement): Promise<void> {
    const head = this.#head(jobId, announce === undefined ? [] : [announce]);
    return this.#call('release a job', async () => {
      const params = { ...head.keys, ...head.head, runner, state, ttl: this.#ttlS, nowIso: new Date().toISOString() };
      await releaseScript.call(this.#client, params, [...flat(finishFieldsToHash(fields)), ...head.suffixes]);
      await this.#unindex(jobId);
    });
  }

  /** A job this store's runner let go (finished, released) leaves the lease index at once, if nobody moved its entry. */
  async #unindex(jobId: string): Promise<void> {
    const score = this.#indexed.get(jobId);
    if (score === undefined) return;
    this.#indexed.delete(jobId);
    await reindexScript.call(this.#client, { leaseIndex: this.#index, member: jobId, expectedScore: score, newScore: '' });
  }

  async finish(jobId: string, final: FinalState, fields?: FinishFields, announce?: Announcement): Promise<boolean> {
    const head = this.#head(jobId, announce === undefined ? [] : [announce]);
    return this.#call('finish a job', async () => {
      const params = { ...head.keys, ...head.head, final, ttl: this.#ttlS, nowIso: new Date().toISOString(), jobId };
      const won = await finishScript.call<number>(this.#client, params, [...flat(finishFieldsToHash(fields)), ...head.suffixes]);
      await this.#unindex(jobId);
      return won === 1;
    });
  }

  async cancel(jobId: string, byUser: string | undefined, announce?: Announcement): Promise<CancelOutcome> {
    const head = this.#head(jobId, announce === undefined ? [] : [announce]);
    return this.#call('cancel a job', () =>
      cancelScript.call<CancelOutcome>(this.#client, { ...head.keys, ...head.head, user: byUser ?? '', ttl: this.#ttlS, nowIso: new Date().toISOString() }, head.suffixes),
    );
  }

  async stall(jobId: string, reaper: string, options: StallOptions): Promise<StallOutcome> {
    const head = this.#head(jobId, []);
    return this.#call('stall a job', async () => {
      const params = {
        ...head.keys,
        ...head.head,
        reaper,
        nowIso: new Date().toISOString(),
        reapMs: Math.round(options.reapMs),
        ttl: this.#ttlS,
        defaultMaxRetries: options.defaultMaxRetries,
      };
      const out = (await stallScript.call<unknown[]>(this.#client, params, head.suffixes)).map(String);
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
      await settleScript.call(this.#client, { jobKey: jobKey(jobId), reaper });
    });
  }

  dueLeases(limit: number): Promise<DueLease[]> {
    return this.#call('read the lease index', async () => {
      const flatList = (await dueScript.call<unknown[]>(this.#client, { leaseIndex: this.#index, limit })).map(String);
      const due: DueLease[] = [];
      for (let i = 0; i + 1 < flatList.length; i += 2) due.push({ jobId: flatList[i]!, score: Number(flatList[i + 1]) });
      return due;
    });
  }

  reindex(entry: DueLease, score: number | undefined): Promise<void> {
    return this.#call('update the lease index', async () => {
      await reindexScript.call(this.#client, { leaseIndex: this.#index, member: entry.jobId, expectedScore: entry.score, newScore: score ?? '' });
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
