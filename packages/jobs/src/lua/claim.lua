-- Claims a run of a job for a runner under a lease (see ClaimOutcome).
-- Suffixes: 1 job.queued (a job first seen here), 2 job.started, 3 job.cancelled.
-- KEYS: job_key, meta, hist (announce.lua)
-- ARGV: the announcement head (announce.lua), then runner, lease_ms, ttl, attempt, now_iso, owner, job_id, gpu, sample_id, spec, max_retries
local runner = ARGV[9]
local lease_ms = ARGV[10]
local ttl = ARGV[11]
local attempt = tonumber(ARGV[12])
local now_iso = ARGV[13]
local owner = ARGV[14]
local job_id = ARGV[15]
local gpu = ARGV[16]
local sample_id = ARGV[17]
local spec = ARGV[18]
local max_retries = ARGV[19]

local h = redis.call('HMGET', job_key, 'final', 'runner', 'lease_until', 'cancel_requested', 'job_id', 'state', 'attempts', 'stall_decision')
if h[1] then return {'final', h[1]} end
local made = tonumber(h[7] or '0') or 0
local waiting = h[6] == 'retrying' or h[6] == 'stalled'
if made > attempt or (waiting and made >= attempt) or (h[6] == 'stalled' and h[8] == 'fail') then return {'stale', tostring(made)} end
local lease = tonumber(h[3] or '0') or 0
if h[2] and h[2] ~= runner and lease > now then return {'leased', h[2], tostring(lease - now)} end
if h[6] == 'running' and h[2] == runner and made == attempt and not h[4] then
  -- This runner's claim of this run again (a call retried after a lost reply): nothing new to announce.
  local again = now + tonumber(lease_ms)
  redis.call('HSET', job_key, 'lease_until', tostring(again))
  return {'claimed', '1', tostring(again)}
end
local existed = '0'
if h[5] then existed = '1' else
  redis.call('HSET', job_key, 'job_id', job_id, 'created_at', now_iso)
  if owner ~= '' then redis.call('HSET', job_key, 'owner', owner) end
  if sample_id ~= '' then redis.call('HSET', job_key, 'sample_id', sample_id) end
end
if h[4] == '1' then
  redis.call('HSET', job_key, 'final', 'cancelled', 'state', 'cancelled', 'finished_at', now_iso, 'updated_at', now_iso, 'lease_until', '0')
  if existed == '0' then announce(1) end
  announce(3)
  redis.call('EXPIRE', job_key, ttl)
  return {'cancelled', existed}
end
if h[6] == 'running' and h[2] and h[2] ~= runner then return {'expired', h[2]} end
local lease_until = now + tonumber(lease_ms)
redis.call('HSET', job_key, 'state', 'running', 'runner', runner, 'lease_until', tostring(lease_until), 'attempts', attempt,
  'started_at', now_iso, 'updated_at', now_iso, 'progress', '0', 'stage', '', 'message', '')
if gpu ~= '' then redis.call('HSET', job_key, 'gpu', gpu) else redis.call('HDEL', job_key, 'gpu') end
if spec ~= '' and redis.call('HEXISTS', job_key, 'spec') == 0 then redis.call('HSET', job_key, 'spec', spec) end
if max_retries ~= '' then redis.call('HSET', job_key, 'max_retries', max_retries) end
redis.call('HDEL', job_key, 'reaper', 'reap_until', 'stall_decision')
if existed == '0' then announce(1) end
announce(2)
redis.call('EXPIRE', job_key, ttl)
return {'claimed', existed, tostring(lease_until)}
