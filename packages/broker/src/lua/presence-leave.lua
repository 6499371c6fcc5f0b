-- One connection of a user on this node fewer; announces the user's last one cluster-wide.
-- KEYS: pu, pi, pc, pz, pn (pn:<this node>)
-- ARGV: node, user, pubsub, sharded, leave_frame
-- Returns 1 last leave, else 0.
local pu = KEYS[1]
local pi = KEYS[2]
local pc = KEYS[3]
local pz = KEYS[4]
local pn = KEYS[5]
local node = ARGV[1]
local user = ARGV[2]
local pubsub = ARGV[3]
local sharded = ARGV[4]
local leave_frame = ARGV[5]

local mine = redis.call('HINCRBY', pn, user, -1)
if mine <= 0 then redis.call('HDEL', pn, user) end
if mine < 0 then
  return 0
end
local total = redis.call('HINCRBY', pu, user, -1)
redis.call('INCRBY', pc, -1)
if total <= 0 then
  redis.call('HDEL', pu, user)
  redis.call('HDEL', pi, user)
  sy_signal(pubsub, sharded, leave_frame)
  return 1
end
return 0
