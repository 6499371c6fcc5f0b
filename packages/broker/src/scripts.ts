import { defineLua, luaSource } from './lua.js';

/**
 * The broker's Lua, in ./lua: run atomically inside Redis, so a publish costs one round trip.
 * All keys of a channel share the hash tag `{channel}`, so on a Redis Cluster they live in one
 * slot with the channel's shard pub/sub.
 */

/**
 * `json_string(s)` and `sy_publish(meta, hist, prefix, suffix, new_epoch, size, ttl, pubsub, now, sharded)`, for a
 * script of another package to prepend and publish in the same atomic step as its own writes.
 */
export const PUBLISH_FUNCTION_LUA = luaSource(import.meta.url, './lua/json.lua', './lua/publish-fn.lua');

export const publishScript = defineLua({
  name: 'syPublish',
  lua: `${PUBLISH_FUNCTION_LUA}\n${luaSource(import.meta.url, './lua/publish.lua')}`,
  keys: ['meta', 'hist'],
  args: ['prefix', 'suffix', 'newEpoch', 'historySize', 'ttlS', 'pubsub', 'nowMs', 'sharded'],
});

export const historyScript = defineLua({
  name: 'syHistory',
  lua: luaSource(import.meta.url, './lua/history.lua'),
  keys: ['meta', 'hist'],
  args: ['since', 'newEpoch', 'ttlS', 'limit'],
});
