-- Head of the job scripts that may announce their transition on the channel job:<id> (after
-- json.lua and publish-fn.lua of @switchyard/broker). The channel's keys share the job hash's
-- hash slot. Events are prepared in TypeScript as frame suffixes (eventSuffix) and passed as
-- the LAST announce_count arguments, after the script's own arguments and any field/value list.
-- KEYS: job_key (the hash job:<id>), meta, hist (the channel's broker keys)
-- ARGV 1-8: announce_count, prefix ('' = no broker: publish nothing), new_epoch, history_size,
--           history_ttl_s, pubsub, now_ms, sharded; the script's own arguments follow from 9.
-- announce(i) publishes suffix i and records its seq and epoch in the job hash.
local job_key = KEYS[1]
local meta = KEYS[2]
local hist = KEYS[3]
local announce_count = tonumber(ARGV[1])
local prefix = ARGV[2]
local new_epoch = ARGV[3]
local history_size = ARGV[4]
local history_ttl_s = ARGV[5]
local pubsub = ARGV[6]
local now_ms = ARGV[7]
local sharded = ARGV[8]

local function emit(suffix)
  if prefix == '' then return end
  local seq, epoch = sy_publish(meta, hist, prefix, suffix, new_epoch, history_size, history_ttl_s, pubsub, now_ms, sharded)
  redis.call('HSET', job_key, 'seq', seq, 'epoch', epoch)
end

local function announce(i)
  if i <= announce_count then emit(ARGV[#ARGV - announce_count + i]) end
end

-- data_json is built field by field with json_string, in the order the TypeScript side writes it
-- (announcementJson), so a frame made here equals the one the TypeScript encoder makes.
local function suffix(event, data_json, iso)
  return ',"event":' .. json_string(event) .. ',"data":' .. data_json .. ',"timestamp":"' .. iso .. '"}'
end
