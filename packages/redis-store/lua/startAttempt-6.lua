--[[
  Leases an invocation to a worker for one attempt (the mailbox's "take").
  KEYS[1] invocation hash   KEYS[2] journal list
  KEYS[3] fence hash (key meta for exclusive/workflow, else = KEYS[1])   KEYS[4] partition due zset
  KEYS[5] state hash (objects and workflows; absent for a service)
  KEYS[6] key inbox list (exclusive and workflow invocations only)
  ARGV: 1 id, 2 worker id, 3 lease ms, 4 grace ms
  Returns:
    {'skip', reason}         nothing to do (completed, paused, gone, queued behind others)
    {'busy'}                 another worker holds a live lease
    {'early', ms}            not due yet (delayed, backing off, or suspended until a later wake
                             time): ms in [1, one day]; its deadline in `due` moves to the wake
                             time, where the partition's owner fires it (its caller does nothing)
    {'run', epoch, attempt, now, input, headers, svc, handler, key, mode, journal[], state[],
     completions[] (flat index, json), cancel requested (0|1), random seed, trace context ('' for
     none), accepted at (ms), ready at (ms: when it became ready to run), the lost previous
     attempt's start (ms; '' unless its lease expired)}
  ARGV 5: partition prefix (for the completions hash).
  Invariant: bumps the fence epoch, so every earlier holder's writes are refused. Taking over an
  attempt whose lease expired counts that lost attempt (rc + 1, lastErr WORKER_LOST).
]]
local id = ARGV[1]
local inv = KEYS[1]
local d = hmget_named(inv, {'st', 'lease', 'wake', 'mt', unpack(LEASE_FIELDS)})
local st = d.st
if not st then return {'skip', 'gone'} end
if st == 'completed' or st == 'paused' then
  -- A completed invocation whose outcome is still owed to callers keeps its deadline:
  -- the reconciler delivers from it.
  if st == 'paused' or redis.call('SCARD', ARGV[5] .. KEY_NOTIFY .. id) == 0 then redis.call('ZREM', KEYS[4], id) end
  return {'skip', st}
end
local now = now_ms()
if st == 'running' and tonumber(d.lease or '0') > now then return {'busy'} end
local mode = d.mode
local keyed = mode == 'exclusive' or mode == 'workflow'
if st == 'delayed' or st == 'backing-off' or st == 'suspended' then
  -- Whatever the field holds: a due time at most MAX_TIMER_MS away (clamp_ms), never a reply
  -- that overflows or says "now" while the time has not come.
  local wake = now + clamp_ms((tonumber(d.wake) or 0) - now)
  if wake > now then
    timer_at(ARGV[5], KEYS[4], id, wake, now)
    return {'early', math.min(wake - now, 86400000)}
  end
  if st == 'delayed' and keyed then
    -- It joins its key's queue now: it holds the key when nobody does, else it waits.
    if not join_key(KEYS[3], KEYS[6], id) then st = 'queued' end
    -- The key has a holder or an inbox again: it is one of the service's keys (the index may have
    -- pruned it).
    redis.call('ZADD', ARGV[5] .. KEY_IX_KEYS .. enc(d.svc), 0, d.key)
  end
end
if st == 'queued' and key_holder(KEYS[3], KEYS[6]) ~= id then
  set_status(inv, id, 'queued', now)
  if d.st ~= 'queued' then emit_status(ARGV[5], id, 'queued', now, d.svc, d.h, d.key) end
  redis.call('ZREM', KEYS[4], id)
  return {'skip', 'queued'}
end
local rc = tonumber(d.rc or '0')
if st == 'running' then
  -- The previous attempt's lease expired: its worker was lost. That attempt counts.
  rc = redis.call('HINCRBY', inv, 'rc', 1)
  redis.call('HSET', inv, 'lastErr', '{"name":"WorkerLost","code":"WORKER_LOST","message":"the worker running the previous attempt was lost (lease expired)"}')
  -- Its detail for operators: which attempt, and when (no step, no stack: nobody saw it fail).
  redis.call('HSET', inv, 'fail', '{"attempt":' .. rc .. '}', 'fat', ms_string(now))
  d.lost = d.lst
  d.ready = d.lease
elseif d.st == 'ready' or d.st == 'queued' then
  d.ready = d.mt
else
  -- Due by its wake time (delayed, backing off, suspended).
  d.ready = d.wake
end
return lease(inv, d, rc, KEYS[2], KEYS[5], KEYS[3], KEYS[4], ARGV[5], id, ARGV[2], ARGV[3], now)
