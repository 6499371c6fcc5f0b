/**
 * Lua run atomically inside Redis, so a publish costs one round trip: it assigns the seq,
 * builds the frame around it, appends to the bounded history, refreshes the TTLs and fans
 * the event out. All keys of a channel share the hash tag `{channel}`, so on a Redis
 * Cluster they live in one slot with the channel's shard pub/sub.
 *
 * meta hash: e = epoch, s = latest seq. history list: frames, oldest first, contiguous
 * seqs ending at s.
 */

/** KEYS: meta, history. ARGV: frame prefix, frame suffix, new epoch, history size, ttl s, pubsub channel, now ms, sharded 0/1. */
export const PUBLISH_LUA = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
end
local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
local frame = ARGV[1] .. seq .. ARGV[2]
local size = tonumber(ARGV[4])
if size > 0 then
  redis.call('RPUSH', KEYS[2], frame)
  redis.call('LTRIM', KEYS[2], -size, -1)
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
local msg = seq .. ':' .. ARGV[7] .. ':' .. epoch .. ':' .. frame
if ARGV[8] == '1' then
  redis.call('SPUBLISH', ARGV[6], msg)
else
  redis.call('PUBLISH', ARGV[6], msg)
end
return {seq, epoch}
`;

/**
 * KEYS: meta, history. ARGV: since (-1: position only), new epoch, ttl s.
 * Returns {seq, epoch, first retained seq, frames after since}.
 */
export const HISTORY_LUA = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[2]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
local seq = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
local since = tonumber(ARGV[1])
if since < 0 then
  return {seq, epoch, 0, {}}
end
local len = redis.call('LLEN', KEYS[2])
if len > seq then len = seq end
local first = seq - len + 1
local from = since + 1
if from < first then from = first end
if from > seq then
  return {seq, epoch, first, {}}
end
return {seq, epoch, first, redis.call('LRANGE', KEYS[2], from - first - len, -1)}
`;
