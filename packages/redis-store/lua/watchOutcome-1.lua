--[[
  Registers a process's interest in an invocation's outcome, or returns the outcome at once.
  KEYS[1] invocation hash
  ARGV: 1 id, 2 partition prefix, 3 the process's outcome channel
  Returns {'completed', 'ok'|'err', value or error JSON} or {'waiting'}.
  The channel joins the watcher set the completing script publishes to (see publish_outcome);
  both run atomically, so an outcome is either returned here or published to the channel.
  For an id that does not exist (yet), the registration expires after a day.
]]
local f = redis.call('HMGET', KEYS[1], 'st', 'out', 'err')
if f[1] == 'completed' then
  if f[3] then return {'completed', 'err', f[3]} end
  return {'completed', 'ok', f[2] or ''}
end
local wk = ARGV[2] .. KEY_WATCHERS .. ARGV[1]
redis.call('SADD', wk, ARGV[3])
if f[1] then
  redis.call('HSET', KEYS[1], 'wo', 1)
else
  -- Not accepted (yet): only an accept that names this channel itself (ARGV 17, as the ingress's
  -- accept for a waiting caller does) publishes to it; the registration expires after a day.
  redis.call('PEXPIRE', wk, 86400000)
end
return {'waiting'}
