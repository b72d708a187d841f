--[[
  Commits the last batch and the outcome, frees the key, makes the next
  invocation of the key ready, applies retention TTLs and notifies waiters.
  KEYS[1] invocation hash  KEYS[2] journal list  KEYS[3] state hash  KEYS[4] fence hash
  KEYS[5] due zset  KEYS[6] key inbox list (or unused)
  ARGV: 1 id, 2 epoch, 3 from index, 4 'ok'|'err', 5 value or error JSON ('' = no value),
        6 partition prefix ("<prefix>:{p}:"), 7 grace ms, 8 the caller's own outcome channel (its
        waiters it resolves itself; the other watchers get the outcome published), 9 completion channel,
        10 worker id to lease the key's next invocation to at once ('' for no), 11 lease ms,
        12.. batch
  Returns {'ok', nextId or '', nextDs, notify (1 when callers/attachers await delivery), wakes,
  run}: run is startAttempt's 'run' reply for the next invocation when ARGV 10 leased it to that
  worker, else nil. Or {'fenced', reason}. Retried after completion by the same epoch: {'ok', '', 0, 0, {}}.
  Also touches, in the same partition: the idempotency and workflow run records named in the
  invocation hash ('idemk', 'wfk'), the completions and notify sets, and the next invocation's hash
  (and, leasing it, its journal and completions).
  Retention (from 'ret'): record, journal and completions for `journal` ms (or `idempotency` /
  `workflow` ms when longer and applicable); workflow state, promises and run record for `workflow` ms.
]]
local id, ep, part = ARGV[1], ARGV[2], ARGV[6]
local inv = KEYS[1]
local st = redis.call('HGET', inv, 'st')
if st == 'completed' then
  if redis.call('HGET', inv, 'rep') == ep then return {'ok', '', 0, 0, {}} end
  return {'fenced', 'completed'}
end
if not fenced(KEYS[4], id, ep) or st ~= 'running' then return {'fenced', 'epoch'} end
local r, comps, wakes, now = commit_batch(KEYS[2], KEYS[3], tonumber(ARGV[3]), 12, part, id, tonumber(ARGV[7]), ARGV[9])
if r == 'gap' then return {'fenced', 'journal index'} end
if ARGV[4] == 'ok' then
  redis.call('HSET', inv, 'st', 'completed', 'out', ARGV[5], 'ft', now, 'lease', 0)
else
  redis.call('HSET', inv, 'st', 'completed', 'err', ARGV[5], 'ft', now, 'lease', 0)
end
local nextId, nds, notify = finish(part, id, now, tonumber(ARGV[7]), KEYS[6], KEYS[4], KEYS[5], KEYS[3])
publish_outcome(part, id, id .. '\n' .. ARGV[4] .. '\n' .. ARGV[5], ARGV[8])
local run = false
if nextId ~= '' and ARGV[10] ~= '' then
  -- The key passes straight to its next invocation, leased to the completing worker (same key:
  -- same state and fence keys).
  local ninv = part .. 'inv:' .. nextId
  local nf = redis.call('HMGET', ninv, 'mode', 'rc')
  run = lease(ninv, part .. 'j:' .. nextId, KEYS[3], KEYS[4], KEYS[5], part, nextId, nf[1], tonumber(nf[2] or '0'), ARGV[10], ARGV[11], now)
end
return {'ok', nextId, nds, notify, wakes, run}
