import { MemoryBroker } from '@switchyard/broker';
import { MemoryRegistry, MemorySessionStore, type WorkerRegistry } from '@switchyard/sessions';
import { pino } from 'pino';
import type { Claims } from '../src/auth.js';
import { loadEdgeConfig, type EdgeConfig, type EdgeSettings } from '../src/config.js';
import { Connection, type ClientSocket, type SocketData } from '../src/connection.js';
import type { Topics } from '../src/hub.js';
import { EdgeMetrics } from '../src/metrics.js';

/** uWS's topic fan-out in miniature: what a fake socket subscribed to, it receives. */
export class FakeTopics implements Topics {
  readonly members = new Map<string, Set<FakeSocket>>();
  published = 0;

  publish(topic: string, message: string): boolean {
    this.published++;
    for (const socket of this.members.get(topic) ?? []) socket.send(message);
    return true;
  }

  numSubscribers(topic: string): number {
    return this.members.get(topic)?.size ?? 0;
  }
}

/** A client socket that records what it was sent; `buffered` plays the socket's backlog. */
export class FakeSocket implements ClientSocket {
  readonly sent: string[] = [];
  readonly topics = new Set<string>();
  buffered = 0;
  ended: { code: number | undefined; reason: string | undefined } | undefined;
  readonly #data: SocketData;

  constructor(
    readonly conn: Connection,
    readonly fanout: FakeTopics,
  ) {
    this.#data = { conn };
    conn.ws = this;
  }

  send(frame: string): boolean {
    this.sent.push(frame);
    return true;
  }
  cork(cb: () => void): void {
    cb();
  }
  subscribe(channel: string): boolean {
    this.topics.add(channel);
    let set = this.fanout.members.get(channel);
    if (set === undefined) this.fanout.members.set(channel, (set = new Set()));
    set.add(this);
    return true;
  }
  unsubscribe(channel: string): boolean {
    this.topics.delete(channel);
    this.fanout.members.get(channel)?.delete(this);
    return true;
  }
  getBufferedAmount(): number {
    return this.buffered;
  }
  end(code?: number, reason?: string): void {
    this.ended = { code, reason };
  }
  close(): void {}
  ping(): void {}
  getUserData(): SocketData {
    return this.#data;
  }

  /** The parsed frames sent, of one type when given. */
  frames(type?: string): Record<string, unknown>[] {
    const all = this.sent.map((s) => JSON.parse(s) as Record<string, unknown>);
    return type === undefined ? all : all.filter((f) => f['type'] === type);
  }

  /** Seqs of the `event` frames sent, in order. */
  seqs(): number[] {
    return this.frames('event').map((f) => f['seq'] as number);
  }
}

export function testConfig(overrides: Partial<EdgeSettings> = {}): EdgeConfig {
  return loadEdgeConfig({}, { jwtSecret: 'x'.repeat(32), logLevel: 'silent', workerId: 'w1', ...overrides });
}

export function claimsFor(sub: string, channels: string[] = ['*']): Claims {
  return { sub, exp: Math.floor(Date.now() / 1000) + 3600, permissions: [], channels, publish: channels };
}

/** A ready connection of `sub` on a fake socket. */
export function readyClient(fanout: FakeTopics, sub = 'u1'): { conn: Connection; socket: FakeSocket } {
  const conn = new Connection('127.0.0.1', 100, claimsFor(sub));
  conn.claims = conn.upgradeClaims;
  conn.state = 'ready';
  const socket = new FakeSocket(conn, fanout);
  return { conn, socket };
}

export function services(config: EdgeConfig = testConfig()) {
  return {
    config,
    log: pino({ level: 'silent' }),
    metrics: new EdgeMetrics(config.workerId),
    broker: new MemoryBroker(),
    sessions: new MemorySessionStore(3600),
    registry: new MemoryRegistry(config.workerId) as WorkerRegistry,
    conns: new Set<Connection>(),
  };
}

/** Resolves once `cond` holds; fails after `ms`. */
export async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    // sleep-ok: the poll interval of a bounded wait on a condition
    await new Promise((r) => setTimeout(r, 5));
  }
}
