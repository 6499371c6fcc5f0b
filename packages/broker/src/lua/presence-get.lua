-- Who is in the channel, after reaping dead nodes. Past max_users an HSCAN stops once it has enough.
-- KEYS: pu, pi, pc, pz
-- ARGV: now_ms, pn_prefix, pubsub, sharded, leave_prefix, max_users
-- Returns {count, connections, {user, n, ...}, {info, ...}}; an info of false is none.
local pu = KEYS[1]
local pi = KEYS[2]
local pc = KEYS[3]
local pz = KEYS[4]
local now_ms = ARGV[1]
local pn_prefix = ARGV[2]
local pubsub = ARGV[3]
local sharded = ARGV[4]
local leave_prefix = ARGV[5]
local max_users = tonumber(ARGV[6])

sy_reap(pu, pi, pc, pz, now_ms, pn_prefix, pubsub, sharded, leave_prefix)
local count = redis.call('HLEN', pu)
local conns = tonumber(redis.call('GET', pc) or '0')
local flat = {}
if count <= max_users then
  flat = redis.call('HGETALL', pu)
elseif max_users > 0 then
  local cursor = '0'
  repeat
    local r = redis.call('HSCAN', pu, cursor, 'COUNT', 100)
    cursor = r[1]
    for i = 1, #r[2], 2 do
      if #flat < 2 * max_users then
        flat[#flat + 1] = r[2][i]
        flat[#flat + 1] = r[2][i + 1]
      end
    end
  until cursor == '0' or #flat >= 2 * max_users
end
local infos = {}
if #flat > 0 then
  local ids = {}
  for i = 1, #flat, 2 do ids[#ids + 1] = flat[i] end
  infos = redis.call('HMGET', pi, unpack(ids))
end
return {count, conns, flat, infos}
