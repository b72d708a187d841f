--[[
  Extends a running attempt's lease (the worker's heartbeat).
  KEYS[1] invocation hash  KEYS[2] fence hash  KEYS[3] due zset
  ARGV: 1 id, 2 epoch, 3 lease ms
  Returns {'ok', now} or {'fenced', reason}.
]]
if not running_fenced(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then
  return {'fenced', 'epoch'}
end
local now = now_ms()
local expiry = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'lease', expiry)
redis.call('ZADD', KEYS[3], expiry, ARGV[1])
return {'ok', now}
