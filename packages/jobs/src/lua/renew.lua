-- Renews a runner's lease. Returns {held, cancel, lease until, lost}.
-- KEYS: job_key
-- ARGV: runner, lease_ms, ttl
local job_key = KEYS[1]
local runner = ARGV[1]
local lease_ms = ARGV[2]
local ttl = ARGV[3]

local h = redis.call('HMGET', job_key, 'runner', 'final', 'cancel_requested', 'state', 'job_id')
local cancel = '0'
if h[3] == '1' or h[2] == 'cancelled' then cancel = '1' end
if not h[5] then return {'0', cancel, '0', '0'} end
if h[1] ~= runner or h[2] or h[4] ~= 'running' then return {'0', cancel, '0', '1'} end
local lease_until = now + tonumber(lease_ms)
redis.call('HSET', job_key, 'lease_until', tostring(lease_until))
redis.call('EXPIRE', job_key, ttl)
return {'1', cancel, tostring(lease_until), '0'}
