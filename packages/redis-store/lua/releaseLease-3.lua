--[[
  Hands back a lease its worker never used: a hand-off lease (see acceptInvocation's ARGV 21)
  that reached a worker with no free slot. The invocation is ready again, for the mailbox job its
  caller adds next.
  KEYS[1] invocation hash  KEYS[2] fence hash (the key's for exclusive/workflow, else = KEYS[1])
  KEYS[3] partition due zset
  ARGV: 1 id, 2 the lease's epoch, 3 grace ms, 4 partition prefix
  Returns {'ok', ds} (the new dispatch sequence, for the job's id) or {'fenced', reason}.
  Invariant: fenced like every write of an attempt, so a lease that expired and was taken over is
  left alone. The fence's epoch stays moved on (nothing was written under it) and the attempt is
  not counted (rc unchanged): it never ran.
]]
local id, inv, fk = ARGV[1], KEYS[1], KEYS[2]
if not running_fenced(inv, fk, id, ARGV[2]) then return {'fenced', 'epoch'} end
local now = now_ms()
-- The key is free for its head again (a non-exclusive invocation stays its own owner).
if fk ~= inv then redis.call('HDEL', fk, 'owner') end
local f = redis.call('HMGET', inv, 'svc', 'h', 'key')
set_status(inv, id, 'ready', now, 'lease', 0)
redis.call('HDEL', inv, 'w')
emit_status(ARGV[4], id, 'ready', now, f[1], f[2], f[3])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), id)
return {'ok', redis.call('HINCRBY', inv, 'ds', 1)}
