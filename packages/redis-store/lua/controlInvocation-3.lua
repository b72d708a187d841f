--[[
  Pause or resume. Pause moves the fence epoch (a running attempt can no longer
  write) and parks the invocation; an exclusive one keeps its key. Resume makes a
  paused invocation ready again.
  KEYS[1] invocation hash  KEYS[2] fence hash  KEYS[3] due zset
  ARGV: 1 id, 2 'pause'|'resume', 3 grace ms, 4 partition prefix, 5 completion channel
  A paused running attempt is told to stop at once (its writes are already fenced off).
  Returns {'gone'}, {'noop', status}, {'paused'} or {'wake', {id, ds, svc, key, mode}}.
]]
local st = redis.call('HGET', KEYS[1], 'st')
if not st then return {'gone'} end
if ARGV[2] == 'pause' then
  if st == 'completed' or st == 'paused' or st == 'queued' or st == 'delayed' then return {'noop', st} end
  local mode = redis.call('HGET', KEYS[1], 'mode')
  local keyed = mode == 'exclusive' or mode == 'workflow'
  if not keyed or redis.call('HGET', KEYS[2], 'owner') == ARGV[1] then redis.call('HINCRBY', KEYS[2], 'ep', 1) end
  set_status(KEYS[1], ARGV[1], 'paused', now_ms(), 'lease', 0)
  emit_status(ARGV[4], ARGV[1], 'paused')
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('SPUBLISH', ARGV[5], ARGV[1] .. '\nstop')
  return {'paused'}
end
if st ~= 'paused' then return {'noop', st} end
-- A resumed invocation gets a fresh set of attempts.
redis.call('HSET', KEYS[1], 'rc', 0)
local w = wake(ARGV[4], ARGV[1], now_ms(), tonumber(ARGV[3]), {paused = true})
return {'wake', w}
