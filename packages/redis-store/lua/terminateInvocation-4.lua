--[[
  Kill, or cancel. Kill ends an invocation at once: it completes with a 409
  failure, its fence epoch moves on (a running attempt can no longer write), its
  key is freed and the next queued invocation of the key becomes ready.
  Cancel of an invocation that never started does the same with a CancelledError;
  cancel of a started one records the request ('cx') and wakes it (suspended,
  backing off, paused) or tells its worker (running), so the handler sees a
  CancelledError at its next await and runs its compensations.
  KEYS[1] invocation hash  KEYS[2] key inbox (or unused)  KEYS[3] fence hash  KEYS[4] due zset
  ARGV: 1 id, 2 'kill'|'cancel', 3 partition prefix, 4 grace ms, 5 outcome channel,
        6 completion channel, 7 failure JSON, 8 workflow state key ('' unless a workflow)
  Returns {'gone'}, {'done'}, {'signalled'}, {'wake', {id, ds, svc, key, mode}} or
  {'terminated', nextId, nextDs, notify}.
]]
local id, kind, part = ARGV[1], ARGV[2], ARGV[3]
local inv = KEYS[1]
local f = redis.call('HMGET', inv, 'st', 'rep', 'mode', 'ret', 'idem', 'idemk')
local st = f[1]
if not st then return {'gone'} end
if st == 'completed' then return {'done'} end
local now = now_ms()
local grace = tonumber(ARGV[4])
if kind == 'cancel' and f[2] then
  redis.call('HSET', inv, 'cx', 1)
  if st == 'running' then
    redis.call('PUBLISH', ARGV[6], id .. '\ncancel')
    return {'signalled'}
  end
  local w = wake(part, id, now, grace, {suspended = true, ['backing-off'] = true, paused = true})
  if w then return {'wake', w} end
  return {'signalled'}
end
local mode = f[3]
local keyed = mode == 'exclusive' or mode == 'workflow'
-- Fence off a running attempt of this invocation (never another invocation of the key).
if not keyed or redis.call('HGET', KEYS[3], 'owner') == id then redis.call('HINCRBY', KEYS[3], 'ep', 1) end
redis.call('HSET', inv, 'st', 'completed', 'err', ARGV[7], 'ft', now, 'lease', 0)
-- Tell a running attempt to stop at once (its writes are already fenced off).
redis.call('PUBLISH', ARGV[6], id .. '\nstop')
local ret = cjson.decode(f[4])
local keep = ret.journal
if f[5] ~= '' and ret.idempotency > keep then keep = ret.idempotency end
if mode == 'workflow' then
  if ret.workflow > keep then keep = ret.workflow end
  local wf = redis.call('HMGET', inv, 'wfk', 'prk')
  if wf[1] then redis.call('PEXPIRE', wf[1], ret.workflow) end
  expire_promises(wf[2], ret.workflow)
  redis.call('PEXPIRE', KEYS[3], ret.workflow)
  redis.call('PEXPIRE', ARGV[8], ret.workflow)
end
redis.call('PEXPIRE', inv, keep)
redis.call('PEXPIRE', part .. 'j:' .. id, keep)
redis.call('PEXPIRE', part .. 'c:' .. id, keep)
if f[6] then redis.call('PEXPIRE', f[6], ret.idempotency) end
local nextId, nds = '', 0
if keyed then
  if redis.call('LINDEX', KEYS[2], 0) == id then
    redis.call('LPOP', KEYS[2])
    redis.call('HDEL', KEYS[3], 'owner')
    local nxt = redis.call('LINDEX', KEYS[2], 0)
    if nxt then
      local nk = part .. 'inv:' .. nxt
      nds = redis.call('HINCRBY', nk, 'ds', 1)
      redis.call('HSET', nk, 'st', 'ready')
      redis.call('ZADD', KEYS[4], now + grace, nxt)
      nextId = nxt
    end
  else
    redis.call('LREM', KEYS[2], 0, id)
  end
  if redis.call('LLEN', KEYS[2]) == 0 then redis.call('DEL', KEYS[2]) end
end
local notify = 0
if redis.call('SCARD', part .. 'nt:' .. id) > 0 then
  notify = 1
  redis.call('ZADD', KEYS[4], now + grace, id)
else
  redis.call('ZREM', KEYS[4], id)
end
redis.call('PUBLISH', ARGV[5], id .. '\nerr\n' .. ARGV[7])
return {'terminated', nextId, nds, notify}
