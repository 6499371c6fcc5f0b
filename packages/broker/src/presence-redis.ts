import type { Cluster, Redis } from 'ioredis';
import type { PublishTarget } from './broker.js';
import { BrokerUnavailableError } from './errors.js';
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

const PUBLISH_LUA = `
local function sy_signal(pubsub, sharded, frame)
  if sharded == '1' then
    redis.call('SPUBLISH', pubsub, '~' .. frame)
  else
    redis.call('PUBLISH', pubsub, '~' .. frame)
  end
end
`;

/** KEYS: pu, pi, pc, pz. ARGV (from reapArg): now, pn key prefix, pubsub, sharded, leave prefix. */
const REAP_LUA = `${PUBLISH_LUA}
local function sy_reap(pu, pi, pc, pz, now, pn, pubsub, sharded, leave)
  local dead = redis.call('ZRANGEBYSCORE', pz, '-inf', now)
  for _, node in ipairs(dead) do
    local key = pn .. node
    local flat = redis.call('HGETALL', key)
    for i = 1, #flat, 2 do
      local user = flat[i]
      local n = tonumber(flat[i + 1])
      if n > 0 then
        local total = redis.call('HINCRBY', pu, user, -n)
        redis.call('INCRBY', pc, -n)
        if total <= 0 then
          redis.call('HDEL', pu, user)
          redis.call('HDEL', pi, user)
          sy_signal(pubsub, sharded, leave .. cjson.encode(user) .. '}')
        end
      end
    end
    redis.call('DEL', key)
    redis.call('ZREM', pz, node)
  end
  return #dead
end
`;

/**
 * KEYS: pu, pi, pc, pz, pn:<node>. ARGV: node, user, n, info ('' none), deadline ms, key ttl ms,
 * pubsub, sharded, join frame, fresh '0'/'1'. Returns 1 first join, 0 more, -1 lost.
 */
const JOIN_LUA = `${PUBLISH_LUA}
if ARGV[10] == '0' and not redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  return -1
end
redis.call('HINCRBY', KEYS[5], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
local total = redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3])
redis.call('INCRBY', KEYS[3], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[4]) end
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
if total == tonumber(ARGV[3]) then
  sy_signal(ARGV[7], ARGV[8], ARGV[9])
  return 1
end
return 0
`;

/** KEYS: pu, pi, pc, pz, pn:<node>. ARGV: node, user, pubsub, sharded, leave frame. Returns 1 last leave, else 0. */
const LEAVE_LUA = `${PUBLISH_LUA}
local mine = redis.call('HINCRBY', KEYS[5], ARGV[2], -1)
if mine <= 0 then redis.call('HDEL', KEYS[5], ARGV[2]) end
if mine < 0 then
  return 0
end
local total = redis.call('HINCRBY', KEYS[1], ARGV[2], -1)
redis.call('INCRBY', KEYS[3], -1)
if total <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
  sy_signal(ARGV[3], ARGV[4], ARGV[5])
  return 1
end
return 0
`;

/** KEYS: pu, pi, pc, pz, pn:<node>. ARGV: reap args (5), node, deadline ms, key ttl ms. Returns 0, or -1 lost. */
const HEARTBEAT_LUA = `${REAP_LUA}
sy_reap(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
if not redis.call('ZSCORE', KEYS[4], ARGV[6]) then
  return -1
end
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6])
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[8]) end
return 0
`;

/**
 * KEYS: pu, pi, pc, pz, pn:<node>. ARGV: node, deadline ms, key ttl ms, pubsub, sharded, join
 * prefix, leave prefix, then (user, connections, info or '') for each of the node's users.
 * Replaces the node's entries, moving each user's total by the difference.
 */
const SYNC_LUA = `${PUBLISH_LUA}
local old = {}
local flat = redis.call('HGETALL', KEYS[5])
for i = 1, #flat, 2 do old[flat[i]] = tonumber(flat[i + 1]) end
redis.call('DEL', KEYS[5])
local function move(user, d, info)
  if d == 0 then return end
  local total = redis.call('HINCRBY', KEYS[1], user, d)
  redis.call('INCRBY', KEYS[3], d)
  if total <= 0 then
    redis.call('HDEL', KEYS[1], user)
    redis.call('HDEL', KEYS[2], user)
    sy_signal(ARGV[4], ARGV[5], ARGV[7] .. cjson.encode(user) .. '}')
  elseif total == d then
    local extra = ''
    if info ~= '' then extra = ',"info":' .. info end
    sy_signal(ARGV[4], ARGV[5], ARGV[6] .. cjson.encode(user) .. extra .. '}')
  end
end
for i = 8, #ARGV, 3 do
  local user = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  redis.call('HSET', KEYS[5], user, n)
  if ARGV[i + 2] ~= '' then redis.call('HSET', KEYS[2], user, ARGV[i + 2]) end
  move(user, n - (old[user] or 0), ARGV[i + 2])
  old[user] = nil
end
for user, n in pairs(old) do
  if n > 0 then move(user, -n, '') end
end
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 0
`;

/**
 * KEYS: pu, pi, pc, pz. ARGV: reap args (5), max users. Returns {count, connections, {user, n, ...}, {info, ...}};
 * an info of false is none. Past max users an HSCAN stops once it has enough.
 */
const GET_LUA = `${REAP_LUA}
sy_reap(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
local max = tonumber(ARGV[6])
local count = redis.call('HLEN', KEYS[1])
local conns = tonumber(redis.call('GET', KEYS[3]) or '0')
local flat = {}
if count <= max then
  flat = redis.call('HGETALL', KEYS[1])
elseif max > 0 then
  local cursor = '0'
  repeat
    local r = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 100)
    cursor = r[1]
    for i = 1, #r[2], 2 do
      if #flat < 2 * max then
        flat[#flat + 1] = r[2][i]
        flat[#flat + 1] = r[2][i + 1]
      end
    end
  until cursor == '0' or #flat >= 2 * max
end
local infos = {}
if #flat > 0 then
  local ids = {}
  for i = 1, #flat, 2 do ids[#ids + 1] = flat[i] end
  infos = redis.call('HMGET', KEYS[2], unpack(ids))
end
return {count, conns, flat, infos}
`;

type Client = Redis | Cluster;

interface PresenceScripts {
  syPresenceJoin(...args: (string | number)[]): Promise<number>;
  syPresenceLeave(...args: (string | number)[]): Promise<number>;
  syPresenceHeartbeat(...args: (string | number)[]): Promise<number>;
  syPresenceSync(...args: (string | number)[]): Promise<number>;
  syPresenceGet(...args: (string | number)[]): Promise<[number, number | string, string[], (string | null)[]]>;
}

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
  readonly #client: Client & PresenceScripts;
  readonly #o: RedisPresenceOptions;

  constructor(options: RedisPresenceOptions) {
    this.#o = options;
    const client = options.client;
    client.defineCommand('syPresenceJoin', { numberOfKeys: 5, lua: JOIN_LUA });
    client.defineCommand('syPresenceLeave', { numberOfKeys: 5, lua: LEAVE_LUA });
    client.defineCommand('syPresenceHeartbeat', { numberOfKeys: 5, lua: HEARTBEAT_LUA });
    client.defineCommand('syPresenceGet', { numberOfKeys: 4, lua: GET_LUA });
    client.defineCommand('syPresenceSync', { numberOfKeys: 5, lua: SYNC_LUA });
    this.#client = client as Client & PresenceScripts;
  }

  #keys(channel: string): { keys: [string, string, string, string, string]; pn: string; pubsub: string; sharded: string } {
    const target = this.#o.target(channel);
    // The broker's meta key is `<prefix>:{C}:m`: presence keys sit next to it.
    const tag = target.meta.slice(0, -2);
    const pn = `${tag}:pn:`;
    return { keys: [`${tag}:pu`, `${tag}:pi`, `${tag}:pc`, `${tag}:pz`, `${pn}${this.#o.nodeId}`], pn, pubsub: target.pubsub, sharded: target.sharded ? '1' : '0' };
  }

  #deadline(now: number): number {
    return now + Math.max(this.#o.ttlMs - this.#o.heartbeatMs, this.#o.heartbeatMs);
  }

  /** Keys outlive a node's declared death, so its entries are still there to be taken back. */
  get #keyTtlMs(): number {
    return this.#o.ttlMs * 3;
  }

  #reapArgs(channel: string, pn: string, pubsub: string, sharded: string, now: number): (string | number)[] {
    return [now, pn, pubsub, sharded, leavePrefix(channel)];
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
      this.#client.syPresenceJoin(...keys, this.#o.nodeId, userId, n, infoJson ?? '', this.#deadline(now), this.#keyTtlMs, pubsub, sharded, joinFrame(channel, userId, infoJson), fresh ? '1' : '0'),
    );
    return r === 1 ? 'joined' : r === 0 ? 'ok' : 'lost';
  }

  async leave(channel: string, userId: string): Promise<'left' | 'ok'> {
    const { keys, pubsub, sharded } = this.#keys(channel);
    const r = await this.#run('leave', channel, () => this.#client.syPresenceLeave(...keys, this.#o.nodeId, userId, pubsub, sharded, leaveFrame(channel, userId)));
    return r === 1 ? 'left' : 'ok';
  }

  async heartbeat(channel: string): Promise<'ok' | 'lost'> {
    const { keys, pn, pubsub, sharded } = this.#keys(channel);
    const now = Date.now();
    const r = await this.#run('heartbeat', channel, () =>
      this.#client.syPresenceHeartbeat(...keys, ...this.#reapArgs(channel, pn, pubsub, sharded, now), this.#o.nodeId, this.#deadline(now), this.#keyTtlMs),
    );
    return r === 0 ? 'ok' : 'lost';
  }

  async sync(channel: string, users: readonly PresenceUser[]): Promise<void> {
    const { keys, pubsub, sharded } = this.#keys(channel);
    const args: (string | number)[] = [this.#o.nodeId, this.#deadline(Date.now()), this.#keyTtlMs, pubsub, sharded, joinPrefix(channel), leavePrefix(channel)];
    for (const u of users) if (u.connections > 0) args.push(u.user_id, u.connections, u.infoJson ?? '');
    await this.#run('sync', channel, () => this.#client.syPresenceSync(...keys, ...args));
  }

  async get(channel: string, maxUsers: number): Promise<PresenceSnapshot> {
    const { keys, pn, pubsub, sharded } = this.#keys(channel);
    const [count, connections, flat, infos] = await this.#run('query', channel, () =>
      this.#client.syPresenceGet(...keys.slice(0, 4), ...this.#reapArgs(channel, pn, pubsub, sharded, Date.now()), maxUsers),
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
