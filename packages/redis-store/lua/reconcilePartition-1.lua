--[[
  The reconciler's sweep of one partition: every invocation whose deadline in the
  due zset has passed (ready but never picked up, suspended past its wake time,
  backing off past its retry time, running with an expired lease) is dispatched again.
  KEYS[1] due zset
  ARGV: 1 key prefix of this partition ("<prefix>:{p}:"), 2 max ids, 3 grace ms
  Returns a flat list {id, dispatchSeq, service, key, mode, ...} (5 per invocation) to dispatch now.
]]
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local inv = ARGV[1] .. 'inv:' .. id
  local f = redis.call('HMGET', inv, 'st', 'svc', 'key', 'mode')
  local st = f[1]
  if (not st) or st == 'completed' or st == 'paused' or st == 'queued' then
    redis.call('ZREM', KEYS[1], id)
  else
    local ds = redis.call('HINCRBY', inv, 'ds', 1)
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
    table.insert(out, id)
    table.insert(out, ds)
    table.insert(out, f[2])
    table.insert(out, f[3])
    table.insert(out, f[4])
  end
end
return out
