import type { SessionPosition, SessionRecord, SessionStore, WorkerInfo, WorkerRegistry } from './types.js';

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
    return copy(entry.record);
  }

  async save(record: SessionRecord): Promise<void> {
    this.#records.set(record.id, { record: copy(record), expiresAt: Date.now() + this.#ttlMs });
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

function copy(record: SessionRecord): SessionRecord {
  const subscriptions: Record<string, SessionPosition> = {};
  for (const [ch, p] of Object.entries(record.subscriptions)) subscriptions[ch] = { seq: p.seq, epoch: p.epoch };
  return { id: record.id, userId: record.userId, subscriptions, ...(record.node !== undefined && { node: record.node }), ...(record.live !== undefined && { live: record.live }) };
}

/** A lone node is the whole cluster. */
export class MemoryRegistry implements WorkerRegistry {
  readonly #id: string;
  #self: (() => WorkerInfo) | undefined;
  readonly #conns = new Map<string, string>();
  /** Connections per user, so admission and lookups cost O(1) rather than a scan of every connection. */
  readonly #perUser = new Map<string, number>();

  constructor(workerId: string) {
    this.#id = workerId;
  }

  async start(self: () => WorkerInfo): Promise<void> {
    this.#self = self;
  }
  totalWorkers(): number {
    return 1;
  }
  totalConnections(): number {
    return this.#self?.().connections ?? 0;
  }
  workers(): readonly WorkerInfo[] {
    return this.#self === undefined ? [] : [this.#self()];
  }
  isAlive(workerId: string): boolean {
    return workerId === this.#id;
  }
  async checkAlive(workerId: string): Promise<boolean> {
    return this.isAlive(workerId);
  }
  async locateConnection(connectionId: string): Promise<string | undefined> {
    return this.#conns.has(connectionId) ? this.#id : undefined;
  }
  async nodesOfUser(userId: string): Promise<string[]> {
    return this.#perUser.has(userId) ? [this.#id] : [];
  }
  async admitConnection(connectionId: string, userId: string, max: number): Promise<boolean> {
    const n = this.#perUser.get(userId) ?? 0;
    if (n >= max) return false;
    this.#conns.set(connectionId, userId);
    this.#perUser.set(userId, n + 1);
    return true;
  }
  readonly #windows = new Map<string, { second: number; count: number }>();
  async takeUserToken(userId: string, perS: number): Promise<boolean> {
    const second = Math.floor(Date.now() / 1000);
    const w = this.#windows.get(userId);
    if (w === undefined || w.second !== second) {
      if (this.#windows.size > 10_000) this.#windows.clear();
      this.#windows.set(userId, { second, count: 1 });
      return perS >= 1;
    }
    return ++w.count <= perS;
  }
  removeConnection(connectionId: string): void {
    const userId = this.#conns.get(connectionId);
    if (userId === undefined) return;
    this.#conns.delete(connectionId);
    const n = (this.#perUser.get(userId) ?? 1) - 1;
    if (n > 0) this.#perUser.set(userId, n);
    else this.#perUser.delete(userId);
  }
  notePosition(): void {}
  forgetPosition(): void {}
  async positionsOf(): Promise<Record<string, SessionPosition>> {
    return {};
  }
  async leave(): Promise<void> {}
  async close(): Promise<void> {
    this.#conns.clear();
    this.#perUser.clear();
  }
}
