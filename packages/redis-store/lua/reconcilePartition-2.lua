--[[
  The sweep of one partition, run by the partition's owner (see src/duties.ts). It fires the
  partition's timers and closes every crash window: every invocation whose deadline in the due
  zset has passed is handed out again: suspended until a wake time that has come, backing off
  past its retry time, delayed past its start (these are the timers: their deadline is the wake
  time itself), ready but never picked up, running with an expired lease, completed with
  undelivered outcomes; so is every outbox effect not yet acknowledged. Each gets a new deadline
  (now + grace), so a lost dispatch is retried and concurrent sweeps do not pile up.
  KEYS[1] due zset  KEYS[2] outbox zset
  ARGV: 1 partition prefix, 2 max items, 3 grace ms, 4 most timers to fire (-1: no limit; the
        owner's free worker slots, so what it fires starts at once in its own process),
        5 the owner's worker id ('' or absent: lease nothing), 6 lease ms
  Returns {dispatch{id, ds, svc, key, mode, ...}, deliver{id, ...}, outbox{member, ...}, lag,
           fire{id, ds, svc, key, mode, ...}, wait, held, heldLate, leased{id, lease, ...}}:
  leased = suspended and backing-off timers that came due, leased to the owner's worker as
  startAttempt would (lease() in the prelude: fence epoch bumped, deadline at the lease's
  expiry), so the owner runs their attempts at once without a start script; given a worker id
  and a limit only (the limit is what the owner's free slots hold). A lease its owner never uses
  expires, and the sweep after that hands the invocation out again, as for a lost worker.
  fire = the other timers that came due (a timed wait less than grace past its wake time); dispatch =
  everything else overdue (recoveries); lag = how far past its deadline the most overdue
  recovery was (ms), -1 when there was none; wait = ms until the earliest deadline left in the
  due zset (0 when this sweep stopped at its limit), -1 when it is empty; held = 1 when it
  stopped at a due timer beyond the limit (it and what follows stay due), 0 otherwise; heldLate
  = how late that timer is (ms).
]]
local now = now_ms()
local grace = tonumber(ARGV[3])
local max = tonumber(ARGV[2])
local fire_max = tonumber(ARGV[4]) or -1
local dispatch, fire, deliver_ids, outbox, leased = {}, {}, {}, {}, {}
local held, held_late, fired = 0, -1, 0
local worker = ARGV[5] or ''
local LEASABLE = {suspended = true, ['backing-off'] = true}
-- With a limit on timers, look no further than one past it: what lies beyond waits for the next
-- sweep (each sweep that holds timers reads them again, so it reads few).
local limit = max
if fire_max >= 0 and fire_max + 1 < max then limit = fire_max + 1 end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
-- Leases a due suspended or backing-off invocation to the owner's worker (as startAttempt would
-- for it: a wake time still to come is left to startAttempt's 'early'); false when it did not.
local function fire_lease(inv, id)
  local d = hmget_named(inv, {'st', 'lease', 'wake', 'mt', unpack(LEASE_FIELDS)})
  if (tonumber(d.wake) or 0) > now then return false end
  d.ready = d.wake
  local s, ek = enc(d.svc), enc(d.key or '')
  local fence = inv
  if d.mode == 'exclusive' or d.mode == 'workflow' then fence = ARGV[1] .. KEY_FENCE .. s .. ':' .. ek end
  local l = lease(inv, d, tonumber(d.rc or '0'), ARGV[1] .. KEY_JOURNAL .. id,
    ARGV[1] .. KEY_STATE .. s .. ':' .. ek, fence, KEYS[1], ARGV[1], id, worker, ARGV[6], now)
  table.insert(leased, id)
  table.insert(leased, l)
  return true
end
local lag = -1
local TIMED = {suspended = true, ['backing-off'] = true, delayed = true}
for i = 1, #due, 2 do
  if held > 0 then break end
  local id = due[i]
  local late = now - tonumber(due[i + 1])
  local inv = ARGV[1] .. KEY_INV .. id
  local f = redis.call('HMGET', inv, 'st', 'svc', 'key', 'mode')
  local st = f[1]
  if st == 'completed' and redis.call('SCARD', ARGV[1] .. KEY_NOTIFY .. id) > 0 then
    redis.call('ZADD', KEYS[1], now + grace, id)
    table.insert(deliver_ids, id)
    if lag < 0 then lag = late end
  elseif (not st) or st == 'completed' or st == 'paused' or st == 'queued' then
    redis.call('ZREM', KEYS[1], id)
  elseif TIMED[st] and late < grace and fire_max >= 0 and fired >= fire_max then
    -- A timer beyond what the owner can start now: it stays due for the next sweep.
    held = held + 1
    if held_late < 0 then held_late = late end
  elseif LEASABLE[st] and late < grace and fire_max >= 0 and worker ~= '' and fire_lease(inv, id) then
    fired = fired + 1
  else
    local ds = redis.call('HINCRBY', inv, 'ds', 1)
    redis.call('ZADD', KEYS[1], now + grace, id)
    local into = dispatch
    if TIMED[st] and late < grace then
      into = fire
      fired = fired + 1
    elseif lag < 0 then
      lag = late
    end
    table.insert(into, id)
    table.insert(into, ds)
    table.insert(into, f[2])
    table.insert(into, f[3])
    table.insert(into, f[4])
  end
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, max)) do
  redis.call('ZADD', KEYS[2], now + grace, m)
  table.insert(outbox, m)
end
local wait = -1
if #due >= 2 * limit then
  wait = 0
else
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if first[2] then wait = math.max(0, tonumber(first[2]) - now) end
end
return {dispatch, deliver_ids, outbox, lag, fire, wait, held, held_late, leased}
