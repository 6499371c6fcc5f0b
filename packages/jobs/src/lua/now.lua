-- now: milliseconds, by the Redis server's clock, so that every runner compares leases on one clock.
local now_time = redis.call('TIME')
local now = tonumber(now_time[1]) * 1000 + math.floor(tonumber(now_time[2]) / 1000)
