import { randomBytes } from 'node:crypto';
import { encodeEvent } from '@switchyard/protocol';
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
  type SignalListener,
} from './broker.js';

/** How often expired channel histories are reclaimed. */
const SWEEP_INTERVAL_MS = 30_000;

interface ChannelState {
  seq: number;
  epoch: string;
  /** Ring buffer of the last `historySize` events. */
  ring: (BrokerEvent | undefined)[];
  expiresAt: number;
}

const HEALTHY: BrokerHealth = { healthy: true, status: 'ok', latencyMs: 0 };

export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/** A single node's broker: seqs, history and delivery all in this process. */
export class MemoryBroker implements Broker {
  readonly kind = 'memory';
  readonly #historySize: number;
  readonly #ttlMs: number;
  readonly #channels = new Map<string, ChannelState>();
  readonly #interest = new Map<string, number>();
  #listener: BrokerListener = () => {};
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: BrokerOptions = {}) {
    this.#historySize = options.historySize ?? DEFAULT_HISTORY_SIZE;
    this.#ttlMs = (options.historyTtlS ?? DEFAULT_HISTORY_TTL_S) * 1000;
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
  }

  setListener(listener: BrokerListener): void {
    this.#listener = listener;
  }

  /** One process never loses an event between publish and delivery: nothing to report. */
  onReset(): void {}

  #inbox: (payload: string) => void = () => {};

  /** A lone node's only inbox is its own. */
  async sendToNode(_nodeId: string, payload: string): Promise<void> {
    this.#inbox(payload);
  }

  onNodeMessage(listener: (payload: string) => void): void {
    this.#inbox = listener;
  }

  #signal: SignalListener = () => {};

  onSignal(listener: SignalListener): void {
    this.#signal = listener;
  }

  async signal(channel: string, frame: string): Promise<void> {
    if ((this.#interest.get(channel) ?? 0) > 0) this.#signal(channel, frame);
  }

  async publish(request: PublishRequest): Promise<BrokerEvent> {
    return this.publishSync(request);
  }

  /** Synchronous publish: in one process there is nothing to wait for. */
  publishSync({ channel, event, dataJson, coalesce }: PublishRequest): BrokerEvent {
    if (this.#closed) throw new Error('broker is closed');
    const now = Date.now();
    const state = this.#state(channel, now);
    const seq = ++state.seq;
    state.expiresAt = now + this.#ttlMs;
    const published: BrokerEvent = { channel, seq, frame: encodeEvent(channel, seq, event, dataJson, now, coalesce), publishedAt: now };
    if (this.#historySize > 0) state.ring[seq % this.#historySize] = published;
    if (this.#interest.has(channel)) this.#listener(published);
    return published;
  }

  async subscribe(channel: string): Promise<void> {
    this.#interest.set(channel, (this.#interest.get(channel) ?? 0) + 1);
  }

  unsubscribe(channel: string): void {
    const count = this.#interest.get(channel);
    if (count === undefined) return;
    if (count <= 1) this.#interest.delete(channel);
    else this.#interest.set(channel, count - 1);
  }

  async position(channel: string): Promise<ChannelPosition> {
    const state = this.#state(channel, Date.now());
    return { seq: state.seq, epoch: state.epoch };
  }

  /** Events are handed to the listener as they are published: delivered is where the channel stands. */
  delivered(channel: string): ChannelPosition | undefined {
    return this.#interest.has(channel) ? this.positionSync(channel) : undefined;
  }

  /** The position, synchronously: a job store in the same process stamps its status with it. */
  positionSync(channel: string): ChannelPosition {
    const state = this.#state(channel, Date.now());
    return { seq: state.seq, epoch: state.epoch };
  }

  async history(channel: string, since: number, limit = Infinity): Promise<HistoryPage> {
    const state = this.#state(channel, Date.now());
    const { seq, epoch } = state;
    if (since >= seq) return { seq, epoch, events: [], recovered: since === seq };
    const oldest = Math.max(1, seq - this.#historySize + 1);
    const from = Math.max(since + 1, oldest);
    const events: BrokerEvent[] = [];
    for (let s = from; s <= seq && events.length < limit; s++) {
      const e = state.ring[s % this.#historySize];
      if (e !== undefined && e.seq === s) events.push(e);
    }
    const recovered = events.length > 0 ? events[0]!.seq === since + 1 : false;
    return { seq, epoch, events, recovered };
  }

  async ready(): Promise<void> {}

  health(): BrokerHealth {
    return HEALTHY;
  }

  /** Channels with retained state, for /stats. */
  get channelCount(): number {
    return this.#channels.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#channels.clear();
    this.#interest.clear();
  }

  #state(channel: string, now: number): ChannelState {
    let state = this.#channels.get(channel);
    if (state !== undefined && state.expiresAt <= now && state.seq > 0) {
      // History expired: like a Redis key with a TTL, the channel starts over in a new epoch.
      state = undefined;
    }
    if (state === undefined) {
      // The ring grows as events arrive, so a channel that is only ever subscribed to stays small.
      state = { seq: 0, epoch: newEpoch(), ring: [], expiresAt: now + this.#ttlMs };
      this.#channels.set(channel, state);
    }
    return state;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [channel, state] of this.#channels) {
      if (state.expiresAt <= now && !this.#interest.has(channel)) this.#channels.delete(channel);
    }
  }
}
