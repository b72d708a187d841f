--[[
  Commits the last batch and the outcome, frees the key, makes the next
  invocation of the key ready, applies retention TTLs and notifies waiters.
  KEYS[1] invocation hash  KEYS[2] journal list  KEYS[3] state hash  KEYS[4] fence hash
  KEYS[5] due zset  KEYS[6] key inbox list (or unused)
  ARGV: 1 id, 2 epoch, 3 from index, 4 'ok'|'err', 5 value or error JSON ('' = no value),
        6 partition prefix ("<prefix>:{p}:"), 7 grace ms, 8 outcome channel, 9 completion channel,
        10.. batch
  Returns {'ok', nextId or '', nextDs, notify (1 when callers/attachers await delivery), wakes}
  or {'fenced', reason}. Retried after completion by the same epoch: {'ok', '', 0, 0, {}}.
  Also touches, in the same partition: the idempotency and workflow run records named in the
  invocation hash ('idemk', 'wfk'), the completions and notify sets, and the next invocation's hash.
  Retention (from 'ret'): record, journal and completions for `journal` ms (or `idempotency` /
  `workflow` ms when longer and applicable); workflow state, promises and run record for `workflow` ms.
]]
local id, ep, part = ARGV[1], ARGV[2], ARGV[6]
local inv = KEYS[1]
local st = redis.call('HGET', inv, 'st')
if st == 'completed' then
  if redis.call('HGET', inv, 'rep') == ep then return {'ok', '', 0, 0, {}} end
  return {'fenced', 'completed'}
end
if not fenced(KEYS[4], id, ep) or st ~= 'running' then return {'fenced', 'epoch'} end
local r, comps, wakes, now = commit_batch(KEYS[2], KEYS[3], tonumber(ARGV[3]), 10, part, id, tonumber(ARGV[7]), ARGV[9])
if r == 'gap' then return {'fenced', 'journal index'} end
if ARGV[4] == 'ok' then
  redis.call('HSET', inv, 'st', 'completed', 'out', ARGV[5], 'ft', now, 'lease', 0)
else
  redis.call('HSET', inv, 'st', 'completed', 'err', ARGV[5], 'ft', now, 'lease', 0)
end
local f = redis.call('HMGET', inv, 'mode', 'ret', 'idem', 'idemk', 'wfk', 'prk')
local mode = f[1]
local ret = cjson.decode(f[2])
local keep = ret.journal
if f[3] ~= '' and ret.idempotency > keep then keep = ret.idempotency end
if mode == 'workflow' and ret.workflow > keep then keep = ret.workflow end
redis.call('PEXPIRE', inv, keep)
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('PEXPIRE', part .. 'c:' .. id, keep)
if f[4] then redis.call('PEXPIRE', f[4], ret.idempotency) end
local nextId, nds = '', 0
if mode == 'exclusive' or mode == 'workflow' then
  if redis.call('LINDEX', KEYS[6], 0) == id then redis.call('LPOP', KEYS[6]) end
  redis.call('HDEL', KEYS[4], 'owner')
  if mode == 'workflow' then
    redis.call('PEXPIRE', KEYS[3], ret.workflow)
    redis.call('PEXPIRE', f[5], ret.workflow)
    -- The key's fence goes too: a later run of the same id has a new owner, so a zombie of
    -- this run stays fenced off even when the epoch counter starts over.
    redis.call('PEXPIRE', KEYS[4], ret.workflow)
    expire_promises(f[6], ret.workflow)
  end
  local nxt = redis.call('LINDEX', KEYS[6], 0)
  if nxt then
    local nk = part .. 'inv:' .. nxt
    nds = redis.call('HINCRBY', nk, 'ds', 1)
    redis.call('HSET', nk, 'st', 'ready')
    redis.call('ZADD', KEYS[5], now + tonumber(ARGV[7]), nxt)
    nextId = nxt
  else
    redis.call('DEL', KEYS[6])
  end
end
local notify = 0
if redis.call('SCARD', part .. 'nt:' .. id) > 0 then
  notify = 1
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[7]), id)
  redis.call('PEXPIRE', part .. 'nt:' .. id, keep)
else
  redis.call('ZREM', KEYS[5], id)
end
local msg = id .. '\n' .. ARGV[4] .. '\n' .. ARGV[5]
if string.len(msg) > 65536 then msg = id end
redis.call('PUBLISH', ARGV[8], msg)
return {'ok', nextId, nds, notify, wakes}
