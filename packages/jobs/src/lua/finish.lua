-- Records a terminal state, once.
-- Suffix 1: what announces it. Rest: field, value, ... then the suffixes. Returns 1 for the first terminal state only.
-- KEYS: job_key, meta, hist (announce.lua)
-- ARGV: the announcement head (announce.lua), then final, ttl, now_iso, job_id
local final = ARGV[9]
local ttl = ARGV[10]
local now_iso = ARGV[11]
local job_id = ARGV[12]
local FIELDS_FROM = 13
local fields_to = #ARGV - announce_count

if redis.call('HEXISTS', job_key, 'final') == 1 then return 0 end
redis.call('HSET', job_key, 'job_id', job_id, 'final', final, 'state', final, 'finished_at', now_iso, 'updated_at', now_iso, 'lease_until', '0', unpack(ARGV, FIELDS_FROM, fields_to))
redis.call('HDEL', job_key, 'reaper', 'reap_until', 'stall_decision')
announce(1)
redis.call('EXPIRE', job_key, ttl)
return 1
