--[[
  The registry of live worker processes, which the partitions' duties are spread over (see
  src/duties.ts). One key with its own hash tag (`{w}`), so it runs on one Redis Cluster slot.
  KEYS[1] live processes zset (duty id -> expiry, Redis clock ms)
  ARGV: 1 duty id, 2 'beat'|'leave', 3 ttl ms (for 'beat')
  Returns the duty ids of the live processes (this one included after a beat), in no
  particular order; each caller sorts them.
  Invariant: a process that stops beating drops out after ttl; every beat removes the expired.
]]
local now = now_ms()
if ARGV[2] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
-- The registry outlives its last process by a while only (a test's prefix leaves nothing behind).
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 10 + 60000)
return redis.call('ZRANGE', KEYS[1], 0, -1)
