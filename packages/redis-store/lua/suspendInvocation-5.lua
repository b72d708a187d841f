--[[
  Commits entries and suspends the invocation until `wake` (store clock) or a
  completion. An exclusive invocation keeps its key while suspended.
  KEYS[1] invocation hash  KEYS[2] journal list  KEYS[3] state hash  KEYS[4] fence hash  KEYS[5] due zset
  ARGV: 1 id, 2 epoch, 3 from index, 4 wake ms ('' for none), 5 grace ms, 6 n entries, entries..., n ops, ops...
  Returns {'ok', now, dispatchSeq} or {'fenced', reason}.
]]
if not fenced(KEYS[4], ARGV[1], ARGV[2]) or redis.call('HGET', KEYS[1], 'st') ~= 'running' then
  return {'fenced', 'epoch'}
end
local r = commit_batch(KEYS[2], KEYS[3], tonumber(ARGV[3]), 6)
if r == 'gap' then return {'fenced', 'journal index'} end
local now = now_ms()
local ds = redis.call('HINCRBY', KEYS[1], 'ds', 1)
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'st', 'suspended', 'wake', ARGV[4], 'lease', 0)
  redis.call('ZADD', KEYS[5], tonumber(ARGV[4]) + tonumber(ARGV[5]), ARGV[1])
else
  redis.call('HSET', KEYS[1], 'st', 'suspended', 'wake', 0, 'lease', 0)
  redis.call('ZREM', KEYS[5], ARGV[1])
end
return {'ok', now, ds}
