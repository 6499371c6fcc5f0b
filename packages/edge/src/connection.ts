import { randomBytes } from 'node:crypto';
import type { BrokerEvent } from '@switchyard/broker';
import type { Claims } from './auth.js';
import { internClaims } from './claims-intern.js';
import type { ExpiryWheel, Expiring } from './expiry-wheel.js';
import type { SessionRecord } from '@switchyard/sessions';
import type { SlowLane } from './coalesce.js';
import { ReplayGate } from './replay.js';

export type ConnState = 'pending' | 'authenticating' | 'ready' | 'closed';

/** Events that arrive for a channel while a subscribe is fetching its position or history. */
export interface JoinState {
  buffer: BrokerEvent[];
  /** Bytes of `buffer`: they count against MAX_BACKPRESSURE_BYTES. */
  bufferBytes: number;
  overflowed: boolean;
  /**
   * Set once history has been sent up to `sent` (in `epoch`) but this node's live stream of the
   * channel is not that far yet: the join completes when a live event reaches it (or after a
   * short wait), so that what history sent is not sent again live.
   */
  waiting?: { sent: number; epoch: string; timer?: NodeJS.Timeout };
}

/** The uWS per-socket user data. uWS copies its properties onto the socket, so keep it to one reference. */
export interface SocketData {
  conn: Connection;
}

/**
 * What the node asks of a client's socket: a uWS WebSocket has all of it, and so does an
 * SSE stream (sse-socket.ts), which lets one join, delivery and close path serve both.
 */
export interface ClientSocket {
  send(frame: string, isBinary?: boolean, compress?: boolean): unknown;
  cork(cb: () => void): unknown;
  /** Joins the channel's live fan-out (a uWS topic for a WebSocket). */
  subscribe(channel: string): unknown;
  unsubscribe(channel: string): unknown;
  getBufferedAmount(): number;
  end(code?: number, reason?: string): void;
  close(): unknown;
  ping(): unknown;
  getUserData(): SocketData;
}

/**
 * What `Connection.joining` reads as while a connection joins nothing (nearly always): one
 * shared empty map, so that an idle connection holds none of its own. Adding to it is a bug
 * (it would be every connection's), so it refuses: add through `joinMap()`.
 */
class NoJoins extends Map<string, JoinState> {
  override set(): this {
    throw new Error('Connection.joining is the shared empty map: add with conn.joinMap().set()');
  }
}
const NO_JOINS: Map<string, JoinState> = new NoJoins();

export function newConnectionId(): string {
  return `c_${randomBytes(9).toString('base64url')}`;
}

/**
 * Everything the edge knows about one WebSocket. uWS sockets must not be touched after
 * close, so every asynchronous continuation checks `state !== 'closed'` before using `ws`.
 */
export class Connection implements Expiring {
  readonly id = newConnectionId();
  readonly openedAt = Date.now();
  ws: ClientSocket | undefined;
  state: ConnState = 'pending';
  #claims: Claims | undefined;
  session: SessionRecord | undefined;
  /** Channels delivered live through the uWS topic. */
  readonly subscriptions = new Set<string>();
  #joining: Map<string, JoinState> | undefined;
  /** Frames that arrive while a first-frame `auth` is being verified, replayed after it. */
  readonly queued: string[] = [];
  queuedBytes = 0;
  /** How admission counts this connection: pending until it authenticates (admission.ts). */
  admittedAs: 'pending' | 'authenticated' | undefined;
  /** Replays waiting for this socket to drain (replay.ts). */
  readonly replay = new ReplayGate();
  authTimer: NodeJS.Timeout | undefined;
  /** Token expiry: filed in the node's one wheel (no timer per connection); see ExpiryWheel. */
  expirySecond = 0;
  expiryWheel: ExpiryWheel<Connection> | undefined;
  tokens: number;
  lastRefill = Date.now();
  lastSeen = Date.now();

  constructor(
    readonly ip: string,
    burst: number,
    /** Claims from a token verified at upgrade. */
    readonly upgradeClaims?: Claims,
  ) {
    this.tokens = burst;
  }

  get claims(): Claims | undefined {
    return this.#claims;
  }

  /** Kept with the permission lists shared between connections (claims-intern.ts). */
  set claims(claims: Claims | undefined) {
    this.#claims = claims === undefined ? undefined : internClaims(claims);
  }

  /** Channels between subscribe request and joining the topic (read-only while empty: add with `joinMap()`). */
  get joining(): Map<string, JoinState> {
    const joins = this.#joining;
    if (joins === undefined || joins.size > 0) return joins ?? NO_JOINS;
    // Emptied since: let it go, an idle connection keeps no map.
    this.#joining = undefined;
    return NO_JOINS;
  }

  /** `joining`, made this connection's own: for adding a join. */
  joinMap(): Map<string, JoinState> {
    return (this.#joining ??= new Map());
  }

  get userId(): string {
    return this.claims?.sub ?? '';
  }

  get open(): boolean {
    return this.state !== 'closed' && this.ws !== undefined;
  }

  /**
   * Everything the node holds for this client because of what it asked for (PROTOCOL.md §9):
   * the socket's buffer, its slow lane, live events buffered while joining, frames queued
   * during auth. Past MAX_BACKPRESSURE_BYTES the client is closed 4010.
   */
  heldBytes(buffered: number): number {
    let n = buffered + (this.lane?.bytes ?? 0) + this.queuedBytes;
    for (const join of this.joining.values()) n += join.bufferBytes;
    return n;
  }

  /** Token bucket: RATE_LIMIT_PER_S refill, RATE_LIMIT_BURST capacity. */
  take(now: number, perS: number, burst: number): boolean {
    const elapsed = now - this.lastRefill;
    if (elapsed > 0) {
      this.tokens = Math.min(burst, this.tokens + (elapsed * perS) / 1000);
      this.lastRefill = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  send(frame: string): void {
    if (this.state !== 'closed') this.ws?.send(frame, false, false);
  }

  /** Set while the client cannot keep up: its events queue (and coalesce) here. */
  lane: SlowLane | undefined;
  /** Set when another node asked for this connection's session: answered once it is saved. */
  handover: { from: string; request: string } | undefined;
  /** Bytes still queued when the server itself closed the socket (uWS forbids asking after close). */
  bufferedAtEnd = 0;

  end(code: number, reason: string): void {
    if (this.state === 'closed' || this.ws === undefined) return;
    this.bufferedAtEnd = this.ws.getBufferedAmount();
    this.ws.end(code, reason);
  }

  clearTimers(): void {
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
    this.expiryWheel?.disarm(this);
  }
}
