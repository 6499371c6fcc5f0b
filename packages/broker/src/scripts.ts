/**
 * Lua run atomically inside Redis, so a publish costs one round trip: it assigns the seq,
 * builds the frame around it, appends to the bounded history, refreshes the TTLs and fans
 * the event out. All keys of a channel share the hash tag `{channel}`, so on a Redis
 * Cluster they live in one slot with the channel's shard pub/sub.
 *
 * meta hash: e = epoch, s = latest seq. history list: frames, oldest first, contiguous
 * seqs ending at s.
 */

/**
 * The publish step as a Lua function, so that a script of another package can publish an event
 * in the same atomic step as its own writes (a job's status transition and the event that
 * announces it: @switchyard/jobs). Arguments: meta key, history key, frame prefix, frame
 * suffix, new epoch, history size, ttl s, pubsub channel, now ms, sharded '0'/'1'. Returns
 * seq, epoch.
 */
export const PUBLISH_FUNCTION_LUA = `
local function sy_publish(meta, hist, prefix, suffix, new_epoch, size, ttl, pubsub, now, sharded)
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = new_epoch
    redis.call('DEL', hist)
    redis.call('HSET', meta, 'e', epoch, 's', 0)
  end
  local seq = redis.call('HINCRBY', meta, 's', 1)
  local frame = prefix .. seq .. suffix
  local n = tonumber(size)
  if n > 0 then
    redis.call('RPUSH', hist, frame)
    redis.call('LTRIM', hist, -n, -1)
    redis.call('EXPIRE', hist, ttl)
  end
  redis.call('EXPIRE', meta, ttl)
  local msg = seq .. ':' .. now .. ':' .. epoch .. ':' .. frame
  if sharded == '1' then
    redis.call('SPUBLISH', pubsub, msg)
  else
    redis.call('PUBLISH', pubsub, msg)
  end
  return seq, epoch
end
`;

/** KEYS: meta, history. ARGV: frame prefix, frame suffix, new epoch, history size, ttl s, pubsub channel, now ms, sharded 0/1. */
export const PUBLISH_LUA = `${PUBLISH_FUNCTION_LUA}
local seq, epoch = sy_publish(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
return {seq, epoch}
`;

/**
 * KEYS: meta, history. ARGV: since (-1: position only), new epoch, ttl s, limit (0: all).
 * Returns {seq, epoch, first retained seq, frames after since (at most limit)}.
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
local start = from - first - len
local stop = -1
local limit = tonumber(ARGV[4] or '0')
if limit > 0 and start + limit - 1 < -1 then stop = start + limit - 1 end
return {seq, epoch, first, redis.call('LRANGE', KEYS[2], start, stop)}
`;
