--[[
  Removes a completed invocation early: record, journal, completions, notify and watcher sets,
  idempotency record, its entries in the partition's indexes (and in ix:exp); for a workflow run
  also its run record, state and promises.
  KEYS[1] invocation hash
  ARGV: 1 id, 2 partition prefix, 3 workflow state key, 4 workflow fence key ('' unless a workflow run)
  Returns {'gone'}, {'running', status} or {'purged'}.
  A workflow run's record is its fence's field 'run' (or, written by an earlier version, the string
  key in 'wfk'), its promises are named after its service and key (or in 'prk').
]]
local inv = KEYS[1]
local f = redis.call('HMGET', inv, 'st', 'idemk', 'wfk', 'prk', 'svc', 'h', 'key', 'mode')
if not f[1] then return {'gone'} end
if f[1] ~= 'completed' then return {'running', f[1]} end
local part, id = ARGV[2], ARGV[1]
redis.call('DEL', inv, part .. KEY_JOURNAL .. id, part .. KEY_COMPLETIONS .. id, part .. KEY_NOTIFY .. id, part .. KEY_WATCHERS .. id)
redis.call('ZREM', part .. KEY_DUE, id)
if f[2] then redis.call('DEL', f[2]) end
if f[8] == 'workflow' then
  if f[3] then redis.call('DEL', f[3]) end
  local prk = promises_key(part, f[4], f[5], f[7])
  for _, k in ipairs(redis.call('SMEMBERS', prk .. KEY_PROMISE_SETS)) do redis.call('DEL', k) end
  redis.call('DEL', prk, prk .. KEY_PROMISE_SETS)
  if ARGV[3] ~= '' then redis.call('DEL', ARGV[3]) end
  if ARGV[4] ~= '' then redis.call('DEL', ARGV[4]) end
end
-- Last: a workflow's key has nothing left now, and leaves the service's keys.
index_drop(part, id, enc(f[5]), enc(f[6]), enc(f[7] or ''), 'completed')
return {'purged'}
