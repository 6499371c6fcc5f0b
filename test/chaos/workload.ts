import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { FIGURES_DIR } from './figures.js';
import { hsToken, TestClient, type EdgeProcess, type Frame } from '../harness/index.js';
import { waitFor } from '../harness/ports.js';

/**
 * The chaos suites' workload and its judge. Publishers send events carrying an id and record
 * the seq each ack gave (null when the edge could only deliver locally). Watchers follow
 * channels and, when told to resume, reconnect (to any edge) and subscribe again with
 * `since` = the last seq they saw — the contract's client-side resume. `verify` then holds
 * the contract: every event acked with a seq reaches every watcher, in seq order, once;
 * a gap is allowed only right after the server said `recovered:false`.
 */

export const BROADCAST_KEY = 'chaos-broadcast-key';

/** Edge settings for fault tests: quick heartbeats and a short readiness grace. */
export const CHAOS_EDGE_ENV: Record<string, string> = {
  HEARTBEAT_MS: '500',
  READY_REDIS_GRACE_MS: '2000',
  USER_RATE_LIMIT_PER_S: '100000',
  MAX_CONNECTIONS_PER_USER: '1000',
  RATE_LIMIT_PER_S: '1000',
  RATE_LIMIT_BURST: '2000',
  BROADCAST_API_KEY: BROADCAST_KEY,
};

/** Connects and authenticates; bounded generously, since auth itself may wait on a slowed Redis. */
export async function connectSlow(url: string, token: string, extra: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<{ client: TestClient; hello: Frame }> {
  const client = new TestClient(url);
  await client.opened;
  client.send({ type: 'auth', token, ...extra });
  const hello = await client.next((f) => f.type === 'auth_success' || f.type === 'auth_error', timeoutMs);
  return { client, hello };
}

export function chaosToken(sub: string, prefix: string): Promise<string> {
  return hsToken({ sub, channels: [`${prefix}*`], publish: [`${prefix}*`], expiresIn: 3600 });
}

export interface Ack {
  id: string;
  channel: string;
  /** null: delivered only locally (the broker was unreachable), or no answer at all. */
  seq: number | null;
  ms: number;
  /** When the ack came back (Date.now()). */
  at: number;
}

/** Publishes `<name>-<n>` events on its channels, one at a time, until stopped. */
export class Publisher {
  readonly acks: Ack[] = [];
  readonly errors: string[] = [];
  #client: TestClient | undefined;
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly channels: string[],
    readonly payloadBytes = 64,
  ) {}

  async start(edge: EdgeProcess, token: string, intervalMs: number): Promise<void> {
    const { client, hello } = await connectSlow(edge.url, token);
    if (hello.type !== 'auth_success') throw new Error(`publisher ${this.name}: ${JSON.stringify(hello)}`);
    this.#client = client;
    this.#running = true;
    const pad = 'x'.repeat(this.payloadBytes);
    this.#loop = (async () => {
      for (let n = 1; this.#running; n++) {
        const channel = this.channels[n % this.channels.length]!;
        const id = `${this.name}-${n}`;
        const t0 = performance.now();
        try {
          // Bounded: a publish may wait for Redis's command timeout and the per-user budget's.
          const ack = await client.request({ type: 'publish', channel, event: 'chaos', data: { id, pad } }, 20_000);
          if (ack.type !== 'ack') this.errors.push(JSON.stringify(ack));
          this.acks.push({ id, channel, seq: typeof ack['seq'] === 'number' ? ack['seq'] : null, ms: performance.now() - t0, at: Date.now() });
        } catch (err) {
          if (!this.#running) break;
          this.errors.push(String(err));
          this.acks.push({ id, channel, seq: null, ms: performance.now() - t0, at: Date.now() });
        }
        // sleep-ok: the publisher's pacing (events per second), not a wait for a condition
        if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
      }
    })();
  }

  /** Acks that carried a seq: these events the contract promises to every watcher. */
  sequenced(): Ack[] {
    return this.acks.filter((a) => a.seq !== null);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
    this.#client?.close();
  }
}

interface Item {
  kind: 'result' | 'event';
  seq: number;
  epoch?: string;
  recovered?: boolean;
  id?: string;
  degraded?: boolean;
  at: number;
}

/** Follows channels; `resume` reconnects anywhere and subscribes again from the last seq seen. */
export class Watcher {
  /** What arrived per channel, in order, across every connection this watcher had. */
  readonly log = new Map<string, Item[]>();
  readonly last = new Map<string, number>();
  /** Where each channel stood when this watcher first joined it, and when that answer came. */
  readonly joined = new Map<string, { seq: number; at: number }>();
  readonly resumes: { recovered: boolean | undefined; channel: string }[] = [];
  client: TestClient | undefined;

  constructor(
    readonly name: string,
    readonly channels: string[],
    readonly token: string,
  ) {
    for (const ch of channels) this.log.set(ch, []);
  }

  async open(edge: EdgeProcess): Promise<void> {
    const { client, hello } = await connectSlow(edge.url, this.token);
    if (hello.type !== 'auth_success') throw new Error(`watcher ${this.name}: ${JSON.stringify(hello)}`);
    this.client = client;
    client.ws.on('message', (data) => this.#onFrame(JSON.parse(data.toString()) as Frame));
    for (const channel of this.channels) {
      const since = this.last.get(channel);
      const result = await client.request({ type: 'subscribe', channel, ...(since !== undefined && { since }) }, 20_000);
      if (result['success'] !== true) throw new Error(`watcher ${this.name} could not subscribe to ${channel}: ${JSON.stringify(result)}`);
      if (since !== undefined) this.resumes.push({ channel, recovered: result['recovered'] as boolean | undefined });
      if (!this.last.has(channel)) this.last.set(channel, Number(result['seq']));
      if (!this.joined.has(channel)) this.joined.set(channel, { seq: Number(result['seq']), at: Date.now() });
    }
  }

  #onFrame(f: Frame): void {
    const channel = f['channel'];
    if (typeof channel !== 'string' || !this.log.has(channel)) return;
    const items = this.log.get(channel)!;
    if (f.type === 'subscription_result' && f['success'] === true) {
      items.push({ kind: 'result', seq: Number(f['seq']), epoch: f['epoch'] as string, ...(typeof f['recovered'] === 'boolean' && { recovered: f['recovered'] }), at: Date.now() });
    } else if (f.type === 'event') {
      const degraded = f['degraded'] === true;
      const id = (f['data'] as { id?: string } | null)?.id;
      items.push({ kind: 'event', seq: typeof f['seq'] === 'number' ? f['seq'] : -1, ...(id !== undefined && { id }), degraded, at: Date.now() });
      if (!degraded && typeof f['seq'] === 'number') this.last.set(channel, f['seq']);
    }
  }

  /** Drops the connection (as a client whose network went away) and reconnects to `edge`. */
  async resume(edge: EdgeProcess): Promise<void> {
    const old = this.client;
    if (old !== undefined) {
      old.ws.terminate();
      await old.closed;
    }
    await this.open(edge);
  }

  receivedIds(channel: string): Set<string> {
    return new Set(this.log.get(channel)!.filter((i) => i.kind === 'event' && !i.degraded && i.id !== undefined).map((i) => i.id!));
  }

  /** `recovered:false` results this watcher got on a channel. */
  resets(channel: string): number {
    return this.log.get(channel)!.filter((i) => i.kind === 'result' && i.recovered === false).length;
  }

  /** When the last `recovered:false` on a channel arrived, or 0. */
  lastReset(channel: string): number {
    return this.log.get(channel)!.filter((i) => i.kind === 'result' && i.recovered === false).at(-1)?.at ?? 0;
  }

  close(): void {
    this.client?.ws.terminate();
  }
}

const JOIN_SLACK_MS = 5000;

export interface Verdict {
  /** Sequenced events some watcher never got (and was not told it could not get). */
  lost: string[];
  /** An event delivered twice, or a seq lower than one already delivered (same epoch). */
  duplicates: string[];
  /** A seq gap without `recovered:false` before it. */
  gaps: string[];
  /** How many `recovered:false` each watcher got, per channel. */
  resets: number;
  delivered: number;
}

/**
 * Judges what the watchers saw against what the publishers were acked. `historyLost` says the
 * fault wiped history: an acked event may then be missing, but only one acked before the
 * watcher was told `recovered:false` on that channel.
 */
export function verify(publishers: Publisher[], watchers: Watcher[], historyLost = false): Verdict {
  const verdict: Verdict = { lost: [], duplicates: [], gaps: [], resets: 0, delivered: 0 };
  for (const w of watchers) {
    for (const [channel, items] of w.log) {
      let last: number | undefined;
      let epoch: string | undefined;
      let gapAllowed = false;
      const seen = new Set<string>();
      for (const item of items) {
        if (item.kind === 'result') {
          if (item.recovered === false) gapAllowed = true;
          if (epoch !== undefined && item.epoch !== epoch) {
            gapAllowed = true;
            last = undefined;
          }
          epoch = item.epoch;
          if (last === undefined && item.recovered === undefined) last = item.seq;
          continue;
        }
        if (item.degraded) continue;
        verdict.delivered++;
        if (item.id !== undefined) {
          if (seen.has(item.id)) verdict.duplicates.push(`${w.name} ${channel} ${item.id} twice`);
          seen.add(item.id);
        }
        if (last !== undefined && item.seq <= last && !gapAllowed) verdict.duplicates.push(`${w.name} ${channel} seq ${item.seq} after ${last}`);
        else if (last !== undefined && item.seq > last + 1 && !gapAllowed) verdict.gaps.push(`${w.name} ${channel} seq ${last} -> ${item.seq}`);
        last = item.seq;
        gapAllowed = false;
      }
      verdict.resets += w.resets(channel);
      // Where history was wiped, an event acked before the watcher heard `recovered:false`
      // may be gone; one acked after it may not.
      const resetAt = historyLost ? w.lastReset(channel) : 0;
      const got = w.receivedIds(channel);
      const joined = w.joined.get(channel) ?? { seq: 0, at: 0 };
      for (const p of publishers) {
        for (const a of p.sequenced()) {
          if (a.channel !== channel || got.has(a.id)) continue;
          if (a.at < resetAt) continue;
          // Published before this watcher joined (its ack may still trail the join's answer a little).
          if (a.seq! <= joined.seq && a.at < joined.at + JOIN_SLACK_MS) continue;
          verdict.lost.push(`${w.name} ${channel} ${a.id} (seq ${a.seq})`);
        }
      }
    }
  }
  return verdict;
}

/**
 * The contract's promise for watchers that stay or resume: nothing acked with a seq lost,
 * repeated or out of order; `recovered:false` only as many times as `resets` says (when given).
 */
export function expectIntact(v: Verdict, resets?: number, watchers: Watcher[] = []): void {
  if (v.lost.length + v.duplicates.length + v.gaps.length > 0 && watchers.length > 0) {
    // What each watcher saw, for the post-mortem of a failed run.
    const dump = Object.fromEntries(watchers.map((w) => [w.name, Object.fromEntries([...w.log].map(([ch, items]) => [ch, items.map((i) => (i.kind === 'result' ? `R${i.seq}${i.recovered === false ? '!' : ''}@${i.at}` : `${i.seq}${i.degraded ? 'd' : ''}@${i.at}`))]))]));
    mkdirSync(FIGURES_DIR, { recursive: true });
    writeFileSync(join(FIGURES_DIR, `failed-${Date.now()}.json`), JSON.stringify(dump));
  }
  const byWhere = new Map<string, number>();
  for (const l of v.lost) {
    const where = l.split(' ').slice(0, 2).join(' ');
    byWhere.set(where, (byWhere.get(where) ?? 0) + 1);
  }
  expect(Object.fromEntries(byWhere), 'lost events per watcher and channel').toEqual({});
  expect(v.lost).toEqual([]);
  expect(v.duplicates).toEqual([]);
  expect(v.gaps).toEqual([]);
  if (resets !== undefined) expect(v.resets).toBe(resets);
}

/** The figures every scenario reports. */
export function verdictFigures(v: Verdict, publishers: Publisher[]): Record<string, number> {
  const acks = publishers.flatMap((p) => p.acks);
  return {
    events_acked_with_seq: acks.filter((a) => a.seq !== null).length,
    degraded_acks: acks.filter((a) => a.seq === null).length,
    events_delivered: v.delivered,
    lost: v.lost.length,
    duplicates: v.duplicates.length,
    gaps: v.gaps.length,
    recovered_false: v.resets,
  };
}

/** Waits until every watcher holds every event it is owed (or the bound passes); returns how long that took. */
export async function settle(publishers: Publisher[], watchers: Watcher[], timeoutMs = 30_000, historyLost = false): Promise<number> {
  const t0 = Date.now();
  await waitFor(() => verify(publishers, watchers, historyLost).lost.length === 0 || undefined, timeoutMs, 'every watcher to hold every acked event').catch(() => undefined);
  return Date.now() - t0;
}

export async function health(edge: EdgeProcess): Promise<Record<string, any>> {
  const res = await fetch(`${edge.http}/health`, { signal: AbortSignal.timeout(10_000) });
  return { httpStatus: res.status, ...((await res.json()) as Record<string, any>) };
}

export async function readyStatus(edge: EdgeProcess): Promise<number> {
  return (await fetch(`${edge.http}/ready`, { signal: AbortSignal.timeout(10_000) })).status;
}

/** Polls /health and /ready of each edge every `everyMs` until stopped: what they said, when. */
export class Prober {
  readonly samples: { edge: number; at: number; status: string; httpStatus: number; ready: number; brokerHealthy: boolean; workers: number; latencyMs: number | null }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(readonly edges: EdgeProcess[]) {}

  start(everyMs = 250): void {
    this.#timer = setInterval(() => {
      if (this.#busy) return;
      this.#busy = true;
      void Promise.all(
        this.edges.map(async (e, i) => {
          const h = await health(e);
          const ready = await readyStatus(e);
          this.samples.push({ edge: i, at: Date.now(), status: String(h['status']), httpStatus: h['httpStatus'], ready, brokerHealthy: h['websocket']?.message_broker_healthy === true, workers: Number(h['websocket']?.total_workers), latencyMs: h['redis']?.latency_ms ?? null });
        }),
      )
        .catch(() => undefined)
        .finally(() => (this.#busy = false));
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  of(edge: number, from = 0, to = Infinity) {
    return this.samples.filter((s) => s.edge === edge && s.at >= from && s.at <= to);
  }
}

/** No edge exited, and none logged an uncaught error. */
export function assertAlive(edges: EdgeProcess[]): void {
  for (const e of edges) {
    if (e.proc.exitCode !== null || e.proc.signalCode !== null) throw new Error(`edge on ${e.port} exited (${e.proc.exitCode ?? e.proc.signalCode}):\n${e.lines.slice(-30).join('\n')}`);
    const crash = e.lines.find((l) => /uncaught|unhandled/i.test(l));
    if (crash !== undefined) throw new Error(`edge on ${e.port} logged: ${crash}`);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
