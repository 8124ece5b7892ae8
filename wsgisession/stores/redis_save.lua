-- RedisStore.save: apply a request's changes to one session hash, atomically, only while the
-- record is alive for the caller's clock (a session that ended is never brought back).
--
-- This is Changes.apply_to (wsgisession/records.py) in Lua, and the store contract holds it to
-- that on generated changes: removals first, then updates, then each increment added to the
-- value the key has after those (a missing or non-numeric value counts as 0). Two ints add
-- exactly at any size, as Python's ints do; with a float on either side the sum is a float
-- (Lua's numbers are the same IEEE doubles as Python's floats). A sum JSON cannot hold (a float
-- overflowing to infinity, an int of more than 4300 digits) leaves the key as it was.
--
-- KEYS[1]  the session's hash
-- ARGV     now, expires ('' keeps it), ttl_ms, meta ('' keeps it),
--          n_removals, field..., n_updates, (field, json)..., n_increments, (field, amount)...
--          where an amount is an int's digits or a float with a point or an exponent;
--          with a new meta, last, the user it binds ('' for none): a save without one sends
--          nothing more than before there were users.
-- Returns 1 when the changes were applied, 0 when the record is missing or dead (a tombstone
-- has no '@e' either). On a cluster (INDEX nil), a save that changed the user from a bound one
-- returns that user's id instead of 1, so the caller drops the key from that user's index.
--
-- The user index (redis_index.lua): a new user moves the key from the old user's index to the
-- new one's; a new expiry of a bound session moves its score. On a single node that happens
-- here, in the same step.

local key = KEYS[1]
local stored = tonumber(redis.call('HGET', key, '@e'))
if stored == nil then return 0 end
if stored <= tonumber(ARGV[1]) then
  redis.call('DEL', key)
  return 0
end

-- ARGV[first..last] as the arguments of command on the hash, at most step at a time (Lua's
-- unpack has a limit).
local function call_with(command, first, last, step)
  for j = first, last, step do
    redis.call(command, key, unpack(ARGV, j, math.min(j + step - 1, last)))
  end
end

-- The rule's order, on the hash itself: removals, updates, then each increment reads the value
-- the field has after those. Nothing below can fail, so a save lands whole.
local i = 5
local n = tonumber(ARGV[i]); i = i + 1
call_with('HDEL', i, i + n - 1, 200)
i = i + n
n = tonumber(ARGV[i]); i = i + 1
call_with('HSET', i, i + 2 * n - 1, 200)
i = i + 2 * n
n = tonumber(ARGV[i]); i = i + 1
if n > 0 then
  -- Defined only here: a save without increments does not pay for making them.
  local MAX_DIGITS = 4300

  -- Digit strings without sign: leading zeros dropped, '' is '0'.
  local function strip(digits)
    local kept = string.gsub(digits, '^0+', '')
    if kept == '' then return '0' end
    return kept
  end

  local function smaller(a, b)
    if #a ~= #b then return #a < #b end
    return a < b
  end

  local function add_digits(a, b)
    local out, carry, p, q = {}, 0, #a, #b
    while p > 0 or q > 0 or carry > 0 do
      local d = carry
      if p > 0 then d = d + string.byte(a, p) - 48; p = p - 1 end
      if q > 0 then d = d + string.byte(b, q) - 48; q = q - 1 end
      if d >= 10 then carry = 1; d = d - 10 else carry = 0 end
      out[#out + 1] = string.char(48 + d)
    end
    return string.reverse(table.concat(out))
  end

  -- a - b for a >= b.
  local function subtract_digits(a, b)
    local out, borrow, p, q = {}, 0, #a, #b
    while p > 0 do
      local d = string.byte(a, p) - 48 - borrow
      if q > 0 then d = d - (string.byte(b, q) - 48); q = q - 1 end
      if d < 0 then d = d + 10; borrow = 1 else borrow = 0 end
      out[#out + 1] = string.char(48 + d)
      p = p - 1
    end
    return strip(string.reverse(table.concat(out)))
  end

  -- The exact sum of two ints written in decimal, as decimal text.
  local function add_ints(x, y)
    if #x < 16 and #y < 16 then
      -- Both below 10^15 in size: the doubles' sum is exact.
      return string.format('%.0f', tonumber(x) + tonumber(y))
    end
    local x_negative, y_negative = string.sub(x, 1, 1) == '-', string.sub(y, 1, 1) == '-'
    local a = strip(x_negative and string.sub(x, 2) or x)
    local b = strip(y_negative and string.sub(y, 2) or y)
    local negative, digits
    if x_negative == y_negative then
      negative, digits = x_negative, add_digits(a, b)
    elseif smaller(a, b) then
      negative, digits = y_negative, subtract_digits(b, a)
    else
      negative, digits = x_negative, subtract_digits(a, b)
    end
    if #digits > MAX_DIGITS then return nil end
    if negative and digits ~= '0' then return '-' .. digits end
    return digits
  end

  -- What an increment by amount makes of the JSON text current (nil when missing): JSON text,
  -- or nil when JSON cannot hold the sum.
  local function add(current, amount)
    local number = current and tonumber(current)
    if number == nil then current, number = '0', 0 end
    if string.find(current, '^-?%d+$') and string.find(amount, '^-?%d+$') then
      return add_ints(current, amount)
    end
    local sum = number + tonumber(amount)
    if sum ~= sum or sum == math.huge or sum == -math.huge then return nil end
    local text = string.format('%.17g', sum)  -- 17 digits: reads back as the same double
    if not string.find(text, '[.e]') then text = text .. '.0' end  -- a float, not an int
    return text
  end

  for _ = 1, n do
    local field = ARGV[i]
    local text = add(redis.call('HGET', key, field) or nil, ARGV[i + 1])  -- missing: false
    if text ~= nil then redis.call('HSET', key, field, text) end  -- nil: the value stays
    i = i + 2
  end
end
local old_user, user = false, false
if ARGV[4] ~= '' then
  redis.call('HSET', key, '@m', ARGV[4])
  old_user = redis.call('HGET', key, '@u')
  user = ARGV[#ARGV] ~= '' and ARGV[#ARGV]
  if user == old_user then
    old_user = false  -- the same user: nothing moves but the score
  elseif user then
    redis.call('HSET', key, '@u', user)
  else
    redis.call('HDEL', key, '@u')
  end
end
if ARGV[2] ~= '' then
  redis.call('HSET', key, '@e', ARGV[2])
  redis.call('PEXPIRE', key, ARGV[3])
  if ARGV[4] == '' then user = redis.call('HGET', key, '@u') end
end
if not INDEX then return old_user or 1 end
local member = string.sub(key, #PREFIX + 1)
if old_user then redis.call('ZREM', index_of(old_user), member) end
if user then
  index_add(index_of(user), member, redis.call('HGET', key, '@e'), tonumber(ARGV[1]))
end
return 1
