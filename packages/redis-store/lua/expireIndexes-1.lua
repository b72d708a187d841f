--[[
  Removes the index entries of completed invocations whose records have expired (the reconciler
  runs it on every partition on each sweep; see index_expire).
  KEYS[1] the partition's expiry zset {p}:ix:exp ('<id>:<svc>:<handler>:<key>', names encoded ->
          the time the record expires)
  ARGV: 1 partition prefix, 2 most entries
  Returns the number of invocations removed from the indexes. A record that still exists (its
  retention was extended) is scheduled again at its own expiry.
]]
local part = ARGV[1]
local now = now_ms()
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))) do
  local id, s, eh, ek = string.match(m, '^([^:]*):([^:]*):([^:]*):([^:]*)$')
  if not id then
    redis.call('ZREM', KEYS[1], m)
  else
    local ttl = redis.call('PTTL', part .. KEY_INV .. id)
    if ttl > 0 then
      redis.call('ZADD', KEYS[1], now + ttl, m)
    elseif ttl == -1 then
      -- Not expiring (cannot happen for a completed record): its entries stay while it does.
      redis.call('ZREM', KEYS[1], m)
    else
      index_drop(part, id, s, eh, ek, 'completed')
      n = n + 1
    end
  end
end
return n
