--[[
  Patches an object's state from outside (admin), only while no exclusive
  invocation holds the key, so it never races the single writer.
  KEYS[1] state hash  KEYS[2] fence hash
  ARGV: 1 n, then pairs (name, JSON value or '' to delete), then the service's key index
        ({p}:ix:keys:<svc>) and the key, which joins it
  Returns {'ok'} or {'busy', owner}.
  Moves the fence epoch on: a process's copy of the key's state (see eager completion in
  acceptInvocation) no longer matches the key, so no eager run uses the state from before.
]]
local owner = redis.call('HGET', KEYS[2], 'owner')
if owner then return {'busy', owner} end
local n = tonumber(ARGV[1])
for i = 2, 2 * n, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('HINCRBY', KEYS[2], 'ep', 1)
if ARGV[2 * n + 2] then redis.call('ZADD', ARGV[2 * n + 2], 0, ARGV[2 * n + 3]) end
return {'ok'}
