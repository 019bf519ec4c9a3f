-- GCRA step for one key, atomically, on the Redis server's clock. A port of gcra() in
-- gcra.go, in microseconds; keep the two in step.
--
-- KEYS[1]  the key's hash: t = TAT in whole microseconds since the Unix epoch,
--          f = extra 1/limit microseconds (0 <= f < limit)
-- ARGV[1]  limit (> 0)
-- ARGV[2]  window in microseconds (> 0); limit * window < 2^53 (checked by the caller)
-- ARGV[3]  optional, for tests only: the time in microseconds, instead of TIME
-- Returns  {allowed (0|1), remaining, retry_after_us, reset_us}
--
-- Lua numbers are doubles: every integer here stays below 2^53, so arithmetic on them is
-- exact; quotients are floored and then corrected by one where rounding could err, and
-- numbers are written back with %.0f (tostring would print 14 significant digits).
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])

-- Scripts replicate their effects (not the script) since Redis 5, which makes reading
-- TIME before writing allowed; older servers need to be asked.
if redis.replicate_commands then
  pcall(redis.replicate_commands)
end

-- fdiv returns floor(a / b) exactly for non-negative integers a, b below 2^53.
local function fdiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local function ceil_units(whole, frac)
  if frac > 0 then
    return whole + 1
  end
  return whole
end

local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local st = redis.call('HMGET', key, 't', 'f')
local tat = tonumber(st[1]) or now
local frac = tonumber(st[2]) or 0
if frac >= limit then -- the limit changed since the state was stored
  local whole = fdiv(frac, limit)
  tat = tat + whole
  frac = frac - whole * limit
end
if tat < now then -- idle: no debt
  tat = now
  frac = 0
end

local q = fdiv(window, limit)
local ntat = tat + q
local nfrac = frac + (window - q * limit)
if nfrac >= limit then
  ntat = ntat + 1
  nfrac = nfrac - limit
end

local allow_at = ntat - window
if allow_at > now or (allow_at == now and nfrac > 0) then
  return {0, 0, ceil_units(allow_at - now, nfrac), ceil_units(tat - now, frac)}
end

local remaining = fdiv((now - allow_at) * limit - nfrac, window)
local reset = ceil_units(ntat - now, nfrac)
redis.call('HSET', key, 't', string.format('%.0f', ntat), 'f', string.format('%.0f', nfrac))
-- The key holds debt until the TAT; after that it equals a missing key, so let it go.
-- PEXPIRE counts from Redis's cached clock, which can lag TIME by a few milliseconds on
-- a busy server; the margin keeps a key from expiring while it still holds debt.
redis.call('PEXPIRE', key, string.format('%.0f', math.floor(reset / 1000) + 1000))
return {1, remaining, 0, reset}
