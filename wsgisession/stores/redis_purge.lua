-- RedisStore: delete one record, and drop it from its user's index (redis_index.lua).
--
-- ARGV[1]  the caller's clock: the record is deleted only when it expired before then (purge,
--          key by key, and a load that found the record dead, so a session another worker
--          refreshed in between is left alone); '' deletes it whatever it holds (delete()).
-- Returns 1 when a record was deleted, else 0. On a cluster (INDEX nil), where the index is in
-- another slot, an unconditional delete of a bound record returns its user instead of 1, for
-- the caller to drop the key from that user's index; an expired one's member is trimmed by
-- its score anyway.

local key = KEYS[1]
if ARGV[1] ~= '' then
  local stored = tonumber(redis.call('HGET', key, '@e'))
  if stored == nil or stored > tonumber(ARGV[1]) then return 0 end
end
local user = redis.pcall('HGET', key, '@u')  -- pcall: a key of another type is deleted too
if type(user) ~= 'string' then user = false end
if redis.call('DEL', key) == 0 then return 0 end
if user and INDEX then
  redis.call('ZREM', index_of(user), string.sub(key, #PREFIX + 1))
elseif user and ARGV[1] == '' then
  return user
end
return 1
