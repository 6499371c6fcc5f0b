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
  type RawRecord,
  type RenewOutcome,
} from './store.js';

/** How often expired records are dropped. */
const SWEEP_INTERVAL_MS = 60_000;

interface Entry {
  raw: RawRecord;
  expiresAt: number;
}

/**
 * The status store of a node that runs alone (`switchyard dev`, an edge without Redis): the
 * same transitions as the Redis store, in this process.
 */
export class MemoryJobStore implements JobStore {
  readonly kind = 'memory';
  readonly #ttlMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: { ttlS: number }) {
    this.#ttlMs = options.ttlS * 1000;
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

  async create(job: JobSpec, owner: string): Promise<boolean> {
    if (this.#entry(job.job_id) !== undefined) return false;
    const now = new Date().toISOString();
    this.#write(job.job_id, {
      job_id: job.job_id,
      owner,
      state: 'queued',
      attempts: '0',
      created_at: now,
      updated_at: now,
      ...(job.sample_id !== undefined && { sample_id: job.sample_id }),
    });
    return true;
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const e = this.#entry(jobId);
    return e === undefined ? undefined : recordFromHash(e.raw);
  }

  async claim(jobId: string, r: ClaimRequest): Promise<ClaimOutcome> {
    const now = Date.now();
    const iso = new Date(now).toISOString();
    const raw = this.#entry(jobId)?.raw ?? {};
    if (isFinalState(raw['final'])) return { kind: 'final', final: raw['final'] };
    const made = Number(raw['attempts'] ?? 0) || 0;
    if (made > r.attempt || (raw['state'] === 'retrying' && made >= r.attempt)) return { kind: 'stale', attempts: made };
    const lease = Number(raw['lease_until'] ?? 0);
    if (raw['runner'] !== undefined && raw['runner'] !== r.runner && lease > now) {
      return { kind: 'leased', runner: raw['runner'], remainingMs: lease - now };
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
      return { kind: 'cancelled', existed };
    }
    const e = this.#write(jobId, {
      state: 'running',
      runner: r.runner,
      lease_until: String(now + r.leaseMs),
      attempts: String(r.attempt),
      started_at: iso,
      updated_at: iso,
      progress: '0',
      stage: '',
      message: '',
    });
    if (r.gpu !== undefined) e.raw['gpu'] = r.gpu;
    else delete e.raw['gpu'];
    return { kind: 'claimed', existed };
  }

  async renew(jobId: string, runner: string, leaseMs: number): Promise<RenewOutcome> {
    const raw = this.#entry(jobId)?.raw;
    if (raw === undefined) return { held: false, cancelRequested: false };
    const cancelRequested = raw['cancel_requested'] === '1' || raw['final'] === 'cancelled';
    if (raw['runner'] !== runner || raw['final'] !== undefined) return { held: false, cancelRequested };
    this.#write(jobId, { lease_until: String(Date.now() + leaseMs) });
    return { held: true, cancelRequested };
  }

  async progress(jobId: string, update: ProgressUpdate): Promise<void> {
    if (this.#entry(jobId) === undefined) return;
    this.#write(jobId, { ...progressToHash(update), updated_at: new Date().toISOString() });
  }

  async release(jobId: string, runner: string, state: 'queued' | 'retrying', fields?: FinishFields): Promise<void> {
    const raw = this.#entry(jobId)?.raw;
    if (raw === undefined || raw['final'] !== undefined || raw['runner'] !== runner) return;
    this.#write(jobId, { state, lease_until: '0', updated_at: new Date().toISOString(), ...finishFieldsToHash(fields) });
  }

  async finish(jobId: string, final: FinalState, fields?: FinishFields): Promise<boolean> {
    const raw = this.#entry(jobId)?.raw;
    if (raw !== undefined && raw['final'] !== undefined) return false;
    const iso = new Date().toISOString();
    this.#write(jobId, { job_id: jobId, final, state: final, finished_at: iso, updated_at: iso, lease_until: '0', ...finishFieldsToHash(fields) });
    return true;
  }

  async cancel(jobId: string, byUser: string | undefined): Promise<CancelOutcome> {
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
    return 'cancelled';
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
  }
}
