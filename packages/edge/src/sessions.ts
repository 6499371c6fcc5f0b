import { randomBytes } from 'node:crypto';

/** Where a session stood on one channel when its connection went away. */
export interface SessionPosition {
  seq: number;
  epoch: string;
}

export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  /** Channel → last seq delivered (as far as the node can tell) and the epoch it belongs to. */
  subscriptions: Record<string, SessionPosition>;
}

/**
 * Sessions outlive connections by a TTL so a client can resume on any node. The memory
 * store serves a lone node; the Redis store (cluster issue) shares them across nodes.
 */
export interface SessionStore {
  load(id: string): Promise<SessionRecord | undefined>;
  /** Writes the record and restarts its TTL. */
  save(record: SessionRecord): Promise<void>;
  delete(id: string): Promise<void>;
  /** Sessions alive (connected or resumable); cached figures are fine. */
  count(): number;
  close(): Promise<void>;
}

export function newSessionId(): string {
  return `s_${randomBytes(12).toString('base64url')}`;
}

const SWEEP_INTERVAL_MS = 30_000;

export class MemorySessionStore implements SessionStore {
  readonly #ttlMs: number;
  readonly #records = new Map<string, { record: SessionRecord; expiresAt: number }>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(ttlS: number) {
    this.#ttlMs = ttlS * 1000;
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
  }

  async load(id: string): Promise<SessionRecord | undefined> {
    const entry = this.#records.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.#records.delete(id);
      return undefined;
    }
    // A copy, as a store across the network would give: the caller owns what it loads.
    return { id: entry.record.id, userId: entry.record.userId, subscriptions: { ...entry.record.subscriptions } };
  }

  async save(record: SessionRecord): Promise<void> {
    this.#records.set(record.id, {
      record: { id: record.id, userId: record.userId, subscriptions: { ...record.subscriptions } },
      expiresAt: Date.now() + this.#ttlMs,
    });
  }

  async delete(id: string): Promise<void> {
    this.#records.delete(id);
  }

  count(): number {
    return this.#records.size;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#records.clear();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, entry] of this.#records) if (entry.expiresAt <= now) this.#records.delete(id);
  }
}
