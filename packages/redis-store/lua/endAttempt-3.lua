--[[
  Ends an attempt without completing: retry after a backoff, or pause.
  KEYS[1] invocation hash  KEYS[2] fence hash  KEYS[3] due zset
  ARGV: 1 id, 2 epoch, 3 'retry'|'pause', 4 failure JSON, 5 delay ms, 6 grace ms,
        7 failure detail JSON ({attempt, step?, stack?}; '' or absent for none)
  The detail is kept as 'fail' with the time of the failure as 'fat' (the admin API's `failure`).
  Returns {'ok', dispatchSeq, delayMs (at most a day; the caller dispatches only a 0)} or
  {'fenced', reason}.
]]
if not running_fenced(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then
  return {'fenced', 'epoch'}
end
local now = now_ms()
-- The last failure's detail for operators (where it failed, its stack), with its time.
if ARGV[7] and ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'fail', ARGV[7], 'fat', ms_string(now)) end
if ARGV[3] == 'pause' then
  set_status(KEYS[1], ARGV[1], 'paused', now, 'lastErr', ARGV[4], 'lease', 0)
  emit_status(part_of(KEYS[1], ARGV[1]), ARGV[1], 'paused', now)
  redis.call('HINCRBY', KEYS[1], 'rc', 1)
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'ok', 0, 0}
end
local delay = clamp_ms(ARGV[5])
local ds = redis.call('HINCRBY', KEYS[1], 'ds', 1)
redis.call('HINCRBY', KEYS[1], 'rc', 1)
set_status(KEYS[1], ARGV[1], 'backing-off', now, 'wake', ms_string(now + delay), 'lastErr', ARGV[4], 'lease', 0)
emit_status(part_of(KEYS[1], ARGV[1]), ARGV[1], 'backing-off', now)
if delay > 0 then
  -- The retry time is its deadline: the partition's owner fires it (no mailbox job).
  timer_at(part_of(KEYS[1], ARGV[1]), KEYS[3], ARGV[1], now + delay, now)
else
  -- Retried at once by the caller; this deadline is the backup.
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[1])
end
return {'ok', ds, math.min(delay, 86400000)}
