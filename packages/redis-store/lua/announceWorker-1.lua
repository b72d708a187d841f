--[[
  The registry of worker processes that take hand-offs (see handoff.ts): announces, renews or
  withdraws one worker, and answers the live ones.
  KEYS[1] registry zset   <prefix>:workers   (worker -> expiry, ms on the Redis clock)
  ARGV: 1 worker ('' to only read), 2 time to live ms (0: withdraw the worker)
  Returns the live workers (expiry in the future), the caller included.
  Invariant: expiry times come from this Redis's clock, so processes on machines whose clocks
  disagree still agree on who is live; expired entries are dropped on every call.
]]
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ttl = tonumber(ARGV[2]) or 0
if ARGV[1] ~= '' then
  if ttl > 0 then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  else
    redis.call('ZREM', KEYS[1], ARGV[1])
  end
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
