--[[
  Kill, or cancel. Kill ends an invocation at once: it completes with a 409
  failure, its fence epoch moves on (a running attempt can no longer write), its
  key is freed and the next queued invocation of the key becomes ready.
  Cancel of an invocation that never started does the same with a CancelledError;
  cancel of a started one records the request ('cx') and wakes it (suspended,
  backing off, paused) or tells its worker (running), so the handler sees a
  CancelledError at its next await and runs its compensations.
  KEYS[1] invocation hash  KEYS[2] fence hash  KEYS[3] due zset
  KEYS[4] key inbox (exclusive and workflow invocations only)
  ARGV: 1 id, 2 'kill'|'cancel', 3 partition prefix, 4 grace ms, 5 (unused),
        6 completion channel, 7 failure JSON, 8 workflow state key ('' unless a workflow)
  Returns {'gone'}, {'done'}, {'signalled'}, {'wake', {id, ds, svc, key, mode}} or
  {'terminated', nextId, nextDs, notify}.
]]
local id, kind, part = ARGV[1], ARGV[2], ARGV[3]
local inv = KEYS[1]
local d = hmget_named(inv, FINISH_FIELDS)
local st = d.st
if not st then return {'gone'} end
if st == 'completed' then return {'done'} end
local now = now_ms()
local grace = tonumber(ARGV[4])
if kind == 'cancel' and d.rep then
  redis.call('HSET', inv, 'cx', 1)
  if st == 'running' then
    redis.call('SPUBLISH', ARGV[6], id .. '\ncancel')
    return {'signalled'}
  end
  local w = wake(part, id, now, grace, {suspended = true, ['backing-off'] = true, paused = true})
  if w then return {'wake', w} end
  return {'signalled'}
end
local mode = d.mode
local keyed = mode == 'exclusive' or mode == 'workflow'
-- Fence off a running attempt of this invocation (never another invocation of the key).
if not keyed or redis.call('HGET', KEYS[2], 'owner') == id then redis.call('HINCRBY', KEYS[2], 'ep', 1) end
write_status(inv, id, st, d.svc, 'completed', now, 'err', ARGV[7], 'ft', now, 'lease', 0)
emit_status(part, id, 'completed', now)
-- Tell a running attempt to stop at once (its writes are already fenced off).
redis.call('SPUBLISH', ARGV[6], id .. '\nstop')
local nextId, nds, notify = finish(part, id, d, now, grace, KEYS[4], KEYS[2], KEYS[3], ARGV[8])
publish_outcome(part, id, d.wo, id .. '\nerr\n' .. ARGV[7], '')
return {'terminated', nextId, nds, notify}
