--[[
  Starts a completed invocation again as a new one (the admin API's restart-as-new): same target,
  input, headers and retention, a new id (same partition) and seed, no idempotency key; the new
  journal starts with the kept prefix of the old one and those entries' completions, which its
  first attempt replays. The old invocation is untouched.
  KEYS[1] old invocation hash  KEYS[2] new invocation hash  KEYS[3] new journal list
  KEYS[4] new completions hash  KEYS[5] due zset
  ARGV: 1 old id, 2 new id, 3 new seed, 4 grace ms, 5 n kept entries, entries (JSON as stored)...,
        then m kept completions, (index, completion JSON) pairs...
  Returns {'ok', dispatchSeq}, {'gone'}, {'running', status}, {'workflow'} or {'exists'}.
  The new invocation enters as 'delayed' and due now: startAttempt puts an exclusive one in its
  key's inbox then (acceptance order from there), as for any delayed invocation. With a prefix,
  'rep' is '0' (it never ran, but it has a journal to load) and 'hc' is set for its completions.
]]
local old, new = KEYS[1], KEYS[2]
local f = hmget_named(old, {'st', 'svc', 'h', 'key', 'mode', 'in', 'hdr', 'ret'})
if not f.st then return {'gone'} end
if f.st ~= 'completed' then return {'running', f.st} end
if f.mode == 'workflow' then return {'workflow'} end
if redis.call('EXISTS', new) == 1 then return {'exists'} end
local now = now_ms()
local n = tonumber(ARGV[5])
local h = {'svc', f.svc, 'h', f.h, 'key', f.key or '', 'mode', f.mode, 'in', f['in'] or '', 'idem', '',
  'hdr', f.hdr or '{}', 'ct', now, 'wake', now, 'ds', 1, 'rc', 0, 'owner', ARGV[2], 'ret', f.ret,
  'rs', ARGV[3], 'ep', 0, 'st', 'delayed', 'rsf', ARGV[1]}
if n > 0 then
  for i = 6, 5 + n, 1000 do
    redis.call('RPUSH', KEYS[3], unpack(ARGV, i, math.min(5 + n, i + 999)))
  end
  h[#h + 1] = 'rep'
  h[#h + 1] = '0'
  -- The kept entries were recorded at the restart.
  h[#h + 1] = 't:0'
  h[#h + 1] = now
end
local m = tonumber(ARGV[6 + n])
if m > 0 then
  local base = 7 + n
  for i = base, base + 2 * m - 1, 2 do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]) end
  h[#h + 1] = 'hc'
  h[#h + 1] = 1
end
redis.call('HSET', new, unpack(h))
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[4]), ARGV[2])
return {'ok', 1}
