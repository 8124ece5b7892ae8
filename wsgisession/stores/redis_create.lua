-- RedisStore.create with replaces: move a session to a new key (regenerate()), only while the
-- record it replaces is alive for the caller's clock, so a session another request ended is
-- never brought back, and of two overlapping moves of one session only the first succeeds.
--
-- KEYS[1]  the record replaced;  KEYS[2]  the new record (absent on a cluster, see below)
-- ARGV     now, ttl_ms, then the new hash's (field, value) pairs
-- Returns 1 when the old record was alive (and is now gone), else 0 and nothing is written.
--
-- A cluster keeps the two keys in different slots, which one script cannot touch: there it is
-- called with the old key alone and only takes it, and the caller writes the new record next.

local stored = tonumber(redis.call('HGET', KEYS[1], '@e'))
if stored == nil or stored <= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
local target = KEYS[2]
if target ~= nil then
  redis.call('DEL', target)
  for i = 3, #ARGV, 200 do  -- 100 pairs per call, well inside Lua's stack
    redis.call('HSET', target, unpack(ARGV, i, math.min(i + 199, #ARGV)))
  end
  redis.call('PEXPIRE', target, ARGV[2])
end
return 1
