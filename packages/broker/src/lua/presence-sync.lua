-- Replaces this node's entries for the channel (after it was declared dead, or Redis lost
-- them), moving each user's total by the difference and announcing who appears or goes.
-- KEYS: pu, pi, pc, pz, pn (pn:<this node>)
-- ARGV: node, deadline_ms, key_ttl_ms, pubsub, sharded, join_prefix, leave_prefix,
--       then (user, connections, info or '') for each of the node's users
local pu = KEYS[1]
local pi = KEYS[2]
local pc = KEYS[3]
local pz = KEYS[4]
local pn = KEYS[5]
local node = ARGV[1]
local deadline_ms = ARGV[2]
local key_ttl_ms = ARGV[3]
local pubsub = ARGV[4]
local sharded = ARGV[5]
local join_prefix = ARGV[6]
local leave_prefix = ARGV[7]
local FIRST_USER = 8

local old = {}
local flat = redis.call('HGETALL', pn)
for i = 1, #flat, 2 do old[flat[i]] = tonumber(flat[i + 1]) end
redis.call('DEL', pn)
local function move(user, d, info)
  if d == 0 then return end
  local total = redis.call('HINCRBY', pu, user, d)
  redis.call('INCRBY', pc, d)
  if total <= 0 then
    redis.call('HDEL', pu, user)
    redis.call('HDEL', pi, user)
    sy_signal(pubsub, sharded, leave_prefix .. json_string(user) .. '}')
  elseif total == d then
    local extra = ''
    if info ~= '' then extra = ',"info":' .. info end
    sy_signal(pubsub, sharded, join_prefix .. json_string(user) .. extra .. '}')
  end
end
for i = FIRST_USER, #ARGV, 3 do
  local user = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  local info = ARGV[i + 2]
  redis.call('HSET', pn, user, n)
  if info ~= '' then redis.call('HSET', pi, user, info) end
  move(user, n - (old[user] or 0), info)
  old[user] = nil
end
for user, n in pairs(old) do
  if n > 0 then move(user, -n, '') end
end
redis.call('ZADD', pz, deadline_ms, node)
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], key_ttl_ms) end
return 0
