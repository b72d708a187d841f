--[[
  The registry of worker processes that take hand-offs (see handoff.ts): announces, renews or
  withdraws one worker with its free slots, and answers the live ones.
  KEYS[1] registry hash   <prefix>:workers   (worker -> '<expiry: ms on the Redis clock>:<free slots>')
  ARGV: 1 worker ('' to only read), 2 time to live ms (0: withdraw the worker), 3 its free slots
  Returns the live workers with their free slots, flat {worker, free, ...}, the caller included.
  Invariant: expiry times come from this Redis's clock, so processes on machines whose clocks
  disagree still agree on who is live; expired entries are dropped on every call.
]]
local now = now_ms()
local ttl = tonumber(ARGV[2]) or 0
if ARGV[1] ~= '' then
  if ttl > 0 then
    redis.call('HSET', KEYS[1], ARGV[1], ms_string(now + ttl) .. ':' .. (tonumber(ARGV[3]) or 0))
  else
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local v = all[i + 1]
  local c = string.find(v, ':', 1, true)
  local expiry = c and tonumber(string.sub(v, 1, c - 1))
  if not expiry or expiry <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    live[#live + 1] = all[i]
    live[#live + 1] = string.sub(v, c + 1)
  end
end
return live
