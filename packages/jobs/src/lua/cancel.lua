-- Cancels a job, or asks its runner to (a running job with a live lease).
-- user '' skips the owner check. Suffix 1: job.cancelled (when cancelled here).
-- KEYS: job_key, meta, hist (announce.lua)
-- ARGV: the announcement head (announce.lua), then user, ttl, now_iso
local user = ARGV[9]
local ttl = ARGV[10]
local now_iso = ARGV[11]

local h = redis.call('HMGET', job_key, 'job_id', 'owner', 'final', 'state', 'lease_until')
if not h[1] then return 'not_found' end
if user ~= '' and h[2] ~= user then return 'forbidden' end
if h[3] then return 'finished' end
local lease = tonumber(h[5] or '0') or 0
if h[4] == 'running' and lease > now then
  redis.call('HSET', job_key, 'cancel_requested', '1', 'updated_at', now_iso)
  return 'requested'
end
redis.call('HSET', job_key, 'cancel_requested', '1', 'final', 'cancelled', 'state', 'cancelled', 'finished_at', now_iso, 'updated_at', now_iso, 'lease_until', '0')
redis.call('HDEL', job_key, 'reaper', 'reap_until', 'stall_decision')
announce(1)
redis.call('EXPIRE', job_key, ttl)
return 'cancelled'
