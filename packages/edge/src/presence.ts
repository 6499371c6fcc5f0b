import { MemoryPresence, RedisBroker, RedisPresence, type Broker, type PresenceSnapshot, type PresenceStore } from '@switchyard/broker';
import { ErrorCode, encodeError, isValidChannel, matchesAny, type Ref } from '@switchyard/protocol';
import type { Logger } from 'pino';
import { AuthError } from './errors.js';
import type { Claims, TokenVerifier } from './auth.js';
import type { EdgeConfig } from './config.js';
import type { Connection } from './connection.js';
import { HttpError, bearer, keyMatches, type HttpReply, type RequestInfo } from './http.js';
import type { EdgeMetrics } from './metrics.js';

/** Heartbeats per PRESENCE_TTL_S: a node may miss all but one before its users are declared gone. */
const HEARTBEATS_PER_TTL = 4;
const MIN_HEARTBEAT_MS = 100;

type PresenceConfig = Pick<EdgeConfig, 'workerId' | 'presenceChannels' | 'presenceTtlS' | 'presenceMaxUsers' | 'broadcastApiKey'>;

export interface EdgePresenceDeps {
  config: PresenceConfig;
  broker: Broker;
  log: Logger;
  metrics: EdgeMetrics;
  verifier: TokenVerifier;
  /** The node's subscribe check (token rights, job ownership). */
  mayRead(claims: Claims, channel: string): Promise<boolean>;
}

interface LocalUser {
  connections: number;
  infoJson: string | undefined;
}

/**
 * The edge side of presence (PROTOCOL.md §9): which of this node's connections are in which
 * presence channel, told to the store (memory alone, Redis in a cluster) as they come and go,
 * kept alive by a heartbeat so that the users of a node that dies leave within PRESENCE_TTL_S,
 * and restored in full if the store had given this node up. Answers `presence` frames and
 * `GET /presence/<channel>`. node.ts calls it on subscribe success, leave and close.
 */
export class EdgePresence {
  readonly #d: EdgePresenceDeps;
  readonly #store: PresenceStore;
  /** Per presence channel, this node's users and their connection counts: the truth the store sums. */
  readonly #local = new Map<string, Map<string, LocalUser>>();
  /** Presence channels each connection counts in. */
  readonly #byConn = new Map<Connection, Set<string>>();
  /** Channels whose store entries may differ from #local (the node was given up, or a write failed): synced at the next beat. */
  readonly #dirty = new Set<string>();
  readonly #syncing = new Set<string>();
  readonly #heartbeatMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: EdgePresenceDeps) {
    this.#d = deps;
    const { config, broker } = deps;
    this.#heartbeatMs = Math.max(MIN_HEARTBEAT_MS, Math.floor((config.presenceTtlS * 1000) / HEARTBEATS_PER_TTL));
    this.#store =
      broker instanceof RedisBroker
        ? new RedisPresence({
            client: broker.client,
            target: (channel) => broker.publishTarget(channel),
            nodeId: config.workerId,
            ttlMs: config.presenceTtlS * 1000,
            heartbeatMs: this.#heartbeatMs,
          })
        : new MemoryPresence((channel, frame) => void broker.signal(channel, frame));
  }

  enabled(channel: string): boolean {
    return matchesAny(this.#d.config.presenceChannels, channel);
  }

  start(): void {
    if ((this.#d.config.presenceChannels?.length ?? 0) === 0) return;
    this.#timer = setInterval(() => this.#beat(), this.#heartbeatMs);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A subscription of `conn` to `channel` went live. Idempotent. */
  joined(conn: Connection, channel: string): void {
    if (!this.enabled(channel)) return;
    let mine = this.#byConn.get(conn);
    if (mine === undefined) {
      mine = new Set();
      this.#byConn.set(conn, mine);
    }
    if (mine.has(channel)) return;
    mine.add(channel);
    let users = this.#local.get(channel);
    const fresh = users === undefined;
    if (users === undefined) {
      users = new Map();
      this.#local.set(channel, users);
    }
    const infoJson = conn.claims?.infoJson;
    const user = users.get(conn.userId);
    if (user === undefined) users.set(conn.userId, { connections: 1, infoJson });
    else {
      user.connections++;
      if (infoJson !== undefined) user.infoJson = infoJson;
    }
    this.#store.join(channel, conn.userId, infoJson, 1, fresh).then(
      (outcome) => {
        if (outcome === 'lost') void this.#sync(channel, 'this node had been given up');
      },
      (err: unknown) => this.#failed('join', channel, err),
    );
  }

  /** A subscription of `conn` to `channel` ended (unsubscribe, lost rights). */
  left(conn: Connection, channel: string): void {
    const mine = this.#byConn.get(conn);
    if (mine === undefined || !mine.delete(channel)) return;
    if (mine.size === 0) this.#byConn.delete(conn);
    const users = this.#local.get(channel);
    const user = users?.get(conn.userId);
    if (users !== undefined && user !== undefined && --user.connections <= 0) {
      users.delete(conn.userId);
      if (users.size === 0) this.#local.delete(channel);
    }
    this.#store.leave(channel, conn.userId).catch((err: unknown) => this.#failed('leave', channel, err));
  }

  /** The connection closed: it leaves every presence channel it was in. */
  closed(conn: Connection): void {
    const mine = this.#byConn.get(conn);
    if (mine === undefined) return;
    for (const channel of [...mine]) this.left(conn, channel);
  }

  /** The answer to a `presence` frame, ready to send. */
  async frame(conn: Connection, channel: string, ref: Ref | undefined): Promise<string> {
    if (!(await this.#d.mayRead(conn.claims!, channel))) return encodeError(ErrorCode.Forbidden, `no read right on ${channel}`, ref);
    if (!this.enabled(channel)) return encodeError(ErrorCode.NotFound, `${channel} keeps no presence (PRESENCE_CHANNELS)`, ref);
    let snapshot: PresenceSnapshot;
    try {
      snapshot = await this.#store.get(channel, this.#d.config.presenceMaxUsers);
    } catch (err) {
      this.#d.log.warn({ err: (err as Error)?.message, channel }, 'presence query failed');
      return encodeError(ErrorCode.Unavailable, 'presence is unavailable right now', ref);
    }
    return `{"type":"presence_result",${body(channel, snapshot)}${ref === undefined ? '' : `,"ref":${JSON.stringify(ref)}`}}`;
  }

  /** `GET /presence/<channel>` with the broadcast key, or a JWT that may subscribe to the channel. */
  async http(info: RequestInfo): Promise<HttpReply> {
    const token = bearer(info.authorization);
    if (token === undefined) throw new HttpError(401, ErrorCode.Unauthenticated, 'Authorization: Bearer <BROADCAST_API_KEY or JWT> required');
    let channel: string;
    try {
      channel = decodeURIComponent(info.url.slice('/presence/'.length));
    } catch {
      channel = '';
    }
    if (!isValidChannel(channel)) throw new HttpError(400, ErrorCode.BadChannel, 'channel names are 1–200 characters of A-Z a-z 0-9 : _ - . @ /');
    if (!keyMatches(this.#d.config.broadcastApiKey, token)) {
      let claims: Claims;
      try {
        claims = await this.#d.verifier.verify(token);
      } catch (err) {
        throw new HttpError(401, err instanceof AuthError ? err.reason : ErrorCode.Unauthenticated, 'bad API key or token');
      }
      if (!(await this.#d.mayRead(claims, channel))) throw new HttpError(403, ErrorCode.Forbidden, `no read right on ${channel}`);
    }
    if (!this.enabled(channel)) throw new HttpError(404, ErrorCode.NotFound, `${channel} keeps no presence (PRESENCE_CHANNELS)`);
    let snapshot: PresenceSnapshot;
    try {
      snapshot = await this.#store.get(channel, this.#d.config.presenceMaxUsers);
    } catch (err) {
      this.#d.log.warn({ err: (err as Error)?.message, channel }, 'presence query failed');
      throw new HttpError(503, ErrorCode.Unavailable, 'presence is unavailable right now');
    }
    return { status: 200, body: `{${body(channel, snapshot)}}`, contentType: 'application/json' };
  }

  #beat(): void {
    for (const channel of this.#dirty) void this.#sync(channel, 'a presence write had failed');
    for (const channel of this.#local.keys()) {
      if (this.#dirty.has(channel)) continue;
      this.#store.heartbeat(channel).then(
        (outcome) => {
          if (outcome === 'lost') void this.#sync(channel, 'this node had been given up');
        },
        (err: unknown) => this.#failed('heartbeat', channel, err),
      );
    }
  }

  /**
   * Makes the store's entries of this node in `channel` what this node holds (announcing who
   * joined or left by it): after the store gave the node up (its heartbeat came too late, its
   * users were announced gone), or after a write failed (Redis away).
   */
  async #sync(channel: string, why: string): Promise<void> {
    if (this.#syncing.has(channel)) return;
    this.#syncing.add(channel);
    this.#dirty.delete(channel);
    try {
      const users = [...(this.#local.get(channel) ?? [])].map(([user_id, u]) => ({ user_id, connections: u.connections, ...(u.infoJson !== undefined && { infoJson: u.infoJson }) }));
      this.#d.log.warn({ channel, users: users.length, why }, 'presence: syncing this node’s entries');
      await this.#store.sync(channel, users);
    } catch (err) {
      this.#failed('sync', channel, err);
    } finally {
      this.#syncing.delete(channel);
    }
  }

  #failed(what: string, channel: string, err: unknown): void {
    // Whatever was not recorded is put right by a sync at the next beat.
    this.#dirty.add(channel);
    this.#d.metrics.count('presence_error', 'out');
    this.#d.log.warn({ err: (err as Error)?.message, channel }, `presence ${what} failed`);
  }
}

/** `"channel",...,"truncated"` of a presence answer (PROTOCOL.md §9); `info` is passed through as stored JSON. */
function body(channel: string, s: PresenceSnapshot): string {
  const users = s.users.map(
    (u) => `{"user_id":${JSON.stringify(u.user_id)},"connections":${u.connections}${u.infoJson === undefined ? '' : `,"info":${u.infoJson}`}}`,
  );
  return `"channel":${JSON.stringify(channel)},"count":${s.count},"connections":${s.connections},"users":[${users.join(',')}],"truncated":${s.truncated}`;
}
