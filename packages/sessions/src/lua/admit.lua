-- Admits one more connection of a user unless the user already holds max_connections on live
-- nodes, in one atomic step, so two nodes admitting the same user at once cannot both pass.
-- KEYS: user_key (hash connection -> node)
-- ARGV: max_connections, connection, node, ttl_s, then the ids of the nodes alive now
-- Returns 1 admitted, 0 refused.
local user_key = KEYS[1]
local max_connections = tonumber(ARGV[1])
local connection = ARGV[2]
local node = ARGV[3]
local ttl_s = ARGV[4]
local FIRST_ALIVE = 5

local alive = {}
for i = FIRST_ALIVE, #ARGV do alive[ARGV[i]] = true end
local entries = redis.call('HGETALL', user_key)
local n = 0
for i = 1, #entries, 2 do
  if alive[entries[i + 1]] then n = n + 1 end
end
if n >= max_connections then return 0 end
redis.call('HSET', user_key, connection, node)
redis.call('EXPIRE', user_key, ttl_s)
return 1
