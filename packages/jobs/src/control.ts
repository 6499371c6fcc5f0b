import type { Cluster, Redis } from 'ioredis';
import type { JobLogger } from './logger.js';
import { NOOP_LOGGER } from './logger.js';

/**
 * The control plane between edges and runners: "stop job X wherever it runs". Delivery is
 * best-effort (pub/sub); runners also see a cancel in the status hash when they renew their
 * lease, so a lost message delays a cancel by at most a lease renewal, never loses it.
 */
export interface JobControl {
  requestCancel(jobId: string): Promise<void>;
  onCancel(listener: (jobId: string) => void): void;
  close(): Promise<void>;
}

/** Version of the control messages, so old and new runners can share a channel. */
const CONTROL_VERSION = 1;
/** The pub/sub channel; not a valid client channel name, so no WebSocket client can reach it. */
export const DEFAULT_CONTROL_CHANNEL = 'sy#jobs:control';

interface ControlMessage {
  v: number;
  type: 'cancel';
  job_id: string;
}

function decode(text: string): ControlMessage | undefined {
  try {
    const m = JSON.parse(text) as Partial<ControlMessage>;
    if (m.v === CONTROL_VERSION && m.type === 'cancel' && typeof m.job_id === 'string') return m as ControlMessage;
  } catch {
    /* not ours */
  }
  return undefined;
}

/** In one process (`switchyard dev`): listeners are called directly. */
export class MemoryJobControl implements JobControl {
  readonly #listeners: ((jobId: string) => void)[] = [];

  async requestCancel(jobId: string): Promise<void> {
    for (const l of this.#listeners) l(jobId);
  }

  onCancel(listener: (jobId: string) => void): void {
    this.#listeners.push(listener);
  }

  async close(): Promise<void> {
    this.#listeners.length = 0;
  }
}

/**
 * Over Redis pub/sub (plain PUBLISH/SUBSCRIBE, which a Redis Cluster also carries to every
 * node). Publishes on the given command connection; subscribes, only when someone listens,
 * on a duplicate of it that this object owns.
 */
export class RedisJobControl implements JobControl {
  readonly #client: Redis | Cluster;
  readonly #channel: string;
  readonly #log: JobLogger;
  readonly #listeners: ((jobId: string) => void)[] = [];
  #sub: Redis | Cluster | undefined;
  #closing: Promise<void> | undefined;

  constructor(client: Redis | Cluster, options: { channel?: string; logger?: JobLogger } = {}) {
    this.#client = client;
    this.#channel = options.channel ?? DEFAULT_CONTROL_CHANNEL;
    this.#log = options.logger ?? NOOP_LOGGER;
  }

  async requestCancel(jobId: string): Promise<void> {
    const message: ControlMessage = { v: CONTROL_VERSION, type: 'cancel', job_id: jobId };
    await this.#client.publish(this.#channel, JSON.stringify(message));
  }

  onCancel(listener: (jobId: string) => void): void {
    this.#listeners.push(listener);
    if (this.#sub !== undefined) return;
    const sub = this.#client.duplicate();
    this.#sub = sub;
    sub.on('error', (err: Error) => this.#log.debug({ err }, 'job control connection error'));
    sub.on('message', (channel: string, text: string) => {
      if (channel !== this.#channel) return;
      const m = decode(text);
      if (m === undefined) return;
      for (const l of this.#listeners) {
        try {
          l(m.job_id);
        } catch (err) {
          this.#log.warn({ err }, 'cancel listener failed');
        }
      }
    });
    // ioredis re-subscribes by itself after a reconnect.
    sub.subscribe(this.#channel).catch((err: Error) => this.#log.warn({ err }, 'job control subscribe failed'));
  }

  /** Resolves once the subscription is in place (tests and start-up use it). */
  async ready(timeoutMs = 10_000): Promise<void> {
    const sub = this.#sub;
    if (sub === undefined) return;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (sub.status === 'ready') {
        await sub.subscribe(this.#channel);
        return;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`job control channel not subscribed within ${timeoutMs} ms`);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#listeners.length = 0;
      const sub = this.#sub;
      if (sub === undefined) return;
      await sub.quit().catch(() => undefined);
      sub.disconnect();
    })();
    return this.#closing;
  }
}
