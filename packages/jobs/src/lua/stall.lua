-- A running job whose lease has lapsed becomes `stalled` here, once: job.stalled goes out, and
-- this reaper holds it for reap_ms. A stalled job whose reaper let its hold lapse is taken over
-- (no second job.stalled).
-- KEYS: job_key, meta, hist (announce.lua)
-- ARGV: the announcement head (announce.lua), then reaper, now_iso, reap_ms, ttl, default_max_retries
local reaper = ARGV[9]
local now_iso = ARGV[10]
local reap_ms = ARGV[11]
local ttl = ARGV[12]
local default_max_retries = ARGV[13]

local h = redis.call('HMGET', job_key, 'job_id', 'final', 'state', 'lease_until', 'runner', 'attempts', 'max_retries', 'reaper', 'reap_until', 'stall_decision', 'spec', 'cancel_requested', 'error')
if not h[1] or h[2] then return {'idle'} end
local attempts = tonumber(h[6] or '0') or 0
local reap_until = now + tonumber(reap_ms)
if h[3] == 'running' then
  local lease = tonumber(h[4] or '0') or 0
  if lease > now then return {'alive', tostring(lease)} end
  if h[12] == '1' then
    redis.call('HSET', job_key, 'final', 'cancelled', 'state', 'cancelled', 'finished_at', now_iso, 'updated_at', now_iso, 'lease_until', '0')
    emit(suffix('job.cancelled', '{"job_id":' .. json_string(h[1]) .. '}', now_iso))
    redis.call('EXPIRE', job_key, ttl)
    return {'cancelled'}
  end
  local max_retries = tonumber(h[7] or default_max_retries) or 0
  local decision = 'retry'
  if attempts > max_retries or not h[11] then decision = 'fail' end
  local runner = h[5] or ''
  local err = 'runner ' .. runner .. ' stopped renewing the lease of run ' .. attempts .. ' (it died or hangs)'
  redis.call('HSET', job_key, 'state', 'stalled', 'lease_until', '0', 'reaper', reaper, 'reap_until', tostring(reap_until),
    'stall_decision', decision, 'error', err, 'class', 'stalled', 'updated_at', now_iso)
  redis.call('HINCRBY', job_key, 'stalls', 1)
  emit(suffix('job.stalled', '{"job_id":' .. json_string(h[1]) .. ',"attempt":' .. string.format('%d', attempts)
    .. ',"runner":' .. json_string(runner) .. ',"error":' .. json_string(err) .. ',"will_retry":' .. tostring(decision == 'retry')
    .. ',"max_retries":' .. string.format('%d', max_retries) .. '}', now_iso))
  redis.call('EXPIRE', job_key, ttl)
  return {'stalled', decision, tostring(attempts), runner, err, h[11] or '', '0', tostring(reap_until)}
end
if h[3] == 'stalled' and h[8] then
  local held = tonumber(h[9] or '0') or 0
  if held > now and h[8] ~= reaper then return {'reaping', h[8], tostring(held)} end
  redis.call('HSET', job_key, 'reaper', reaper, 'reap_until', tostring(reap_until))
  return {'stalled', h[10] or 'fail', tostring(attempts), h[5] or '', h[13] or '', h[11] or '', '1', tostring(reap_until)}
end
return {'idle'}
