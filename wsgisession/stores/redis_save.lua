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
--          where an amount is an int's digits or a float with a point or an exponent.
-- Returns 1 when the changes were applied, 0 when the record is missing or dead.

local key = KEYS[1]
local stored = tonumber(redis.call('HGET', key, '@e'))
if stored == nil then return 0 end
if stored <= tonumber(ARGV[1]) then
  redis.call('DEL', key)
  return 0
end

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
  local out, carry, i, j = {}, 0, #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local d = carry
    if i > 0 then d = d + string.byte(a, i) - 48; i = i - 1 end
    if j > 0 then d = d + string.byte(b, j) - 48; j = j - 1 end
    if d >= 10 then carry = 1; d = d - 10 else carry = 0 end
    out[#out + 1] = string.char(48 + d)
  end
  return string.reverse(table.concat(out))
end

-- a - b for a >= b.
local function subtract_digits(a, b)
  local out, borrow, i, j = {}, 0, #a, #b
  while i > 0 do
    local d = string.byte(a, i) - 48 - borrow
    if j > 0 then d = d - (string.byte(b, j) - 48); j = j - 1 end
    if d < 0 then d = d + 10; borrow = 1 else borrow = 0 end
    out[#out + 1] = string.char(48 + d)
    i = i - 1
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

local i = 5
local removed = {}
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do removed[ARGV[i]] = true; i = i + 1 end
local updated = {}
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do updated[ARGV[i]] = ARGV[i + 1]; i = i + 2 end
local added = {}
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local field, amount = ARGV[i], ARGV[i + 1]
  i = i + 2
  local current = updated[field]
  if current == nil and not removed[field] then
    current = redis.call('HGET', key, field) or nil  -- a missing field is false
  end
  added[field] = add(current, amount)  -- nil: the key keeps the value it has
end

for field in pairs(removed) do redis.call('HDEL', key, field) end
for field, text in pairs(updated) do redis.call('HSET', key, field, text) end
for field, text in pairs(added) do redis.call('HSET', key, field, text) end
if ARGV[4] ~= '' then redis.call('HSET', key, '@m', ARGV[4]) end
if ARGV[2] ~= '' then
  redis.call('HSET', key, '@e', ARGV[2])
  redis.call('PEXPIRE', key, ARGV[3])
end
return 1
