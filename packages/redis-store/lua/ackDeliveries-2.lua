--[[
  Marks deliveries of a completed invocation's outcome as done.
  KEYS[1] notify set  KEYS[2] due zset
  ARGV: 1 id, 2.. delivered members
  Returns the number of members still to deliver.
]]
for i = 2, #ARGV do redis.call('SREM', KEYS[1], ARGV[i]) end
local left = redis.call('SCARD', KEYS[1])
if left == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
return left
