import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SignJWT } from 'jose';
import WebSocket from 'ws';

/**
 * The soak's workload and its bookkeeping, against a running cluster: steady fan-out from a
 * publisher on every edge to subscribers on every edge, connection churn (half the
 * reconnects resume their session, half subscribe again with `since`), and jobs. Every event
 * acked with a seq is checked for at every subscriber (lost, repeated or out of order), every
 * job for exactly one terminal event. Process figures come from each node's own /metrics
 * (prom-client's default process metrics) and Redis's INFO: nothing is added to the product.
 */

export interface SoakNode {
  name: string;
  /** Base URL of the node's HTTP port (for /metrics). */
  http: string;
}

export interface SoakTarget {
  /** Edges: `ws` is the WebSocket URL, `http` the same port's HTTP base. */
  edges: { name: string; ws: string; http: string }[];
  /** Other processes to watch through their /metrics (the runner). */
  others: SoakNode[];
  /** HS256 secret the edges verify tokens with. */
  jwtSecret: string;
  /** `dbsize` and `used_memory` of Redis, read by the caller (redis-cli, a client...). */
  redisFigures(): { keys: number; usedMemoryBytes: number };
}

export interface SoakOptions {
  durationMs: number;
  /** How often process figures are sampled. */
  sampleEveryMs: number;
  channels: number;
  subscribersPerEdge: number;
  /** Each edge's publisher sends one event per this many ms. */
  publishEveryMs: number;
  /** Reconnects per second across all subscribers. */
  churnPerS: number;
  /** One job submitted per this many ms (0: no jobs). */
  jobEveryMs: number;
  payloadBytes: number;
  log?: (line: string) => void;
}

export const SOAK_DEFAULTS: Omit<SoakOptions, 'durationMs'> = {
  sampleEveryMs: 5000,
  channels: 5,
  subscribersPerEdge: 20,
  publishEveryMs: 50,
  churnPerS: 2,
  jobEveryMs: 3000,
  payloadBytes: 200,
};

export interface ProcessSample {
  rssBytes: number;
  heapUsedBytes: number;
  openFds: number;
  eventLoopP99S: number;
}

export interface Sample {
  /** ms since the soak started. */
  t: number;
  nodes: Record<string, ProcessSample | null>;
  redis: { keys: number; usedMemoryBytes: number };
  connected: number;
  /** The driver's own event-loop delay p99 over the interval (ms): a busy driver skews figures. */
  driverLoopP99Ms: number;
}

export interface NodeSummary {
  rssStartMb: number;
  rssEndMb: number;
  rssSlopeMbPerH: number;
  heapStartMb: number;
  heapEndMb: number;
  heapSlopeMbPerH: number;
  /** Lowest heap in the second quarter and in the last quarter (the GC troughs: live data). */
  heapTroughQ2Mb: number;
  heapTroughQ4Mb: number;
  fdsStart: number;
  fdsEnd: number;
  fdsMedianQ2: number;
  fdsMedianQ4: number;
  /** Event-loop delay p99 (ms), the median of each quarter's samples. */
  eventLoopP99MsByQuarter: number[];
}

export interface SoakReport {
  durationS: number;
  options: Omit<SoakOptions, 'log'>;
  nodes: Record<string, NodeSummary>;
  redis: { keysStart: number; keysEnd: number; usedMemoryStartMb: number; usedMemoryEndMb: number };
  events: { acked: number; degradedAcks: number; delivered: number; lost: number; duplicates: number; outOfOrder: number; recoveredFalse: number };
  churn: { sessionResumes: number; sessionResumesNotResumed: number; sinceResumes: number; reconnectFailures: number; serverCloses: number };
  jobs: { submitted: number; completed: number; failed: number; finishedTwice: number; unfinished: number };
  /** Why the soak failed (a leak or a lost event), empty when it passed. */
  failures: string[];
  samples: Sample[];
}

type Frame = Record<string, unknown> & { type: string };

const TERMINAL = new Set(['job.completed', 'job.failed', 'job.cancelled']);
const MB = 1024 * 1024;
/** A leak shows as heap that the collector cannot give back: the troughs rising. */
const HEAP_TROUGH_GROWTH = 1.25;
const HEAP_TROUGH_SLACK_BYTES = 8 * MB;
const FD_SLACK = 16;
const REPLY_TIMEOUT_MS = 30_000;

async function token(secret: string, sub: string, channels: string[]): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ channels, publish: channels })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + 24 * 3600)
    .sign(new TextEncoder().encode(secret));
}

class ConnectionClosed extends Error {
  constructor() {
    super('connection closed before the reply');
  }
}

/** One WebSocket with request/reply by `ref` and a frame hook. */
class Conn {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;
  /** Set once the connection is gone (either side closed it). */
  isClosed = false;
  #waiting = new Map<string, { resolve: (f: Frame) => void; reject: (err: Error) => void }>();
  #ref = 0;
  onFrame: (f: Frame) => void = () => {};

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) =>
      this.ws.once('close', () => {
        this.isClosed = true;
        // A request on a connection the server closed will never be answered.
        for (const w of this.#waiting.values()) w.reject(new ConnectionClosed());
        this.#waiting.clear();
        resolve();
      }),
    );
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as Frame;
      const ref = f['ref'];
      if (typeof ref === 'string' && this.#waiting.has(ref)) {
        this.#waiting.get(ref)!.resolve(f);
        this.#waiting.delete(ref);
      }
      this.onFrame(f);
    });
  }

  request(frame: Record<string, unknown>): Promise<Frame> {
    const ref = `q${++this.#ref}`;
    if (this.isClosed) return Promise.reject(new ConnectionClosed());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(ref);
        reject(new Error(`no reply to ${String(frame['type'])} within ${REPLY_TIMEOUT_MS} ms`));
      }, REPLY_TIMEOUT_MS);
      this.#waiting.set(ref, {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.ws.send(JSON.stringify({ ...frame, ref }));
    });
  }

  /** Authenticates with the first frame; the reply is auth_success or auth_error. */
  async auth(jwt: string, extra: Record<string, unknown> = {}): Promise<Frame> {
    await this.opened;
    const reply = new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no auth reply')), REPLY_TIMEOUT_MS);
      void this.closed.then(() => {
        clearTimeout(timer);
        reject(new ConnectionClosed());
      });
      const prev = this.onFrame;
      this.onFrame = (f) => {
        if (f.type === 'auth_success' || f.type === 'auth_error') {
          clearTimeout(timer);
          this.onFrame = prev;
          resolve(f);
        }
        prev(f);
      };
    });
    this.ws.send(JSON.stringify({ type: 'auth', token: jwt, ...extra }));
    return reply;
  }
}

interface Counters {
  /** Connections the server closed (a node shedding clients): the client came back by itself. */
  serverCloses: number;
  delivered: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  recoveredFalse: number;
}

/** A subscriber that checks each channel's seqs as they come, across reconnects. */
class Subscriber {
  conn: Conn | undefined;
  sessionId: string | undefined;
  readonly last = new Map<string, number>();
  #gapAllowed = new Set<string>();
  busy = false;

  constructor(
    readonly channels: string[],
    readonly jwt: string,
    readonly counters: Counters,
    readonly pick: () => string,
  ) {}

  #onFrame(f: Frame): void {
    const ch = f['channel'];
    if (typeof ch !== 'string') return;
    if (f.type === 'subscription_result' && f['recovered'] === false) {
      this.counters.recoveredFalse++;
      this.#gapAllowed.add(ch);
      return;
    }
    if (f.type !== 'event' || typeof f['seq'] !== 'number') return;
    const seq = f['seq'];
    const last = this.last.get(ch);
    this.counters.delivered++;
    if (last !== undefined && !this.#gapAllowed.has(ch)) {
      if (seq <= last) {
        this.counters.duplicates++;
        return;
      }
      if (seq > last + 1) this.counters.lost += seq - last - 1;
    }
    this.#gapAllowed.delete(ch);
    this.last.set(ch, seq);
  }

  /**
   * Connects; `session` resumes by session id, `since` subscribes again from what it saw.
   * A close it did not ask for (a node shedding clients with `reconnect`, as the contract
   * lets it) is followed, as a client should, by a session resume on `pick()`'s edge.
   */
  async connect(url: string, how: 'fresh' | 'session' | 'since'): Promise<Frame> {
    const conn = new Conn(url);
    conn.onFrame = (f) => this.#onFrame(f);
    void conn.closed.then(() => {
      if (this.conn !== conn || this.busy) return;
      this.busy = true;
      this.conn = undefined;
      this.counters.serverCloses++;
      void this.comeBack().finally(() => (this.busy = false));
    });
    const hello = await conn.auth(this.jwt, how === 'session' && this.sessionId !== undefined ? { session_id: this.sessionId } : {});
    if (hello.type !== 'auth_success') throw new Error(`auth failed: ${JSON.stringify(hello)}`);
    this.conn = conn;
    this.sessionId = String(hello['session_id']);
    if (how === 'session' && hello['resumed'] === true) return hello;
    for (const channel of this.channels) {
      const since = how === 'fresh' ? undefined : this.last.get(channel);
      const r = await conn.request({ type: 'subscribe', channel, ...(since !== undefined && { since }) });
      if (r['success'] !== true) throw new Error(`subscribe ${channel}: ${JSON.stringify(r)}`);
      if (since === undefined && !this.last.has(channel)) this.last.set(channel, Number(r['seq']));
    }
    return hello;
  }

  /** Retries a session resume (with backoff) until connected; false if it never was. */
  async comeBack(): Promise<boolean> {
    for (let attempt = 1; attempt <= 20; attempt++) {
      await new Promise((r) => setTimeout(r, 250 * attempt));
      try {
        await this.connect(this.pick(), 'session');
        return true;
      } catch {
        await this.drop(false);
      }
    }
    return false;
  }

  /** Graceful close (everything the server sent arrives before its close frame) or a cut. */
  async drop(graceful: boolean): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    if (conn === undefined) return;
    if (graceful) conn.ws.close(1000);
    else conn.ws.terminate();
    await conn.closed;
  }
}

function parseMetrics(text: string): ProcessSample {
  const read = (name: string): number => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
    return m === null ? NaN : Number(m[1]);
  };
  return {
    rssBytes: read('process_resident_memory_bytes'),
    heapUsedBytes: read('nodejs_heap_size_used_bytes'),
    openFds: read('process_open_fds'),
    eventLoopP99S: read('nodejs_eventloop_lag_p99_seconds'),
  };
}

async function sampleNode(http: string): Promise<ProcessSample | null> {
  try {
    const res = await fetch(`${http}/metrics`, { signal: AbortSignal.timeout(10_000) });
    return parseMetrics(await res.text());
  } catch {
    return null;
  }
}

/** Least-squares slope of y over x. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const median = (v: number[]) => {
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

/** Per-node figures and the leak verdict from the samples. */
export function summarise(samples: Sample[], durationMs: number): { nodes: Record<string, NodeSummary>; failures: string[] } {
  const nodes: Record<string, NodeSummary> = {};
  const failures: string[] = [];
  const names = new Set(samples.flatMap((s) => Object.keys(s.nodes)));
  // The last quarter also holds the sample taken as the soak ends.
  const inQuarter = (t: number, n: number) => t >= (durationMs * (n - 1)) / 4 && (n === 4 || t < (durationMs * n) / 4);
  for (const name of names) {
    const rows = samples.map((s) => ({ t: s.t, p: s.nodes[name] })).filter((r): r is { t: number; p: ProcessSample } => r.p !== null && r.p !== undefined);
    if (rows.length < 4) continue;
    // The first tenth is warm-up (JIT, pools, caches filling): not part of the slope.
    const steady = rows.filter((r) => r.t >= durationMs / 10);
    const hours = steady.map((r) => r.t / 3_600_000);
    const q = (n: number) => rows.filter((r) => inQuarter(r.t, n));
    const trough = (n: number) => Math.min(...q(n).map((r) => r.p.heapUsedBytes));
    const summary: NodeSummary = {
      rssStartMb: round(rows[0]!.p.rssBytes / MB),
      rssEndMb: round(rows.at(-1)!.p.rssBytes / MB),
      rssSlopeMbPerH: round(slope(hours, steady.map((r) => r.p.rssBytes / MB))),
      heapStartMb: round(rows[0]!.p.heapUsedBytes / MB),
      heapEndMb: round(rows.at(-1)!.p.heapUsedBytes / MB),
      heapSlopeMbPerH: round(slope(hours, steady.map((r) => r.p.heapUsedBytes / MB))),
      heapTroughQ2Mb: round(trough(2) / MB),
      heapTroughQ4Mb: round(trough(4) / MB),
      fdsStart: rows[0]!.p.openFds,
      fdsEnd: rows.at(-1)!.p.openFds,
      fdsMedianQ2: median(q(2).map((r) => r.p.openFds)),
      fdsMedianQ4: median(q(4).map((r) => r.p.openFds)),
      eventLoopP99MsByQuarter: [1, 2, 3, 4].map((n) => round(median(q(n).map((r) => r.p.eventLoopP99S * 1000)), 2)),
    };
    nodes[name] = summary;
    if (trough(4) > trough(2) * HEAP_TROUGH_GROWTH + HEAP_TROUGH_SLACK_BYTES) {
      failures.push(`${name}: heap troughs grew from ${summary.heapTroughQ2Mb} MB (2nd quarter) to ${summary.heapTroughQ4Mb} MB (last quarter) under a fixed workload`);
    }
    if (summary.fdsMedianQ4 > summary.fdsMedianQ2 + FD_SLACK) {
      failures.push(`${name}: open fds grew from ${summary.fdsMedianQ2} to ${summary.fdsMedianQ4} under a fixed workload`);
    }
  }
  return { nodes, failures };
}

/** Runs the soak for `durationMs`, then drains and checks. */
export async function runSoak(target: SoakTarget, options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => {});
  const channels = Array.from({ length: options.channels }, (_, i) => `soak:${i}`);
  const jwt = await token(target.jwtSecret, 'soak', channels);
  const counters: Counters = { serverCloses: 0, delivered: 0, lost: 0, duplicates: 0, outOfOrder: 0, recoveredFalse: 0 };
  const churn = { sessionResumes: 0, sessionResumesNotResumed: 0, sinceResumes: 0, reconnectFailures: 0 };
  const edgeAt = (i: number) => target.edges[i % target.edges.length]!;
  const t0 = Date.now();
  const stopAt = t0 + options.durationMs;
  const running = () => Date.now() < stopAt;

  // Subscribers, spread over the edges.
  const subs: Subscriber[] = [];
  const randomEdge = () => edgeAt(Math.floor(Math.random() * target.edges.length)).ws;
  for (let i = 0; i < options.subscribersPerEdge * target.edges.length; i++) subs.push(new Subscriber(channels, jwt, counters, randomEdge));
  await Promise.all(subs.map((s, i) => s.connect(edgeAt(i).ws, 'fresh')));
  log(`${subs.length} subscribers on ${target.edges.length} edges, ${channels.length} channels`);

  // Publishers: one per edge, one event per publishEveryMs, round-robin over the channels.
  const maxAcked = new Map<string, number>();
  let acked = 0;
  let degradedAcks = 0;
  const pad = 'x'.repeat(options.payloadBytes);
  const authed = async (url: string): Promise<Conn> => {
    const conn = new Conn(url);
    const hello = await conn.auth(jwt);
    if (hello.type !== 'auth_success') throw new Error(`auth: ${JSON.stringify(hello)}`);
    return conn;
  };
  const publishers = target.edges.map(async (edge, e) => {
    let conn = await authed(edge.ws);
    for (let n = 0; running(); n++) {
      const started = Date.now();
      const channel = channels[(n + e) % channels.length]!;
      try {
        // Shed by its node: come back (on the same edge, so each edge keeps one publisher).
        if (conn.isClosed) conn = await authed(edge.ws);
        const ack = await conn.request({ type: 'publish', channel, event: 'soak', data: { e, n, pad } });
        if (typeof ack['seq'] === 'number') {
          acked++;
          maxAcked.set(channel, Math.max(maxAcked.get(channel) ?? 0, ack['seq']));
        } else degradedAcks++;
      } catch {
        degradedAcks++;
      }
      const wait = options.publishEveryMs - (Date.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    conn.ws.close();
  });

  // Churn: a random subscriber leaves and comes back on a random edge.
  let churnN = 0;
  const churner = setInterval(() => {
    const s = subs[Math.floor(Math.random() * subs.length)]!;
    if (s.busy || !running()) return;
    s.busy = true;
    const bySession = churnN++ % 2 === 0;
    void (async () => {
      try {
        await s.drop(bySession);
        const hello = await s.connect(edgeAt(Math.floor(Math.random() * target.edges.length)).ws, bySession ? 'session' : 'since');
        if (bySession) {
          churn.sessionResumes++;
          if (hello['resumed'] !== true) churn.sessionResumesNotResumed++;
        } else churn.sinceResumes++;
      } catch (err) {
        // Shed or timed out mid-reconnect: a client retries, and so does this one.
        log(`reconnect failed (${(err as Error).message}); retrying`);
        await s.drop(false);
        if (!(await s.comeBack())) churn.reconnectFailures++;
      } finally {
        s.busy = false;
      }
    })();
  }, Math.max(10, Math.round(1000 / Math.max(options.churnPerS, 0.001))));

  // Jobs: submitted over HTTP, followed on their channel by one watcher per edge.
  // Terminal events by seq: a watcher that comes back replays a job from seq 0, which must
  // not count as a second finish; two terminal events with different seqs do.
  const jobs = new Map<string, { terminal: Map<number, string>; edge: number }>();
  const jobErrors: string[] = [];
  const watchJobs = async (e: number): Promise<Conn> => {
    const conn = await authed(target.edges[e]!.ws);
    conn.onFrame = (f) => {
      const ch = f['channel'];
      if (f.type !== 'event' || typeof ch !== 'string' || !ch.startsWith('job:')) return;
      const job = jobs.get(ch.slice(4));
      if (job !== undefined && TERMINAL.has(String(f['event']))) {
        job.terminal.set(Number(f['seq']), String(f['event']));
        void conn.request({ type: 'unsubscribe', channel: ch }).catch(() => undefined);
      }
    };
    void conn.closed.then(async () => {
      if (!running() && [...jobs.values()].every((j) => j.terminal.size > 0)) return;
      for (let attempt = 0; attempt < 20; attempt++) {
        await new Promise((r) => setTimeout(r, 250 * (attempt + 1)));
        try {
          const again = await watchJobs(e);
          watchers[e] = again;
          for (const [id, job] of jobs) if (job.edge === e && job.terminal.size === 0) await again.request({ type: 'subscribe', job_id: id, since: 0, snapshot: false });
          return;
        } catch {
          /* try again */
        }
      }
    });
    return conn;
  };
  const watchers = await Promise.all(target.edges.map((_, e) => watchJobs(e)));
  let jobN = 0;
  const submitter =
    options.jobEveryMs > 0
      ? setInterval(() => {
          if (!running()) return;
          const e = jobN++ % target.edges.length;
          void (async () => {
            try {
              const res = await fetch(`${target.edges[e]!.http}/jobs`, {
                method: 'POST',
                headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
                body: JSON.stringify({ params: { stages: 2, stage_ms: 20 } }),
                signal: AbortSignal.timeout(REPLY_TIMEOUT_MS),
              });
              const body = (await res.json()) as { job_id?: string };
              if (res.status !== 202 || body.job_id === undefined) throw new Error(`POST /jobs ${res.status} ${JSON.stringify(body)}`);
              jobs.set(body.job_id, { terminal: new Map(), edge: e });
              // From seq 0 with no snapshot: every event of the job, so a terminal one cannot slip
              // by. Shed meanwhile, the watcher subscribes again when it is back; a job that no
              // watcher ever saw end is counted unfinished.
              await watchers[e]!.request({ type: 'subscribe', job_id: body.job_id, since: 0, snapshot: false }).catch((err: unknown) => {
                if (!(err instanceof ConnectionClosed)) throw err;
              });
            } catch (err) {
              jobErrors.push((err as Error).message);
            }
          })();
        }, options.jobEveryMs)
      : undefined;

  // Sampling.
  const samples: Sample[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const nodes: SoakNode[] = [...target.edges.map((e) => ({ name: e.name, http: e.http })), ...target.others];
  const takeSample = async () => {
    const figures = await Promise.all(nodes.map((n) => sampleNode(n.http)));
    samples.push({
      t: Date.now() - t0,
      nodes: Object.fromEntries(nodes.map((n, i) => [n.name, figures[i]!])),
      redis: target.redisFigures(),
      connected: subs.filter((s) => s.conn !== undefined).length,
      driverLoopP99Ms: round(loop.percentile(99) / 1e6, 2),
    });
    loop.reset();
  };
  await takeSample();
  const sampler = setInterval(() => void takeSample(), options.sampleEveryMs);
  const progress = setInterval(() => log(`${Math.round((Date.now() - t0) / 1000)} s: ${acked} acked, ${counters.delivered} delivered, ${counters.lost} lost, ${churn.sessionResumes + churn.sinceResumes} reconnects, ${counters.serverCloses} shed, ${jobs.size} jobs`), 30_000);

  await Promise.all(publishers);
  clearInterval(churner);
  if (submitter !== undefined) clearInterval(submitter);
  clearInterval(sampler);
  clearInterval(progress);
  await takeSample();
  loop.disable();

  // Drain: every subscriber must reach the last acked seq of every channel; every job an end.
  const drainDeadline = Date.now() + 60_000;
  const behind = () => subs.some((s) => s.conn === undefined || s.busy || channels.some((ch) => (s.last.get(ch) ?? 0) < (maxAcked.get(ch) ?? 0)));
  while (Date.now() < drainDeadline && (behind() || [...jobs.values()].some((j) => j.terminal.size === 0))) await new Promise((r) => setTimeout(r, 200));
  let shortfall = 0;
  for (const s of subs) for (const ch of channels) shortfall += Math.max(0, (maxAcked.get(ch) ?? 0) - (s.last.get(ch) ?? 0));
  const endFigures = target.redisFigures();
  for (const s of subs) s.busy = true;
  await Promise.all(subs.map((s) => s.drop(true)));
  for (const w of watchers) w.ws.close();

  const terminals = [...jobs.values()].map((j) => [...j.terminal.values()]);
  const report: SoakReport = {
    durationS: Math.round((Date.now() - t0) / 1000),
    options: { ...options, log: undefined } as Omit<SoakOptions, 'log'>,
    ...summarise(samples, options.durationMs),
    redis: {
      keysStart: samples[0]!.redis.keys,
      keysEnd: endFigures.keys,
      usedMemoryStartMb: round(samples[0]!.redis.usedMemoryBytes / MB),
      usedMemoryEndMb: round(endFigures.usedMemoryBytes / MB),
    },
    events: { acked, degradedAcks, delivered: counters.delivered, lost: counters.lost + shortfall, duplicates: counters.duplicates, outOfOrder: counters.outOfOrder, recoveredFalse: counters.recoveredFalse },
    churn: { ...churn, serverCloses: counters.serverCloses },
    jobs: {
      submitted: jobs.size,
      completed: terminals.filter((t) => t[0] === 'job.completed').length,
      failed: terminals.filter((t) => t[0] === 'job.failed').length,
      finishedTwice: terminals.filter((t) => t.length > 1).length,
      unfinished: terminals.filter((t) => t.length === 0).length,
    },
    samples,
  };
  if (report.events.lost > 0) report.failures.push(`${report.events.lost} events acked with a seq never reached a subscriber`);
  if (report.events.duplicates > 0) report.failures.push(`${report.events.duplicates} events delivered twice`);
  if (report.jobs.finishedTwice > 0) report.failures.push(`${report.jobs.finishedTwice} jobs finished twice`);
  if (report.jobs.unfinished > 0) report.failures.push(`${report.jobs.unfinished} jobs never finished`);
  if (jobErrors.length > 0) report.failures.push(`${jobErrors.length} job submissions failed: ${jobErrors[0]}`);
  return report;
}

/** The report as Markdown, for RELIABILITY.md and the console. */
export function renderSoak(r: SoakReport): string {
  const lines = [
    `Soak: ${r.durationS} s, ${r.options.subscribersPerEdge} subscribers per edge on ${r.options.channels} channels, one publish per ${r.options.publishEveryMs} ms per edge, ${r.options.churnPerS} reconnects/s, a job per ${r.options.jobEveryMs} ms.`,
    '',
    '| process | RSS start → end (MB) | RSS slope (MB/h) | heap start → end (MB) | heap slope (MB/h) | heap trough Q2 → Q4 (MB) | open fds start → end | event-loop p99 by quarter (ms) |',
    '|---|---|---|---|---|---|---|---|',
    ...Object.entries(r.nodes).map(
      ([name, n]) =>
        `| ${name} | ${n.rssStartMb} → ${n.rssEndMb} | ${n.rssSlopeMbPerH} | ${n.heapStartMb} → ${n.heapEndMb} | ${n.heapSlopeMbPerH} | ${n.heapTroughQ2Mb} → ${n.heapTroughQ4Mb} | ${n.fdsStart} → ${n.fdsEnd} | ${n.eventLoopP99MsByQuarter.join(' / ')} |`,
    ),
    '',
    `Redis: ${r.redis.keysStart} → ${r.redis.keysEnd} keys, ${r.redis.usedMemoryStartMb} → ${r.redis.usedMemoryEndMb} MB used.`,
    `Events: ${r.events.acked} acked with a seq (${r.events.degradedAcks} without), ${r.events.delivered} deliveries, ${r.events.lost} lost, ${r.events.duplicates} duplicates, ${r.events.recoveredFalse} recovered:false.`,
    `Churn: ${r.churn.sessionResumes} session resumes (${r.churn.sessionResumesNotResumed} not resumed), ${r.churn.sinceResumes} since-resumes, ${r.churn.reconnectFailures} failed reconnects, ${r.churn.serverCloses} closes by a node shedding load (followed by a session resume).`,
    `Jobs: ${r.jobs.submitted} submitted, ${r.jobs.completed} completed, ${r.jobs.failed} failed, ${r.jobs.finishedTwice} finished twice, ${r.jobs.unfinished} unfinished.`,
    r.failures.length === 0 ? 'Verdict: no leak, nothing lost.' : `Verdict: FAILED — ${r.failures.join('; ')}`,
  ];
  return lines.join('\n');
}
