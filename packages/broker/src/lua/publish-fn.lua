-- sy_publish: the publish step as a function, so that a script of another package can publish
-- an event in the same atomic step as its own writes (a job's transition and the event that
-- announces it: @switchyard/jobs). Prepended to each script that publishes (after json.lua).
--   meta       hash: e = epoch, s = latest seq
--   hist       list of frames, oldest first, contiguous seqs ending at s
--   prefix     the frame up to its seq (eventPrefix)
--   suffix     the frame after its seq (eventSuffix)
--   new_epoch  the epoch to start with when the channel has none
--   size       history size (0: keep none)
--   ttl        seconds the channel's keys live after its last event
--   pubsub     the channel's (shard) pub/sub channel
--   now        ms, passed on to subscribers
--   sharded    '1': SPUBLISH (Redis Cluster), else PUBLISH
-- Returns seq, epoch.

local function sy_publish(meta, hist, prefix, suffix, new_epoch, size, ttl, pubsub, now, sharded)
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = new_epoch
    redis.call('DEL', hist)
    redis.call('HSET', meta, 'e', epoch, 's', 0)
  end
  local seq = redis.call('HINCRBY', meta, 's', 1)
  -- Lua's own number-to-string writes 1e+14 from 10^14 on; the frame must read like JSON.stringify's.
  local seq_text = string.format('%d', seq)
  local frame = prefix .. seq_text .. suffix
  local n = tonumber(size)
  if n > 0 then
    redis.call('RPUSH', hist, frame)
    redis.call('LTRIM', hist, -n, -1)
    redis.call('EXPIRE', hist, ttl)
  end
  redis.call('EXPIRE', meta, ttl)
  local msg = seq_text .. ':' .. now .. ':' .. epoch .. ':' .. frame
  if sharded == '1' then
    redis.call('SPUBLISH', pubsub, msg)
  else
    redis.call('PUBLISH', pubsub, msg)
  end
  return seq, epoch
end
