-- The stalled job was re-queued: it is free for its next run.
-- KEYS: job_key
-- ARGV: reaper
local job_key = KEYS[1]
local reaper = ARGV[1]

local h = redis.call('HMGET', job_key, 'state', 'reaper')
if h[1] == 'stalled' and h[2] == reaper then
  redis.call('HDEL', job_key, 'reaper', 'reap_until')
  return 1
end
return 0
