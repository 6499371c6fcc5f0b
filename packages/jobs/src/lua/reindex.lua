-- Moves an entry of the lease index only if it is unchanged; new_score '' drops it.
-- KEYS: lease_index
-- ARGV: member, expected_score, new_score
local lease_index = KEYS[1]
local member = ARGV[1]
local expected_score = ARGV[2]
local new_score = ARGV[3]

local cur = redis.call('ZSCORE', lease_index, member)
if not cur or tonumber(cur) ~= tonumber(expected_score) then return 0 end
if new_score == '' then redis.call('ZREM', lease_index, member) else redis.call('ZADD', lease_index, new_score, member) end
return 1
