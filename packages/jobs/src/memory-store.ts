import { newestFirst } from './recent.js';
import type { MemoryBroker } from '@switchyard/broker';
import { JobEvent, type FinalState, type JobSpec } from './job.js';
import { jobChannelOf } from './events.js';
import { claimAnnouncements, parseSpec } from './redis-store.js';
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
  type RawRecord,
  type RenewOutcome,
  type StallOptions,
  type StallOutcome,
} from './store.js';

/** How often expired records are dropped. */
const SWEEP_INTERVAL_MS = 60_000;

interface Entry {
  raw: RawRecord;
  expiresAt: number;
}

export interface MemoryJobStoreOptions {
  /** JOB_STATUS_TTL_S. */
  ttlS: number;
  /** The node's broker: transitions given an Announcement publish it on `job:<id>` in the same step. */
  broker?: MemoryBroker;
}

/**
 * The status store of a node that runs alone (`switchyard dev`, an edge without Redis): the
 * same transitions as the Redis store, in this process. Each method does its work without
 * awaiting in between, so it is as atomic here as a Lua script is in Redis.
 */
export class MemoryJobStore implements JobStore {
  readonly kind = 'memory';
  readonly #ttlMs: number;
  readonly #broker: MemoryBroker | undefined;
  readonly #entries = new Map<string, Entry>();
  /** The lease index: job id → when its lease (or reaping) lapses. */
  readonly #index = new Map<string, number>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MemoryJobStoreOptions) {
    this.#ttlMs = options.ttlS * 1000;
    this.#broker = options.broker;
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(id);
  }

  #entry(jobId: string): Entry | undefined {
    const e = this.#entries.get(jobId);
    if (e === undefined) return undefined;
    if (e.expiresAt <= Date.now()) {
      this.#entries.delete(jobId);
      return undefined;
    }
    return e;
  }

  #write(jobId: string, fields: RawRecord): Entry {
    let e = this.#entry(jobId);
    if (e === undefined) {
      e = { raw: {}, expiresAt: 0 };
      this.#entries.set(jobId, e);
    }
    Object.assign(e.raw, fields);
    e.expiresAt = Date.now() + this.#ttlMs;
    return e;
  }

  #del(jobId: string, ...fields: string[]): void {
    const raw = this.#entry(jobId)?.raw;
    if (raw !== undefined) for (const f of fields) delete raw[f];
  }

  /** Checked before a transition changes anything, like the Redis store. */
  #canAnnounce(announcements: readonly (Announcement | undefined)[]): void {
    if (this.#broker === undefined && announcements.some((a) => a !== undefined)) {
      throw new Error('MemoryJobStore: announcing a transition needs the broker (options.broker)');
    }
  }

  /** Publishes on `job:<id>` and records the seq and epoch in the status. */
  #announce(jobId: string, a: Announcement | undefined): void {
    const broker = this.#broker;
    if (a === undefined || broker === undefined) return;
    const channel = jobChannelOf(jobId);
    const published = broker.publishSync({ channel, event: a.event, dataJson: announcementJson(jobId, a) });
    const { epoch } = broker.positionSync(channel);
    this.#write(jobId, { seq: String(published.seq), epoch });
  }

  async create(job: JobSpec, owner: string, announce?: Announcement): Promise<boolean> {
    this.#canAnnounce([announce]);
    if (this.#entry(job.job_id) !== undefined) return false;
    const now = new Date().toISOString();
    this.#write(job.job_id, {
      job_id: job.job_id,
      owner,
      state: 'queued',
      attempts: '0',
      created_at: now,
      updated_at: now,
      spec: JSON.stringify(job),
      ...(job.sample_id !== undefined && { sample_id: job.sample_id }),
    });
    this.#announce(job.job_id, announce);
    return true;
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const e = this.#entry(jobId);
    return e === undefined ? undefined : recordFromHash(e.raw);
  }

  async recent(limit: number): Promise<JobRecord[]> {
    const now = Date.now();
    const records: JobRecord[] = [];
    for (const e of this.#entries.values()) {
      const r = e.expiresAt > now ? recordFromHash(e.raw) : undefined;
      if (r !== undefined) records.push(r);
    }
    return newestFirst(records, limit);
  }

  async snapshot(jobId: string): Promise<JobSnapshot | undefined> {
    const e = this.#entry(jobId);
    return e === undefined ? undefined : snapshotFromHash(e.raw);
  }

  async claim(jobId: string, r: ClaimRequest): Promise<ClaimOutcome> {
    const [queued, started, cancelled] = claimAnnouncements(r);
    this.#canAnnounce([queued]);
    const now = Date.now();
    const iso = new Date(now).toISOString();
    this.#index.set(jobId, now + r.leaseMs);
    const raw = this.#entry(jobId)?.raw ?? {};
    if (isFinalState(raw['final'])) return { kind: 'final', final: raw['final'] };
    const made = Number(raw['attempts'] ?? 0) || 0;
    const waiting = raw['state'] === 'retrying' || raw['state'] === 'stalled';
    if (made > r.attempt || (waiting && made >= r.attempt) || (raw['state'] === 'stalled' && raw['stall_decision'] === 'fail')) {
      return { kind: 'stale', attempts: made };
    }
    const lease = Number(raw['lease_until'] ?? 0);
    if (raw['runner'] !== undefined && raw['runner'] !== r.runner && lease > now) {
      return { kind: 'leased', runner: raw['runner'], remainingMs: lease - now };
    }
    if (raw['state'] === 'running' && raw['runner'] === r.runner && made === r.attempt && raw['cancel_requested'] !== '1') {
      // This runner's claim of this run again (a retried call): nothing new to announce.
      this.#write(jobId, { lease_until: String(now + r.leaseMs) });
      this.#index.set(jobId, now + r.leaseMs);
      return { kind: 'claimed', existed: true };
    }
    const existed = raw['job_id'] !== undefined;
    if (!existed) {
      this.#write(jobId, {
        job_id: jobId,
        created_at: iso,
        ...(r.job.owner !== undefined && { owner: r.job.owner }),
        ...(r.job.sample_id !== undefined && { sample_id: r.job.sample_id }),
      });
    }
    if (raw['cancel_requested'] === '1') {
      this.#write(jobId, { final: 'cancelled', state: 'cancelled', finished_at: iso, updated_at: iso, lease_until: '0' });
      if (!existed) this.#announce(jobId, queued);
      this.#announce(jobId, cancelled);
      return { kind: 'cancelled', existed };
    }
    if (raw['state'] === 'running' && raw['runner'] !== undefined && raw['runner'] !== r.runner) return { kind: 'expired', runner: raw['runner'] };
    const leaseUntil = now + r.leaseMs;
    const e = this.#write(jobId, {
      state: 'running',
      runner: r.runner,
      lease_until: String(leaseUntil),
      attempts: String(r.attempt),
      started_at: iso,
      updated_at: iso,
      progress: '0',
      stage: '',
      message: '',
      ...(r.maxRetries !== undefined && { max_retries: String(r.maxRetries) }),
    });
    if (r.gpu !== undefined) e.raw['gpu'] = r.gpu;
    else delete e.raw['gpu'];
    e.raw['spec'] ??= JSON.stringify(r.job);
    this.#del(jobId, 'reaper', 'reap_until', 'stall_decision');
    if (!existed) this.#announce(jobId, queued);
    this.#announce(jobId, started);
    this.#index.set(jobId, leaseUntil);
    return { kind: 'claimed', existed };
  }

  async renew(jobId: string, runner: string, leaseMs: number): Promise<RenewOutcome> {
    const raw = this.#entry(jobId)?.raw;
    if (raw === undefined) return { held: false, cancelRequested: false };
    const cancelRequested = raw['cancel_requested'] === '1' || raw['final'] === 'cancelled';
    if (raw['runner'] !== runner || raw['final'] !== undefined || raw['state'] !== 'running') return { held: false, cancelRequested, lost: true };
    const leaseUntil = Date.now() + leaseMs;
    this.#write(jobId, { lease_until: String(leaseUntil) });
    this.#index.set(jobId, leaseUntil);
    return { held: true, cancelRequested };
  }

  async progress(jobId: string, update: ProgressUpdate, options: { runner?: string; announce?: Announcement } = {}): Promise<void> {
    this.#canAnnounce([options.announce]);
    const raw = this.#entry(jobId)?.raw;
    if (raw === undefined) return;
    if (options.runner !== undefined && (raw['runner'] !== options.runner || raw['state'] !== 'running' || raw['final'] !== undefined)) return;
    this.#write(jobId, { ...progressToHash(update), updated_at: new Date().toISOString() });
    this.#announce(jobId, options.announce);
  }

  async release(jobId: string, runner: string, state: 'queued' | 'retrying', fields?: FinishFields, announce?: Announcement): Promise<void> {
    this.#canAnnounce([announce]);
    const raw = this.#entry(jobId)?.raw;
    if (raw === undefined || raw['final'] !== undefined || raw['runner'] !== runner || raw['state'] !== 'running') return;
    this.#write(jobId, { state, lease_until: '0', updated_at: new Date().toISOString(), ...finishFieldsToHash(fields) });
    this.#announce(jobId, announce);
    this.#index.delete(jobId);
  }

  async finish(jobId: string, final: FinalState, fields?: FinishFields, announce?: Announcement): Promise<boolean> {
    this.#canAnnounce([announce]);
    const raw = this.#entry(jobId)?.raw;
    if (raw !== undefined && raw['final'] !== undefined) return false;
    const iso = new Date().toISOString();
    this.#write(jobId, { job_id: jobId, final, state: final, finished_at: iso, updated_at: iso, lease_until: '0', ...finishFieldsToHash(fields) });
    this.#del(jobId, 'reaper', 'reap_until', 'stall_decision');
    this.#announce(jobId, announce);
    this.#index.delete(jobId);
    return true;
  }

  async cancel(jobId: string, byUser: string | undefined, announce?: Announcement): Promise<CancelOutcome> {
    this.#canAnnounce([announce]);
    const raw = this.#entry(jobId)?.raw;
    if (raw === undefined || raw['job_id'] === undefined) return 'not_found';
    if (byUser !== undefined && raw['owner'] !== byUser) return 'forbidden';
    if (raw['final'] !== undefined) return 'finished';
    const iso = new Date().toISOString();
    if (raw['state'] === 'running' && Number(raw['lease_until'] ?? 0) > Date.now()) {
      this.#write(jobId, { cancel_requested: '1', updated_at: iso });
      return 'requested';
    }
    this.#write(jobId, { cancel_requested: '1', final: 'cancelled', state: 'cancelled', finished_at: iso, updated_at: iso, lease_until: '0' });
    this.#del(jobId, 'reaper', 'reap_until', 'stall_decision');
    this.#announce(jobId, announce);
    return 'cancelled';
  }

  async stall(jobId: string, reaper: string, options: StallOptions): Promise<StallOutcome> {
    const raw = this.#entry(jobId)?.raw;
    if (raw === undefined || raw['final'] !== undefined) return { kind: 'idle' };
    const now = Date.now();
    const iso = new Date(now).toISOString();
    const attempts = Number(raw['attempts'] ?? 0) || 0;
    const reapUntil = now + options.reapMs;
    const runner = raw['runner'] ?? '';
    if (raw['state'] === 'running') {
      const lease = Number(raw['lease_until'] ?? 0);
      if (lease > now) return { kind: 'alive', leaseUntil: lease };
      if (raw['cancel_requested'] === '1') {
        this.#write(jobId, { final: 'cancelled', state: 'cancelled', finished_at: iso, updated_at: iso, lease_until: '0' });
        this.#announce(jobId, { event: JobEvent.Cancelled });
        return { kind: 'cancelled' };
      }
      const maxRetries = raw['max_retries'] !== undefined ? Number(raw['max_retries']) : options.defaultMaxRetries;
      const decision = attempts > maxRetries || raw['spec'] === undefined ? 'fail' : 'retry';
      const error = `runner ${runner} stopped renewing the lease of run ${attempts} (it died or hangs)`;
      this.#write(jobId, {
        state: 'stalled',
        lease_until: '0',
        reaper,
        reap_until: String(reapUntil),
        stall_decision: decision,
        error,
        class: 'stalled',
        updated_at: iso,
        stalls: String((Number(raw['stalls'] ?? 0) || 0) + 1),
      });
      this.#announce(jobId, { event: JobEvent.Stalled, data: { attempt: attempts, runner, error, will_retry: decision === 'retry', max_retries: maxRetries } });
      this.#index.set(jobId, reapUntil);
      return { kind: 'stalled', decision, attempts, runner, error, job: parseSpec(raw['spec']), takeover: false, reapUntil };
    }
    if (raw['state'] === 'stalled' && raw['reaper'] !== undefined) {
      const held = Number(raw['reap_until'] ?? 0);
      if (held > now && raw['reaper'] !== reaper) return { kind: 'reaping', reaper: raw['reaper'], reapUntil: held };
      this.#write(jobId, { reaper, reap_until: String(reapUntil) });
      this.#index.set(jobId, reapUntil);
      const decision = raw['stall_decision'] === 'retry' ? 'retry' : 'fail';
      return { kind: 'stalled', decision, attempts, runner, error: raw['error'] ?? '', job: parseSpec(raw['spec']), takeover: true, reapUntil };
    }
    return { kind: 'idle' };
  }

  async settleStall(jobId: string, reaper: string): Promise<void> {
    const raw = this.#entry(jobId)?.raw;
    if (raw?.['state'] === 'stalled' && raw['reaper'] === reaper) this.#del(jobId, 'reaper', 'reap_until');
  }

  async dueLeases(limit: number): Promise<DueLease[]> {
    const now = Date.now();
    return [...this.#index]
      .filter(([, score]) => score <= now)
      .sort((a, b) => a[1] - b[1])
      .slice(0, limit)
      .map(([jobId, score]) => ({ jobId, score }));
  }

  async reindex(entry: DueLease, score: number | undefined): Promise<void> {
    if (this.#index.get(entry.jobId) !== entry.score) return;
    if (score === undefined) this.#index.delete(entry.jobId);
    else this.#index.set(entry.jobId, score);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
  }
}
