--[[
  Appends journal entries, applies their state ops and effects, atomically, if
  the caller still holds the fence. The one round trip of a durable step.
  KEYS[1] invocation hash  KEYS[2] journal list  KEYS[3] fence hash
  KEYS[4] state hash (objects and workflows; absent for a service, which has no state)
  ARGV: 1 id, 2 epoch, 3 from index, 4 partition prefix, 5 grace ms, 6 completion channel,
        7.. batch (n, entries..., nops, ops..., neffects, effects...)
  Returns {'ok', now, completions{idx, json, ...}, wakes{id, ds, svc, key, mode, ...}} or {'fenced', reason}.
  A retried batch that is already committed answers 'ok' without a second write.
]]
if not running_fenced(KEYS[1], KEYS[3], ARGV[1], ARGV[2]) then return {'fenced', 'epoch'} end
local r, comps, wakes, now = commit_batch(KEYS[2], KEYS[4], tonumber(ARGV[3]), 7, ARGV[4], ARGV[1], tonumber(ARGV[5]), ARGV[6])
if r == 'gap' then return {'fenced', 'journal index'} end
return {'ok', now, comps, wakes}
