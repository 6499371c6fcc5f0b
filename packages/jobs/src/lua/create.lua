-- Creates a job's status record unless it exists.
-- Suffix 1: job.queued. Rest: field, value, ... then the suffixes. Returns 1 created, 0 taken.
-- KEYS: job_key, meta, hist (announce.lua)
-- ARGV: the announcement head (announce.lua), then ttl
local ttl = ARGV[9]
local FIELDS_FROM = 10
local fields_to = #ARGV - announce_count

if redis.call('EXISTS', job_key) == 1 then return 0 end
redis.call('HSET', job_key, unpack(ARGV, FIELDS_FROM, fields_to))
announce(1)
redis.call('EXPIRE', job_key, ttl)
return 1
