-- One more connection of a user on this node; announces the user's first one cluster-wide.
-- KEYS: pu, pi, pc, pz, pn (pn:<this node>)
-- ARGV: node, user, n, info ('' none), deadline_ms, key_ttl_ms, pubsub, sharded, join_frame,
--       fresh ('1': this node's first entry, '0': it must still be alive)
-- Returns 1 first join, 0 more, -1 lost (this node was declared dead meanwhile).
local pu = KEYS[1]
local pi = KEYS[2]
local pc = KEYS[3]
local pz = KEYS[4]
local pn = KEYS[5]
local node = ARGV[1]
local user = ARGV[2]
local n = tonumber(ARGV[3])
local info = ARGV[4]
local deadline_ms = ARGV[5]
local key_ttl_ms = ARGV[6]
local pubsub = ARGV[7]
local sharded = ARGV[8]
local join_frame = ARGV[9]
local fresh = ARGV[10]

if fresh == '0' and not redis.call('ZSCORE', pz, node) then
  return -1
end
redis.call('HINCRBY', pn, user, n)
redis.call('ZADD', pz, deadline_ms, node)
local total = redis.call('HINCRBY', pu, user, n)
redis.call('INCRBY', pc, n)
if info ~= '' then redis.call('HSET', pi, user, info) end
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], key_ttl_ms) end
if total == n then
  sy_signal(pubsub, sharded, join_frame)
  return 1
end
return 0
