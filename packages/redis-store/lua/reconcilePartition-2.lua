--[[
  The reconciler's sweep of one partition. Every invocation whose deadline in the
  due zset has passed (ready but never picked up, suspended past its wake time,
  backing off past its retry time, running with an expired lease, completed with
  undelivered outcomes) is handed out again; so is every outbox effect not yet
  acknowledged. Each gets a new deadline (now + grace), so concurrent sweeps do
  not pile up.
  KEYS[1] due zset  KEYS[2] outbox zset
  ARGV: 1 partition prefix, 2 max items, 3 grace ms
  Returns {dispatch{id, ds, svc, key, mode, ...}, deliver{id, ...}, outbox{member, ...}, lag}:
  lag = how far past its deadline the most overdue invocation was (ms), -1 when none was.
]]
local now = now_ms()
local grace = tonumber(ARGV[3])
local dispatch, deliver_ids, outbox = {}, {}, {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local lag = -1
if #due > 0 then lag = now - tonumber(due[2]) end
for i = 1, #due, 2 do
  local id = due[i]
  local inv = ARGV[1] .. KEY_INV .. id
  local f = redis.call('HMGET', inv, 'st', 'svc', 'key', 'mode')
  local st = f[1]
  if st == 'completed' and redis.call('SCARD', ARGV[1] .. KEY_NOTIFY .. id) > 0 then
    redis.call('ZADD', KEYS[1], now + grace, id)
    table.insert(deliver_ids, id)
  elseif (not st) or st == 'completed' or st == 'paused' or st == 'queued' then
    redis.call('ZREM', KEYS[1], id)
  else
    local ds = redis.call('HINCRBY', inv, 'ds', 1)
    redis.call('ZADD', KEYS[1], now + grace, id)
    table.insert(dispatch, id)
    table.insert(dispatch, ds)
    table.insert(dispatch, f[2])
    table.insert(dispatch, f[3])
    table.insert(dispatch, f[4])
  end
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))) do
  redis.call('ZADD', KEYS[2], now + grace, m)
  table.insert(outbox, m)
end
return {dispatch, deliver_ids, outbox, lag}
