--[[
  Appends journal entries and applies their state ops, atomically, if the caller
  still holds the fence. The one round trip of a durable step.
  KEYS[1] invocation hash  KEYS[2] journal list  KEYS[3] state hash (or unused)  KEYS[4] fence hash
  ARGV: 1 id, 2 epoch, 3 from index, 4 n entries, entries..., n ops, op triples...
  Returns {'ok', now} (also for a retried batch already committed) or {'fenced', reason}.
]]
if not fenced(KEYS[4], ARGV[1], ARGV[2]) or redis.call('HGET', KEYS[1], 'st') ~= 'running' then
  return {'fenced', 'epoch'}
end
local r = commit_batch(KEYS[2], KEYS[3], tonumber(ARGV[3]), 4)
if r == 'gap' then return {'fenced', 'journal index'} end
return {'ok', now_ms()}
