-- RedisStore: the user index, shared by every script (the store puts this text, after a line
-- that defines PREFIX, INDEX and MARGIN, in front of each script it registers).
--
-- A session bound to a user carries the user's id in its hash's '@u' field, and its key (the
-- part after PREFIX) is a member of the user's index: a sorted set under INDEX .. sha1(user),
-- scored by the session's expiry. Members whose score passed more than MARGIN seconds ago
-- (the TTL margin) are trimmed whenever a member is added, so sessions that Redis expired
-- never pile up; the set's own TTL follows its latest session, so an idle user's index goes
-- too. On a single node the scripts keep the index in the same atomic step as the session;
-- on a cluster the index is in another slot, INDEX is nil here, and the store keeps the index
-- with redis_users.lua, in an order that stays correct (see RedisStore).

-- A number as text that reads back as the same double (redis.call would keep 14 digits).
local function number_text(x)
  return string.format('%.17g', x)
end

local function index_of(user)
  return INDEX .. redis.sha1hex(user)
end

-- Add (or move up) member with score, trim the members dead for longer than MARGIN, and keep
-- the set alive as long as its latest session.
local function index_add(index, member, score, now)
  redis.call('ZADD', index, 'GT', score, member)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', number_text(now - MARGIN))
  local top = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if top[2] ~= nil then
    local ms = math.ceil((tonumber(top[2]) - now + MARGIN) * 1000)
    redis.call('PEXPIRE', index, string.format('%.0f', math.max(ms, 1)))
  end
end
