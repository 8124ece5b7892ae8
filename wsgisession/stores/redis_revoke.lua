-- RedisStore.revoke_user on a cluster: end one session of the index, in its own slot.
--
-- KEYS[1]  a session's hash, found in the user's index
-- ARGV     the user, now, tombstone_ms
-- Returns 2 when the user's live session was deleted, 1 when a dead one was, 0 when there was
-- none (a tombstone is left, so a move to this key still in flight, that put the key in the
-- index first, is refused: redis_create.lua's 'moved'; the member stays in the index, as a
-- login may still write its record there), -1 when the hash belongs to no one or to another
-- user (left as it is).

local key = KEYS[1]
local owner = redis.call('HGET', key, '@u')
if owner == ARGV[1] then
  local alive = (tonumber(redis.call('HGET', key, '@e')) or 0) > tonumber(ARGV[2])
  redis.call('DEL', key)
  if alive then return 2 end
  return 1
end
if redis.call('EXISTS', key) == 0 or redis.call('HEXISTS', key, '@x') == 1 then
  redis.call('HSET', key, '@x', '1')
  redis.call('PEXPIRE', key, ARGV[3])
  return 0
end
return -1
