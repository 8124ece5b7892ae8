-- RedisStore: one user's index (redis_index.lua), KEYS[1] = INDEX .. sha1(user).
--
-- ARGV[1] the operation, ARGV[2] the caller's clock, then:
-- 'add' member score      add the member (or raise its score), trim, keep the set's TTL
-- 'members' member...     drop the given members, trim, return every member left
-- 'remove' member         drop the member (its record is gone); returns 1 when it was there
-- 'trim'                  drop the members dead for longer than MARGIN; returns how many
-- On a single node only, as the session hashes are in other slots on a cluster:
-- 'list' user             every live session of the user: {member, its HGETALL, ...}
-- 'revoke' user keep      delete every session of the user but the one under keep ('' none),
--                         in one step; returns how many were alive
-- A member whose hash is gone leaves the index; one whose hash names another user (a rebind
-- under way on a cluster) stays until its score is trimmed.

local index, op, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
if op == 'add' then
  index_add(index, ARGV[3], ARGV[4], now)
  return 1
end
if op == 'members' then
  for i = 3, #ARGV, 200 do
    redis.call('ZREM', index, unpack(ARGV, i, math.min(i + 199, #ARGV)))
  end
  redis.call('ZREMRANGEBYSCORE', index, '-inf', number_text(now - MARGIN))
  return redis.call('ZRANGE', index, 0, -1)
end
if op == 'remove' then
  return redis.call('ZREM', index, ARGV[3])
end
if op == 'trim' then
  return redis.call('ZREMRANGEBYSCORE', index, '-inf', number_text(now - MARGIN))
end
redis.call('ZREMRANGEBYSCORE', index, '-inf', number_text(now - MARGIN))
local user, found, count = ARGV[3], {}, 0
for _, member in ipairs(redis.call('ZRANGE', index, 0, -1)) do
  local name = PREFIX .. member
  local owner = redis.call('HGET', name, '@u')
  if owner == user then
    local alive = (tonumber(redis.call('HGET', name, '@e')) or 0) > now
    if op == 'list' then
      if alive then
        found[#found + 1] = member
        found[#found + 1] = redis.call('HGETALL', name)
      end
    elseif member ~= ARGV[4] then
      redis.call('DEL', name)
      redis.call('ZREM', index, member)
      if alive then count = count + 1 end
    end
  elseif redis.call('EXISTS', name) == 0 then
    redis.call('ZREM', index, member)
  end
end
if op == 'list' then return found end
return count
