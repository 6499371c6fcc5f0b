-- Publishes one event: assigns its seq, builds the frame around it, appends to the bounded
-- history, refreshes the TTLs and fans it out, in one round trip. Needs publish-fn.lua before it.
-- KEYS: meta, hist (both tagged {channel}: one slot with the channel's shard pub/sub)
-- ARGV: prefix, suffix, new_epoch, history_size, ttl_s, pubsub, now_ms, sharded ('0'/'1')
-- Returns {seq, epoch}.
local meta = KEYS[1]
local hist = KEYS[2]
local prefix = ARGV[1]
local suffix = ARGV[2]
local new_epoch = ARGV[3]
local history_size = ARGV[4]
local ttl_s = ARGV[5]
local pubsub = ARGV[6]
local now_ms = ARGV[7]
local sharded = ARGV[8]

local seq, epoch = sy_publish(meta, hist, prefix, suffix, new_epoch, history_size, ttl_s, pubsub, now_ms, sharded)
return {seq, epoch}
