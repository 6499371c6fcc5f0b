-- Entries of the lease index due by the Redis clock: member, score, ...
-- KEYS: lease_index
-- ARGV: limit
local lease_index = KEYS[1]
local limit = ARGV[1]

return redis.call('ZRANGEBYSCORE', lease_index, '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(limit))
