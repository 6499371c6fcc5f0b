-- Functions shared by the presence scripts (after json.lua). Presence keys of channel C, all
-- tagged {C}: pu (hash user -> connections on live nodes), pi (hash user -> info JSON),
-- pc (connections, all users), pz (zset node -> when it is declared dead, ms),
-- pn:<node> (hash user -> connections on that node).

-- join/leave frames go out on the channel's broker pub/sub as '~<frame>': no seq, so the
-- broker hands them to its signal listener, never to history or the seq check.
local function sy_signal(pubsub, sharded, frame)
  if sharded == '1' then
    redis.call('SPUBLISH', pubsub, '~' .. frame)
  else
    redis.call('PUBLISH', pubsub, '~' .. frame)
  end
end

-- Takes back the users of every node declared dead by `now`, announcing each user whose total
-- drops to zero. Walks only the dead nodes' own entries, once.
local function sy_reap(pu, pi, pc, pz, now, pn_prefix, pubsub, sharded, leave_prefix)
  local dead = redis.call('ZRANGEBYSCORE', pz, '-inf', now)
  for _, node in ipairs(dead) do
    local key = pn_prefix .. node
    local flat = redis.call('HGETALL', key)
    for i = 1, #flat, 2 do
      local user = flat[i]
      local n = tonumber(flat[i + 1])
      if n > 0 then
        local total = redis.call('HINCRBY', pu, user, -n)
        redis.call('INCRBY', pc, -n)
        if total <= 0 then
          redis.call('HDEL', pu, user)
          redis.call('HDEL', pi, user)
          sy_signal(pubsub, sharded, leave_prefix .. json_string(user) .. '}')
        end
      end
    end
    redis.call('DEL', key)
    redis.call('ZREM', pz, node)
  end
  return #dead
end
