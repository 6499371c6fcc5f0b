-- A channel's position and the frames after `since`, starting the channel (a fresh epoch) when
-- it has none, so that a subscriber's first position is one later events continue.
-- KEYS: meta, hist
-- ARGV: since (-1: position only), new_epoch, ttl_s, limit (0: all)
-- Returns {seq, epoch, first retained seq, frames after since (at most limit: a page)}.
local meta = KEYS[1]
local hist = KEYS[2]
local since = tonumber(ARGV[1])
local new_epoch = ARGV[2]
local ttl_s = ARGV[3]
local limit = tonumber(ARGV[4])

local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  epoch = new_epoch
  redis.call('DEL', hist)
  redis.call('HSET', meta, 'e', epoch, 's', 0)
  redis.call('EXPIRE', meta, ttl_s)
end
local seq = tonumber(redis.call('HGET', meta, 's') or '0')
if since < 0 then
  return {seq, epoch, 0, {}}
end
local len = redis.call('LLEN', hist)
if len > seq then len = seq end
local first = seq - len + 1
local from = since + 1
if from < first then from = first end
if from > seq then
  return {seq, epoch, first, {}}
end
local start = from - first - len
local stop = -1
if limit > 0 and start + limit - 1 < -1 then stop = start + limit - 1 end
return {seq, epoch, first, redis.call('LRANGE', hist, start, stop)}
