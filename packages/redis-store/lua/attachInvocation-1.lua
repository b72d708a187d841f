--[[
  Registers `member` ('<invocationId>:<index>') to receive an invocation's outcome.
  KEYS[1] invocation hash
  ARGV: 1 id, 2 partition prefix, 3 member
  Returns {'gone'}, {'completed', completion JSON} (deliver it now) or {'ok'}.
]]
local st = redis.call('HGET', KEYS[1], 'st')
if not st then return {'gone'} end
if st == 'completed' then return {'completed', outcome_completion(KEYS[1])} end
redis.call('SADD', ARGV[2] .. KEY_NOTIFY .. ARGV[1], ARGV[3])
redis.call('HSET', KEYS[1], 'wn', 1)
return {'ok'}
