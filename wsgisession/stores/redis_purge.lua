-- RedisStore: delete one record when it expired before ARGV[1] (the caller's clock). Used by
-- purge, key by key, and by a load that found the record dead, so a session another worker
-- refreshed in between is left alone.
-- Returns 1 when the record was deleted, else 0.

local stored = tonumber(redis.call('HGET', KEYS[1], '@e'))
if stored ~= nil and stored <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
