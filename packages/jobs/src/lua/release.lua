-- A runner lets its job go back to `state` (queued, retrying).
-- Suffix 1: what announces it. Rest: field, value, ... then the suffixes.
-- KEYS: job_key, meta, hist (announce.lua)
-- ARGV: the announcement head (announce.lua), then runner, state, ttl, now_iso
local runner = ARGV[9]
local state = ARGV[10]
local ttl = ARGV[11]
local now_iso = ARGV[12]
local FIELDS_FROM = 13
local fields_to = #ARGV - announce_count

local h = redis.call('HMGET', job_key, 'runner', 'final', 'state')
if h[2] or h[1] ~= runner or h[3] ~= 'running' then return 0 end
redis.call('HSET', job_key, 'state', state, 'lease_until', '0', 'updated_at', now_iso, unpack(ARGV, FIELDS_FROM, fields_to))
announce(1)
redis.call('EXPIRE', job_key, ttl)
return 1
