import type { Cluster, Redis } from 'ioredis';
import type { PublishTarget } from './broker.js';
import { BrokerUnavailableError } from './errors.js';
import { defineLua, luaSource } from './lua.js';
import { joinFrame, joinPrefix, leaveFrame, leavePrefix, type PresenceSnapshot, type PresenceStore, type PresenceUser } from './presence.js';

/**
 * Presence keys of channel C, all tagged `{C}` like the broker's, so on a Redis Cluster they share
 * the slot of the channel's shard pub/sub and one script can touch them all:
 *   pu  hash user → connections on live nodes       (count = HLEN)
 *   pi  hash user → info JSON
 *   pc  string    → connections, all users
 *   pz  zset node → when it is declared dead (ms), pushed on by its heartbeat
 *   pn:<node> hash user → connections on that node  (what to take back when it dies)
 * A join or leave is O(1) in the channel's size: a few hash increments, and one publish when
 * the user's total crosses zero. Only a dead node's removal walks its own users, once.
 * Every key expires unless a node keeps it alive, so even a cluster that lost every node heals.
 *
 * join/leave frames go out on the channel's broker pub/sub as `~<frame>` (no seq: the broker
 * hands them to its signal listener, never to history or the seq check).
 */

const KEYS = ['pu', 'pi', 'pc', 'pz', 'pn'] as const;
const REAP = ['nowMs', 'pnPrefix', 'pubsub', 'sharded', 'leavePrefix'] as const;
const lua = (file: string): string => luaSource(import.meta.url, './lua/json.lua', './lua/presence-fn.lua', `./lua/${file}`);

const joinScript = defineLua({
  name: 'syPresenceJoin',
  lua: lua('presence-join.lua'),
  keys: KEYS,
  args: ['node', 'user', 'n', 'info', 'deadlineMs', 'keyTtlMs', 'pubsub', 'sharded', 'joinFrame', 'fresh'],
});
const leaveScript = defineLua({ name: 'syPresenceLeave', lua: lua('presence-leave.lua'), keys: KEYS, args: ['node', 'user', 'pubsub', 'sharded', 'leaveFrame'] });
const heartbeatScript = defineLua({ name: 'syPresenceHeartbeat', lua: lua('presence-heartbeat.lua'), keys: KEYS, args: [...REAP, 'node', 'deadlineMs', 'keyTtlMs'] });
const syncScript = defineLua({
  name: 'syPresenceSync',
  lua: lua('presence-sync.lua'),
  keys: KEYS,
  args: ['node', 'deadlineMs', 'keyTtlMs', 'pubsub', 'sharded', 'joinPrefix', 'leavePrefix'],
});
const getScript = defineLua({ name: 'syPresenceGet', lua: lua('presence-get.lua'), keys: ['pu', 'pi', 'pc', 'pz'], args: [...REAP, 'maxUsers'] });

type Client = Redis | Cluster;

export interface RedisPresenceOptions {
  /** The broker's command connection (shared). */
  client: Client;
  /** Where the channel's pub/sub is: RedisBroker.publishTarget. */
  target: (channel: string) => PublishTarget;
  nodeId: string;
  /** A node that has not refreshed its entries for this long is gone and its users leave. */
  ttlMs: number;
  /** How often the caller heartbeats: a node is declared dead `ttlMs - heartbeatMs` after its last beat, so reaping by the next beat of another node stays within `ttlMs`. */
  heartbeatMs: number;
}

export class RedisPresence implements PresenceStore {
  readonly #client: Client;
  readonly #o: RedisPresenceOptions;

  constructor(options: RedisPresenceOptions) {
    this.#o = options;
    const client = options.client;
    for (const script of [joinScript, leaveScript, heartbeatScript, getScript, syncScript]) script.define(client);
    this.#client = client;
  }

  #keys(channel: string): { keys: Record<(typeof KEYS)[number], string>; pn: string; pubsub: string; sharded: string } {
    const target = this.#o.target(channel);
    // The broker's meta key is `<prefix>:{C}:m`: presence keys sit next to it.
    const tag = target.meta.slice(0, -2);
    const pn = `${tag}:pn:`;
    return { keys: { pu: `${tag}:pu`, pi: `${tag}:pi`, pc: `${tag}:pc`, pz: `${tag}:pz`, pn: `${pn}${this.#o.nodeId}` }, pn, pubsub: target.pubsub, sharded: target.sharded ? '1' : '0' };
  }

  #deadline(now: number): number {
    return now + Math.max(this.#o.ttlMs - this.#o.heartbeatMs, this.#o.heartbeatMs);
  }

  /** Keys outlive a node's declared death, so its entries are still there to be taken back. */
  get #keyTtlMs(): number {
    return this.#o.ttlMs * 3;
  }

  #reapArgs(channel: string, pnPrefix: string, pubsub: string, sharded: string, now: number): Record<(typeof REAP)[number], string | number> {
    return { nowMs: now, pnPrefix, pubsub, sharded, leavePrefix: leavePrefix(channel) };
  }

  async #run<T>(what: string, channel: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new BrokerUnavailableError(`presence ${what} of ${channel} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async join(channel: string, userId: string, infoJson: string | undefined, n: number, fresh: boolean): Promise<'joined' | 'ok' | 'lost'> {
    const { keys, pubsub, sharded } = this.#keys(channel);
    const now = Date.now();
    const r = await this.#run('join', channel, () =>
      joinScript.call<number>(this.#client, {
        ...keys,
        node: this.#o.nodeId,
        user: userId,
        n,
        info: infoJson ?? '',
        deadlineMs: this.#deadline(now),
        keyTtlMs: this.#keyTtlMs,
        pubsub,
        sharded,
        joinFrame: joinFrame(channel, userId, infoJson),
        fresh: fresh ? '1' : '0',
      }),
    );
    return r === 1 ? 'joined' : r === 0 ? 'ok' : 'lost';
  }

  async leave(channel: string, userId: string): Promise<'left' | 'ok'> {
    const { keys, pubsub, sharded } = this.#keys(channel);
    const r = await this.#run('leave', channel, () =>
      leaveScript.call<number>(this.#client, { ...keys, node: this.#o.nodeId, user: userId, pubsub, sharded, leaveFrame: leaveFrame(channel, userId) }),
    );
    return r === 1 ? 'left' : 'ok';
  }

  async heartbeat(channel: string): Promise<'ok' | 'lost'> {
    const { keys, pn, pubsub, sharded } = this.#keys(channel);
    const now = Date.now();
    const r = await this.#run('heartbeat', channel, () =>
      heartbeatScript.call<number>(this.#client, {
        ...keys,
        ...this.#reapArgs(channel, pn, pubsub, sharded, now),
        node: this.#o.nodeId,
        deadlineMs: this.#deadline(now),
        keyTtlMs: this.#keyTtlMs,
      }),
    );
    return r === 0 ? 'ok' : 'lost';
  }

  async sync(channel: string, users: readonly PresenceUser[]): Promise<void> {
    const { keys, pubsub, sharded } = this.#keys(channel);
    const rest: (string | number)[] = [];
    for (const u of users) if (u.connections > 0) rest.push(u.user_id, u.connections, u.infoJson ?? '');
    const named = { node: this.#o.nodeId, deadlineMs: this.#deadline(Date.now()), keyTtlMs: this.#keyTtlMs, pubsub, sharded, joinPrefix: joinPrefix(channel), leavePrefix: leavePrefix(channel) };
    await this.#run('sync', channel, () => syncScript.call(this.#client, { ...keys, ...named }, rest));
  }

  async get(channel: string, maxUsers: number): Promise<PresenceSnapshot> {
    const { keys, pn, pubsub, sharded } = this.#keys(channel);
    const [count, connections, flat, infos] = await this.#run('query', channel, () =>
      getScript.call<[number, number | string, string[], (string | null)[]]>(this.#client, {
        ...keys,
        ...this.#reapArgs(channel, pn, pubsub, sharded, Date.now()),
        maxUsers,
      }),
    );
    const users: PresenceUser[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const info = infos[i / 2];
      users.push({ user_id: String(flat[i]), connections: Number(flat[i + 1]), ...(typeof info === 'string' && { infoJson: info }) });
    }
    users.sort((a, b) => (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0));
    return { count: Number(count), connections: Number(connections), users, truncated: Number(count) > users.length };
  }
}
