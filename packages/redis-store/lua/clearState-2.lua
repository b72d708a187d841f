--[[
  Clears an object's or workflow's whole state from outside (admin), only while no exclusive
  invocation holds the key, as patchState.
  KEYS[1] state hash  KEYS[2] fence hash
  Returns {'ok'} or {'busy', owner}.
  Moves the fence epoch on (see patchState): no eager run uses the state from before.
]]
local owner = redis.call('HGET', KEYS[2], 'owner')
if owner then return {'busy', owner} end
redis.call('DEL', KEYS[1])
redis.call('HINCRBY', KEYS[2], 'ep', 1)
return {'ok'}
