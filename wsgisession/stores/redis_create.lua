-- RedisStore.create, when a plain MULTI/EXEC will not do: a session moved to a new key
-- (regenerate()), or a new session bound to a user, whose index changes with it.
--
-- ARGV  now, ttl_ms, user ('' when unbound), mode, then the new hash's (field, value) pairs
-- mode 'move'   KEYS[1] the record replaced, KEYS[2] the new record (a single node): only
--               while the replaced record is alive for the caller's clock is it deleted (and
--               dropped from its user's index) and the new one written (and indexed), so a
--               session another request ended is never brought back, and of two overlapping
--               moves of one session only the first succeeds. Returns 1, or 0 writing nothing.
-- mode 'take'   KEYS[1] the record replaced (a cluster, whose two keys are in two slots): only
--               deletes it while alive; returns {1, its user or ''}, or 0. The caller writes
--               the new record next, with 'moved'.
-- mode 'moved'  KEYS[1] the new record of a move of a user's session to a new key bound to
--               the same user, on a cluster: written unless a revocation
--               left its tombstone ('@x') there (a cluster's revoke_user marks a key it found
--               in the index before the record came); returns 1, or 0 writing nothing.
-- mode 'write'  KEYS[1] a new bound record, or a login's on a cluster: written (over a
--               tombstone too: a login that overlaps a revocation is not one of the sessions
--               it ends); returns 1.

local now, mode = tonumber(ARGV[1]), ARGV[4]
local target = KEYS[1]
if mode == 'move' or mode == 'take' then
  local old = KEYS[1]
  local stored = tonumber(redis.call('HGET', old, '@e'))
  if stored == nil or stored <= now then return 0 end
  local old_user = redis.call('HGET', old, '@u')
  redis.call('DEL', old)
  if mode == 'take' then return {1, old_user or ''} end
  if old_user and INDEX then
    redis.call('ZREM', index_of(old_user), string.sub(old, #PREFIX + 1))
  end
  target = KEYS[2]
elseif mode == 'moved' and redis.call('HEXISTS', target, '@x') == 1 then
  return 0
end
redis.call('DEL', target)
for i = 5, #ARGV, 200 do  -- 100 pairs per call, well inside Lua's stack
  redis.call('HSET', target, unpack(ARGV, i, math.min(i + 199, #ARGV)))
end
redis.call('PEXPIRE', target, ARGV[2])
if ARGV[3] ~= '' and INDEX then
  local expires = redis.call('HGET', target, '@e')
  index_add(index_of(ARGV[3]), string.sub(target, #PREFIX + 1), expires, now)
end
return 1
