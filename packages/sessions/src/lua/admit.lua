-- Admits one more connection of a user unless the user already holds max_connections on live
-- nodes, in one atomic step, so two nodes admitting the same user at once cannot both pass.
-- An entry of a node the caller told neither way about (one that admitted meanwhile, after the
-- caller looked) decides nothing: the script answers with those nodes, for the caller to ask
-- about and try again. (Liveness cannot be read here: the workers set may be on another shard.)
-- KEYS: user_key (hash connection -> node)
-- ARGV: max_connections, connection, node, ttl_s, n_alive, then the n_alive live nodes, then
--       the nodes known dead
-- Returns {1} admitted, {0} refused, {-1, node...} nodes to ask about first.
local user_key = KEYS[1]
local max_connections = tonumber(ARGV[1])
local connection = ARGV[2]
local node = ARGV[3]
local ttl_s = ARGV[4]
local n_alive = tonumber(ARGV[5])
local FIRST_ALIVE = 6

local alive = {}
local dead = {}
for i = FIRST_ALIVE, FIRST_ALIVE + n_alive - 1 do alive[ARGV[i]] = true end
for i = FIRST_ALIVE + n_alive, #ARGV do dead[ARGV[i]] = true end
local entries = redis.call('HGETALL', user_key)
local n = 0
local unknown = {}
for i = 1, #entries, 2 do
  local holder = entries[i + 1]
  if alive[holder] then n = n + 1 elseif not dead[holder] then unknown[#unknown + 1] = holder end
end
if #unknown > 0 then return {-1, unpack(unknown)} end
if n >= max_connections then return {0} end
redis.call('HSET', user_key, connection, node)
redis.call('EXPIRE', user_key, ttl_s)
return {1}
