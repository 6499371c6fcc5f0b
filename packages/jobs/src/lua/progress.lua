-- Records progress on an existing record (of `runner`'s run, unless runner is '').
-- Suffix 1: job.progress. Rest: field, value, ... then the suffixes.
-- KEYS: job_key, meta, hist (announce.lua)
-- ARGV: the announcement head (announce.lua), then ttl, runner
local ttl = ARGV[9]
local runner = ARGV[10]
local FIELDS_FROM = 11
local fields_to = #ARGV - announce_count

if redis.call('EXISTS', job_key) == 0 then return 0 end
if runner ~= '' then
  local h = redis.call('HMGET', job_key, 'runner', 'state', 'final')
  if h[1] ~= runner or h[2] ~= 'running' or h[3] then return 0 end
end
redis.call('HSET', job_key, unpack(ARGV, FIELDS_FROM, fields_to))
announce(1)
redis.call('EXPIRE', job_key, ttl)
return 1
