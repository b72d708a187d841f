--[[
  Commits the last entries and the outcome, frees the key, makes the next
  invocation of the key ready, applies retention TTLs and notifies waiters.
  KEYS[1] invocation hash  KEYS[2] journal list  KEYS[3] state hash  KEYS[4] fence hash
  KEYS[5] due zset  KEYS[6] key inbox list (or unused)
  ARGV: 1 id, 2 epoch, 3 from index, 4 'ok'|'err', 5 value or error JSON ('' = no value),
        6 key prefix of this partition ("<prefix>:{p}:"), 7 grace ms, 8 channel,
        9 unused, 10 n entries, entries..., n ops, ops...
  Also touches, in the same partition: the idempotency record and workflow run record named
  in the invocation hash ('idemk', 'wfk'), and the next invocation's hash.
  Returns {'ok', nextId or '', nextDispatchSeq} or {'fenced', reason}.
  Retention (from the invocation's 'ret' JSON): journal and record for `journal` ms (or
  `idempotency`/`workflow` ms when longer and applicable); workflow state and run record for `workflow` ms.
]]
local id, ep = ARGV[1], ARGV[2]
local inv = KEYS[1]
local st = redis.call('HGET', inv, 'st')
if st == 'completed' then
  if redis.call('HGET', inv, 'rep') == ep then return {'ok', '', 0} end
  return {'fenced', 'completed'}
end
if not fenced(KEYS[4], id, ep) or st ~= 'running' then return {'fenced', 'epoch'} end
local r = commit_batch(KEYS[2], KEYS[3], tonumber(ARGV[3]), 10)
if r == 'gap' then return {'fenced', 'journal index'} end
local now = now_ms()
if ARGV[4] == 'ok' then
  redis.call('HSET', inv, 'st', 'completed', 'out', ARGV[5], 'okv', ARGV[5] ~= '' and 1 or 0, 'ft', now, 'lease', 0)
else
  redis.call('HSET', inv, 'st', 'completed', 'err', ARGV[5], 'ft', now, 'lease', 0)
end
redis.call('ZREM', KEYS[5], id)
local f = redis.call('HMGET', inv, 'mode', 'ret', 'idem', 'idemk', 'wfk')
local mode = f[1]
local ret = cjson.decode(f[2])
local keep = ret.journal
if f[3] ~= '' and ret.idempotency > keep then keep = ret.idempotency end
if mode == 'workflow' and ret.workflow > keep then keep = ret.workflow end
redis.call('PEXPIRE', inv, keep)
redis.call('PEXPIRE', KEYS[2], keep)
if f[4] then redis.call('PEXPIRE', f[4], ret.idempotency) end
local nextId, nds = '', 0
if mode == 'exclusive' or mode == 'workflow' then
  if redis.call('LINDEX', KEYS[6], 0) == id then redis.call('LPOP', KEYS[6]) end
  redis.call('HDEL', KEYS[4], 'owner')
  if mode == 'workflow' then
    redis.call('PEXPIRE', KEYS[3], ret.workflow)
    redis.call('PEXPIRE', f[5], ret.workflow)
  end
  local nxt = redis.call('LINDEX', KEYS[6], 0)
  if nxt then
    local nk = ARGV[6] .. 'inv:' .. nxt
    nds = redis.call('HINCRBY', nk, 'ds', 1)
    redis.call('HSET', nk, 'st', 'ready')
    redis.call('ZADD', KEYS[5], now + tonumber(ARGV[7]), nxt)
    nextId = nxt
  else
    redis.call('DEL', KEYS[6])
  end
end
local msg = id .. '\n' .. ARGV[4] .. '\n' .. ARGV[5]
if string.len(msg) > 65536 then msg = id end
redis.call('PUBLISH', ARGV[8], msg)
return {'ok', nextId, nds}
