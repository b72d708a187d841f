--[[
  Commits the last batch and the outcome, frees the key, makes the next
  invocation of the key ready, applies retention TTLs and notifies waiters.
  KEYS[1] invocation hash  KEYS[2] journal list  KEYS[3] fence hash  KEYS[4] due zset
  KEYS[5] state hash (objects and workflows; absent for a service)
  KEYS[6] key inbox list (exclusive and workflow invocations only)
  ARGV: 1 id, 2 epoch, 3 from index, 4 'ok'|'err', 5 value or error JSON ('' = no value),
        6 partition prefix ("<prefix>:{p}:"), 7 grace ms, 8 the caller's own outcome channel (its
        waiters it resolves itself; the other watchers get the outcome published), 9 completion channel,
        10 worker id to lease the key's next invocation to at once ('' for no), 11 lease ms,
        12.. batch
  Returns {'ok', nextId or '', nextDs, notify (1 when callers/attachers await delivery), wakes,
  run}: run is startAttempt's 'run' reply for the next invocation when ARGV 10 leased it to that
  worker (without the key's state: the worker has it, this invocation's state after the batch),
  else nil. Or {'fenced', reason}. Retried after completion by the same epoch: {'ok', '', 0, 0, {}}.
  Also touches, in the same partition: the idempotency and workflow run records named in the
  invocation hash ('idemk', 'wfk'), the completions and notify sets, and the next invocation's hash
  (and, leasing it, its journal and completions).
  The journal of an invocation that never committed before (from index 0) is stored whole in the
  invocation hash as field 'jf' (a JSON array of the entries) instead of a journal list.
  Retention (from 'ret'): record, journal and completions for `journal` ms (or `idempotency` /
  `workflow` ms when longer and applicable); workflow state, promises and run record for `workflow` ms.
]]
local id, ep, part = ARGV[1], ARGV[2], ARGV[6]
local inv = KEYS[1]
local own = KEYS[3] == inv
local d = hmget_named(inv, own and {'owner', 'ep', unpack(FINISH_FIELDS)} or FINISH_FIELDS)
if d.st == 'completed' then
  if d.rep == ep then return {'ok', '', 0, 0, {}} end
  return {'fenced', 'completed'}
end
if d.st ~= 'running' then return {'fenced', 'epoch'} end
-- The key's holder ('hd') is read with the fence, for finish().
local holder
if own then
  if d.owner ~= id or d.ep ~= ep then return {'fenced', 'epoch'} end
else
  local ok
  ok, holder = fenced(KEYS[3], id, ep)
  if not ok then return {'fenced', 'epoch'} end
end
local grace = tonumber(ARGV[7])
-- A journal that starts with this batch is stored whole in the invocation hash ('jf').
local r, comps, wakes, now, jlen, jf = commit_batch(KEYS[2], KEYS[5], tonumber(ARGV[3]), 12, part, id, grace, ARGV[9], true)
if r == 'gap' then return {'fenced', 'journal index'} end
local outField = ARGV[4] == 'ok' and 'out' or 'err'
if jf then
  write_status(inv, id, d.st, d.svc, 'completed', now, outField, ARGV[5], 'ft', now, 'lease', 0, 'jf', jf)
else
  write_status(inv, id, d.st, d.svc, 'completed', now, outField, ARGV[5], 'ft', now, 'lease', 0)
end
emit_status(part, id, 'completed', now)
-- The fence check read its epoch: ep (the worker knows the key's state after this batch).
local nextId, nds, notify, run = finish(part, id, d, now, grace, KEYS[6], KEYS[3], KEYS[4], KEYS[5], jlen, ARGV[10], ARGV[11], ep, holder)
publish_outcome(part, id, d.wo, id .. '\n' .. ARGV[4] .. '\n' .. ARGV[5], ARGV[8])
return {'ok', nextId, nds, notify, wakes, run}
