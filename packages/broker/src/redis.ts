import { eventPrefix, eventSuffix } from '@switchyard/protocol';
import {
  DEFAULT_HISTORY_SIZE,
  DEFAULT_HISTORY_TTL_S,
  type Broker,
  type BrokerEvent,
  type BrokerHealth,
  type BrokerListener,
  type BrokerOptions,
  type ChannelPosition,
  type HistoryPage,
  type PublishRequest,
  type PublishTarget,
  type ResetListener,
  type SignalListener,
} from './broker.js';
import { BrokerUnavailableError } from './errors.js';
import { newEpoch } from './memory.js';
import { Cluster, type Redis } from 'ioredis';
import { createRedisClients, type Client } from './redis-clients.js';
import { historyScript, publishScript } from './scripts.js';

const DEFAULT_HEALTH_INTERVAL_MS = 2000;
/** After the last local subscriber leaves, how long before UNSUBSCRIBE: absorbs churn. */
const UNSUBSCRIBE_DELAY_MS = 1000;
const MAX_PENDING_DURING_FILL = 100_000;
const CATCH_UP_SECOND_PASS_MS = 1000;
const RESUBSCRIBE_ATTEMPTS = 10;

export interface BrokerLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface RedisBrokerOptions extends BrokerOptions {
  /** `redis://host:port/db`; ignored when `clusterNodes` is given. */
  url?: string;
  /** Redis Cluster seeds, `host:port`: sharded pub/sub (SSUBSCRIBE/SPUBLISH). */
  clusterNodes?: readonly string[];
  /**
   * Prefix of every key and pub/sub channel.
   * @default "sy"
   */
  prefix?: string;
  /** This node's id: its inbox channel for direct messages. */
  nodeId?: string;
  /** @default 2000 */
  commandTimeoutMs?: number;
  /** @default 2000 */
  healthIntervalMs?: number;
  logger?: BrokerLogger;
}

interface ChannelSub {
  refs: number;
  /** Resolves once Redis confirmed the subscription. */
  ready: Promise<void>;
  /** Last seq handed to the listener, and its epoch; 0/undefined until the first event. */
  last: number;
  epoch: string | undefined;
  /** Set while a gap is being filled from history; live events wait in `pending`. */
  filling: boolean;
  pending: BrokerEvent[];
  unsubscribeTimer: NodeJS.Timeout | undefined;
}

interface Deferred {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

const NOOP_LOGGER: BrokerLogger = { warn() {}, info() {}, debug() {} };

/**
 * The cluster broker: seqs and history in Redis, fan-out over Redis pub/sub (sharded on a
 * Redis Cluster). Pub/sub is at-most-once, so each channel's delivery is checked against
 * its seq: a gap (a lost message, a reconnect after Redis restarted) is filled from history
 * before later events are passed on, and where history no longer has it the listener is
 * told with a reset.
 */
export class RedisBroker implements Broker {
  readonly kind = 'redis';
  readonly #cmd: Client;
  readonly #sub: Client;
  readonly #sharded: boolean;
  readonly #prefix: string;
  readonly #historySize: number;
  readonly #ttlS: number;
  readonly #log: BrokerLogger;
  readonly #channels = new Map<string, ChannelSub>();
  #listener: BrokerListener = () => {};
  #resetListener: ResetListener = () => {};
  #inboxListener: (payload: string) => void = () => {};
  readonly #inbox: string | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  #latencyMs: number | null = null;
  #healthy = false;
  /** True once the subscriber connection dropped; the next `ready` triggers a catch-up. */
  #subLost = false;
  #closing: Promise<void> | undefined;

  constructor(options: RedisBrokerOptions) {
    this.#prefix = options.prefix ?? 'sy';
    this.#historySize = options.historySize ?? DEFAULT_HISTORY_SIZE;
    this.#ttlS = options.historyTtlS ?? DEFAULT_HISTORY_TTL_S;
    this.#log = options.logger ?? NOOP_LOGGER;
    const clients = createRedisClients(options);
    this.#cmd = clients.cmd;
    this.#sub = clients.sub;
    this.#sharded = clients.sharded;
    for (const client of [this.#cmd, this.#sub]) {
      publishScript.define(client);
      historyScript.define(client);
      // ioredis prints unhandled 'error' events to the console; route them to our logger once.
      client.on('error', (err: Error) => this.#log.debug({ err }, 'redis connection error'));
    }
    this.#sub.on(this.#sharded ? 'smessageBuffer' : 'messageBuffer', (channel: Buffer, message: Buffer) => this.#onMessage(channel, message));
    if (options.nodeId !== undefined) {
      this.#inbox = this.#inboxChannel(options.nodeId);
      void this.#subscribeInbox(this.#inbox);
    }
    for (const client of [this.#cmd, this.#sub]) {
      client.on('ready', () => void this.#checkHealth());
      client.on('close', () => {
        this.#healthy = false;
      });
    }
    this.#sub.on('close', () => {
      if (!this.#subLost) this.#log.warn({}, 'redis subscriber connection lost');
      this.#subLost = true;
    });
    this.#sub.on('ready', () => {
      if (!this.#subLost) return;
      this.#subLost = false;
      void this.#catchUp();
    });
    if (this.#sharded) {
      // The slot map changed (a failover, a slot move) and the shard subscribers were set up
      // again: make sure of every subscription, then take what was published while the old
      // owner no longer delivered from history.
      this.#sub.on('subscribersReady', () => void this.#catchUp());
    }
    this.#healthTimer = setInterval(() => void this.#checkHealth(), options.healthIntervalMs ?? DEFAULT_HEALTH_INTERVAL_MS);
    this.#healthTimer.unref();
    void this.#checkHealth();
  }

  /** Resolves once both connections are up; rejects after `timeoutMs`. */
  async ready(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.#cmd.status === 'ready' && this.#sub.status === 'ready') {
        await this.#checkHealth();
        return;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new BrokerUnavailableError(`Redis not reachable within ${timeoutMs} ms (REDIS_URL / REDIS_CLUSTER_NODES)`);
  }

  setListener(listener: BrokerListener): void {
    this.#listener = listener;
  }

  onReset(listener: ResetListener): void {
    this.#resetListener = listener;
  }

  #inboxChannel(nodeId: string): string {
    return `${this.#prefix}:inbox:{${nodeId}}`;
  }

  /** Retries until subscribed: a node without its inbox would silently miss direct messages. */
  async #subscribeInbox(name: string): Promise<void> {
    for (let attempt = 0; this.#closing === undefined; attempt++) {
      try {
        await this.#subscribeRaw(name);
        return;
      } catch (err) {
        if (attempt % 10 === 0) this.#log.warn({ err }, 'inbox subscribe failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 2000)));
      }
    }
  }

  /**
   * Subscriptions asked for in the same tick go out as one SUBSCRIBE (one UNSUBSCRIBE),
   * so a burst of new channels costs one round trip. Shard channels of different slots
   * cannot share a command: on a Redis Cluster each goes alone.
   */
  #subscribeRaw(name: string): Promise<unknown> {
    if (this.#sharded) return (this.#sub as Cluster).ssubscribe(name);
    return this.#batch('subscribe', name);
  }

  #unsubscribeRaw(name: string): Promise<unknown> {
    if (this.#sharded) return (this.#sub as Cluster).sunsubscribe(name);
    return this.#batch('unsubscribe', name);
  }

  readonly #batches = { subscribe: new Map<string, Deferred[]>(), unsubscribe: new Map<string, Deferred[]>() };
  #flushScheduled = false;

  #batch(kind: 'subscribe' | 'unsubscribe', name: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const waiting = this.#batches[kind].get(name);
      if (waiting !== undefined) waiting.push({ resolve, reject });
      else this.#batches[kind].set(name, [{ resolve, reject }]);
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flushBatches());
      }
    });
  }

  #flushBatches(): void {
    this.#flushScheduled = false;
    const sub = this.#sub as Redis;
    for (const kind of ['subscribe', 'unsubscribe'] as const) {
      const batch = this.#batches[kind];
      if (batch.size === 0) continue;
      const names = [...batch.keys()];
      const waiters = [...batch.values()].flat();
      batch.clear();
      const sent = kind === 'subscribe' ? sub.subscribe(...names) : sub.unsubscribe(...names);
      sent.then(
        (v) => waiters.forEach((w) => w.resolve(v)),
        (err: unknown) => waiters.forEach((w) => w.reject(err)),
      );
    }
  }

  async sendToNode(nodeId: string, payload: string): Promise<void> {
    const name = this.#inboxChannel(nodeId);
    try {
      if (this.#sharded) await (this.#cmd as Cluster).spublish(name, payload);
      else await (this.#cmd as Redis).publish(name, payload);
    } catch (err) {
      throw new BrokerUnavailableError(`message to node ${nodeId} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  onNodeMessage(listener: (payload: string) => void): void {
    this.#inboxListener = listener;
  }

  #signalListener: SignalListener = () => {};

  onSignal(listener: SignalListener): void {
    this.#signalListener = listener;
  }

  async signal(channel: string, frame: string): Promise<void> {
    const pubsub = this.#keys(channel)[2];
    try {
      if (this.#sharded) await (this.#cmd as Cluster).spublish(pubsub, `~${frame}`);
      else await (this.#cmd as Redis).publish(pubsub, `~${frame}`);
    } catch (err) {
      throw new BrokerUnavailableError(`signal to ${channel} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  #keys(channel: string): [meta: string, hist: string, pubsub: string] {
    const tag = `${this.#prefix}:{${channel}}`;
    return [`${tag}:m`, `${tag}:h`, tag];
  }

  /**
   * Where and how an event of `channel` is published, for a script of another package that
   * embeds PUBLISH_FUNCTION_LUA to publish in the same atomic step as its own writes (a job's
   * status transition). Its keys share the channel's hash tag, so on a Redis Cluster a key
   * hashing like the channel name (the job hash `job:<id>` for channel `job:<id>`) lives in
   * the same slot.
   */
  publishTarget(channel: string): PublishTarget {
    const [meta, hist, pubsub] = this.#keys(channel);
    return { meta, hist, pubsub, prefix: eventPrefix(channel), historySize: this.#historySize, ttlS: this.#ttlS, sharded: this.#sharded, newEpoch };
  }

  async publish({ channel, event, dataJson, coalesce }: PublishRequest): Promise<BrokerEvent> {
    const now = Date.now();
    const [meta, hist, pubsub] = this.#keys(channel);
    const prefix = eventPrefix(channel);
    const suffix = eventSuffix(event, dataJson, now, coalesce);
    let result: [number, string];
    try {
      result = await publishScript.call(this.#cmd, {
        meta,
        hist,
        prefix,
        suffix,
        newEpoch: newEpoch(),
        historySize: this.#historySize,
        ttlS: this.#ttlS,
        pubsub,
        nowMs: now,
        sharded: this.#sharded ? 1 : 0,
      });
    } catch (err) {
      throw new BrokerUnavailableError(`publish to ${channel} failed: ${(err as Error).message}`, { cause: err });
    }
    const seq = Number(result[0]);
    return { channel, seq, frame: prefix + seq + suffix, publishedAt: now };
  }

  async subscribe(channel: string): Promise<void> {
    let st = this.#channels.get(channel);
    if (st !== undefined) {
      st.refs++;
      if (st.unsubscribeTimer !== undefined) {
        clearTimeout(st.unsubscribeTimer);
        st.unsubscribeTimer = undefined;
      }
      return st.ready;
    }
    const pubsub = this.#keys(channel)[2];
    const ready = this.#subscribeRaw(pubsub).then(
      () => undefined,
    );
    st = { refs: 1, ready, last: 0, epoch: undefined, filling: false, pending: [], unsubscribeTimer: undefined };
    this.#channels.set(channel, st);
    // A rejection nobody awaits yet (the caller below may have given up) is not unhandled.
    ready.catch(() => undefined);
    try {
      // The subscriber connection queues its SUBSCRIBE while Redis is away; the position read
      // (command connection, no offline queue) fails fast then, so the caller hears at once
      // instead of waiting for Redis. Read alongside the SUBSCRIBE it is a lower bound of where
      // the channel stood when listening started: at worst the first live event looks like a
      // gap and is filled from history, never one missed.
      const [, position] = await Promise.all([ready, this.position(channel)]);
      if (st.last === 0 && st.epoch === undefined) {
        st.last = position.seq;
        st.epoch = position.epoch;
      }
    } catch (err) {
      if (this.#channels.get(channel) === st && st.refs <= 1) {
        this.#channels.delete(channel);
        const pubsub = this.#keys(channel)[2];
        this.#unsubscribeRaw(pubsub).catch(() => undefined);
      } else {
        st.refs--;
      }
      throw new BrokerUnavailableError(`subscribe to ${channel} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  unsubscribe(channel: string): void {
    const st = this.#channels.get(channel);
    if (st === undefined) return;
    if (--st.refs > 0) return;
    st.unsubscribeTimer = setTimeout(() => {
      if (st.refs > 0 || this.#channels.get(channel) !== st) return;
      this.#channels.delete(channel);
      const pubsub = this.#keys(channel)[2];
      this.#unsubscribeRaw(pubsub).catch((err: Error) => this.#log.debug({ err, channel }, 'unsubscribe failed'));
    }, UNSUBSCRIBE_DELAY_MS);
    st.unsubscribeTimer.unref();
  }

  async position(channel: string): Promise<ChannelPosition> {
    const page = await this.#history(channel, -1);
    return { seq: page.seq, epoch: page.epoch };
  }

  async history(channel: string, since: number, limit?: number): Promise<HistoryPage> {
    return this.#history(channel, since, limit);
  }

  delivered(channel: string): ChannelPosition | undefined {
    const st = this.#channels.get(channel);
    return st === undefined || st.epoch === undefined ? undefined : { seq: st.last, epoch: st.epoch };
  }

  async #history(channel: string, since: number, limit = 0): Promise<HistoryPage> {
    const [meta, hist] = this.#keys(channel);
    let raw: [number, string, number, (string | Buffer)[]];
    try {
      raw = await historyScript.call(this.#cmd, { meta, hist, since, newEpoch: newEpoch(), ttlS: this.#ttlS, limit: Number.isFinite(limit) ? limit : 0 });
    } catch (err) {
      throw new BrokerUnavailableError(`history of ${channel} failed: ${(err as Error).message}`, { cause: err });
    }
    const seq = Number(raw[0]);
    const epoch = String(raw[1]);
    const first = Number(raw[2]);
    const frames = raw[3];
    // Frames run from the first retained seq after `since` (a page may stop before `seq`).
    const start = Math.max(since + 1, first);
    const events: BrokerEvent[] = frames.map((f, i) => ({ channel, seq: start + i, frame: String(f), publishedAt: 0 }));
    const recovered = since < 0 ? true : since === seq || (since < seq && first > 0 && first <= since + 1);
    return { seq, epoch, events, recovered };
  }

  #onMessage(rawChannel: Buffer, message: Buffer): void {
    // `<prefix>:{<channel>}`
    const name = rawChannel.toString();
    if (name === this.#inbox) {
      this.#inboxListener(message.toString());
      return;
    }
    const channel = name.slice(this.#prefix.length + 2, -1);
    const st = this.#channels.get(channel);
    if (st === undefined) return;
    const text = message.toString();
    // `~<frame>`: a frame without a seq (presence join/leave), outside the seq check.
    if (text.charCodeAt(0) === 126) {
      this.#signalListener(channel, text.slice(1));
      return;
    }
    const a = text.indexOf(':');
    const b = text.indexOf(':', a + 1);
    const c = text.indexOf(':', b + 1);
    if (a < 0 || b < 0 || c < 0) return;
    const event: BrokerEvent = { channel, seq: Number(text.slice(0, a)), publishedAt: Number(text.slice(a + 1, b)), frame: text.slice(c + 1) };
    const epoch = text.slice(b + 1, c);
    if (st.filling) {
      if (st.pending.length < MAX_PENDING_DURING_FILL) st.pending.push(event);
      return;
    }
    this.#accept(channel, st, event, epoch);
  }

  #accept(channel: string, st: ChannelSub, event: BrokerEvent, epoch: string): void {
    if (st.epoch !== undefined && epoch !== st.epoch) {
      // History was reset (expired, or Redis lost its data): seqs started over.
      st.epoch = epoch;
      st.last = 0;
      this.#resetListener(channel, { seq: event.seq, epoch });
    }
    if (st.epoch === undefined) {
      // Before the subscribe learned the channel's position there is nothing to check against.
      st.epoch = epoch;
      st.last = event.seq;
      this.#listener(event);
      return;
    }
    if (event.seq <= st.last) return;
    if (event.seq > st.last + 1) {
      st.pending.push(event);
      void this.#fill(channel, st);
      return;
    }
    st.last = event.seq;
    this.#listener(event);
  }

  /**
   * After the subscriber reconnected: make sure every channel is subscribed again (and
   * acknowledged) before reading history, so nothing published in between falls through;
   * then a second pass shortly after for anything that raced the first.
   */
  async #catchUp(): Promise<void> {
    this.#log.info({ channels: this.#channels.size }, 'redis subscriptions renewed (reconnect or new slot map); catching up from history');
    const names = [...this.#channels.keys()].map((ch) => this.#keys(ch)[2]);
    if (this.#inbox !== undefined) names.push(this.#inbox);
    await Promise.all(names.map((name) => this.#resubscribe(name)));
    this.#refillAll();
  }

  /**
   * Subscribes again, retrying: right after a failover the new owner of a slot may still
   * answer MOVED, and the client library does not retry its own resubscribe.
   */
  async #resubscribe(name: string): Promise<void> {
    for (let attempt = 1; this.#closing === undefined; attempt++) {
      try {
        await this.#subscribeRaw(name);
        return;
      } catch (err) {
        if (attempt >= RESUBSCRIBE_ATTEMPTS) {
          this.#log.warn({ err: (err as Error).message, channel: name }, 'resubscribe failed; the next event or topology change tries again');
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  /** Fills every channel from history now, and once more shortly after for what raced it. */
  #refillAll(): void {
    if (this.#closing !== undefined) return;
    for (const [channel, st] of this.#channels) void this.#fill(channel, st);
    const again = setTimeout(() => {
      for (const [channel, st] of this.#channels) void this.#fill(channel, st);
    }, CATCH_UP_SECOND_PASS_MS);
    again.unref();
  }

  /** Delivers, in order, what history holds after `st.last`, then what arrived meanwhile. */
  async #fill(channel: string, st: ChannelSub): Promise<void> {
    if (st.filling || st.epoch === undefined) return;
    st.filling = true;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          let page = await this.#history(channel, st.last);
          if (this.#channels.get(channel) !== st) return;
          if (st.epoch !== undefined && page.epoch !== st.epoch) {
            st.epoch = page.epoch;
            st.last = 0;
            this.#resetListener(channel, { seq: page.seq, epoch: page.epoch });
            // That page was read after the old epoch's position: the new epoch's first events
            // (published before this node listened again) would be skipped. Read it from its start.
            page = await this.#history(channel, 0);
            if (this.#channels.get(channel) !== st) return;
          } else if (!page.recovered) {
            this.#resetListener(channel, { seq: page.seq, epoch: page.epoch });
          }
          for (const e of page.events) {
            if (e.seq > st.last) {
              st.last = e.seq;
              this.#listener(e);
            }
          }
          break;
        } catch (err) {
          if (attempt >= 50 || this.#closing !== undefined) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } catch (err) {
      this.#log.warn({ err, channel }, 'history catch-up failed');
    } finally {
      st.filling = false;
      const pending = st.pending.splice(0);
      for (const e of pending) this.#accept(channel, st, e, st.epoch ?? '');
    }
  }

  async #checkHealth(): Promise<void> {
    const started = performance.now();
    try {
      if (this.#cmd.status !== 'ready' && !(this.#cmd instanceof Cluster)) throw new Error(this.#cmd.status);
      await this.#cmd.ping();
      this.#latencyMs = Math.round((performance.now() - started) * 100) / 100;
      this.#healthy = this.#sub.status === 'ready';
    } catch {
      this.#latencyMs = null;
      this.#healthy = false;
    }
  }

  health(): BrokerHealth {
    return { healthy: this.#healthy, status: this.#healthy ? 'ok' : 'down', latencyMs: this.#latencyMs };
  }

  /** The command connection, shared with the session store and registry of the same node. */
  get client(): Client {
    return this.#cmd;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#healthTimer);
      for (const st of this.#channels.values()) clearTimeout(st.unsubscribeTimer);
      this.#channels.clear();
      await Promise.allSettled([this.#cmd.quit(), this.#sub.quit()]);
      this.#cmd.disconnect();
      this.#sub.disconnect();
    })();
    return this.#closing;
  }
}
