--[[
  Commits a batch and suspends the invocation until `wake` (store clock) or a
  completion of an awaited entry. An exclusive invocation keeps its key while
  suspended. If an awaited completion (or a cancellation) is already there, it
  does not suspend and answers 'resume' instead: no wake-up is ever lost.
  KEYS[1] invocation hash  KEYS[2] journal list  KEYS[3] fence hash  KEYS[4] due zset
  KEYS[5] state hash (objects and workflows; absent for a service)
  ARGV: 1 id, 2 epoch, 3 from index, 4 wake ms ('' for none), 5 grace ms, 6 partition prefix,
        7 completion channel, 8 n awaited, awaited indices..., then the batch
  The wake time is its deadline in `due`: the partition's owner fires it (no mailbox job); a
  wake time already come is dispatched by the caller at once (deadline now + grace).
  Returns {'ok', now, ds, wakes} (suspended), {'resume', now, completions, wakes, cancelled} or {'fenced', reason}.
]]
if not running_fenced(KEYS[1], KEYS[3], ARGV[1], ARGV[2]) then return {'fenced', 'epoch'} end
local nawait = tonumber(ARGV[8])
local r, comps, wakes, now = commit_batch(KEYS[2], KEYS[5], tonumber(ARGV[3]), 9 + nawait, ARGV[6], ARGV[1], tonumber(ARGV[5]), ARGV[7])
if r == 'gap' then return {'fenced', 'journal index'} end
local ck = ARGV[6] .. KEY_COMPLETIONS .. ARGV[1]
local cancelled = redis.call('HGET', KEYS[1], 'cx') == '1'
local ready = cancelled
for i = 9, 8 + nawait do
  if redis.call('HEXISTS', ck, ARGV[i]) == 1 then ready = true end
end
if ready then
  local all = redis.call('HGETALL', ck)
  return {'resume', now, all, wakes, cancelled and 1 or 0}
end
local ds = redis.call('HINCRBY', KEYS[1], 'ds', 1)
if ARGV[4] ~= '' then
  local wake = now + clamp_ms((tonumber(ARGV[4]) or now) - now)
  set_status(KEYS[1], ARGV[1], 'suspended', now, 'wake', ms_string(wake), 'lease', 0)
  if wake > now then
    timer_at(ARGV[6], KEYS[4], ARGV[1], wake, now)
  else
    -- Due already: its worker dispatches it at once; this deadline is the backup.
    redis.call('ZADD', KEYS[4], now + tonumber(ARGV[5]), ARGV[1])
  end
else
  set_status(KEYS[1], ARGV[1], 'suspended', now, 'wake', 0, 'lease', 0)
  redis.call('ZREM', KEYS[4], ARGV[1])
end
emit_status(ARGV[6], ARGV[1], 'suspended', now)
return {'ok', now, ds, wakes}
