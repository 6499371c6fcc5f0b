-- This node is alive for the channel: reaps dead nodes, then pushes its own deadline on.
-- KEYS: pu, pi, pc, pz, pn (pn:<this node>)
-- ARGV: now_ms, pn_prefix, pubsub, sharded, leave_prefix, node, deadline_ms, key_ttl_ms
-- Returns 0, or -1 lost (this node was declared dead meanwhile).
local pu = KEYS[1]
local pi = KEYS[2]
local pc = KEYS[3]
local pz = KEYS[4]
local pn = KEYS[5]
local now_ms = ARGV[1]
local pn_prefix = ARGV[2]
local pubsub = ARGV[3]
local sharded = ARGV[4]
local leave_prefix = ARGV[5]
local node = ARGV[6]
local deadline_ms = ARGV[7]
local key_ttl_ms = ARGV[8]

sy_reap(pu, pi, pc, pz, now_ms, pn_prefix, pubsub, sharded, leave_prefix)
if not redis.call('ZSCORE', pz, node) then
  return -1
end
redis.call('ZADD', pz, deadline_ms, node)
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], key_ttl_ms) end
return 0
