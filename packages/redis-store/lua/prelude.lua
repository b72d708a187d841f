-- Shared helpers, prepended to every script.
-- The store clock: Redis TIME in milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The fence: the hash `fk` names the current owner and epoch of a key (for
-- exclusive/workflow invocations, the object key's meta hash; otherwise the
-- invocation's own hash). A write is allowed only from that owner at that epoch.
local function fenced(fk, id, ep)
  local v = redis.call('HMGET', fk, 'owner', 'ep')
  return v[1] == id and v[2] == ep
end

-- The completion an invocation's outcome delivers to a caller or attacher.
local function outcome_completion(inv)
  local f = redis.call('HMGET', inv, 'out', 'err')
  if f[2] then return '{"ok":false,"e":' .. f[2] .. '}' end
  if f[1] and f[1] ~= '' then return cjson.encode({ok = true, v = f[1]}) end
  return '{"ok":true}'
end

-- Makes a suspended (or otherwise waiting) invocation ready again and returns
-- its dispatch tuple {id, ds, svc, key, mode}, or nil when it needs no wake-up.
local function wake(part, id, now, grace, states)
  local inv = part .. 'inv:' .. id
  local f = redis.call('HMGET', inv, 'st', 'svc', 'key', 'mode')
  if not f[1] or not states[f[1]] then return nil end
  local ds = redis.call('HINCRBY', inv, 'ds', 1)
  redis.call('HSET', inv, 'st', 'ready')
  redis.call('ZADD', part .. 'due', now + grace, id)
  return {id, ds, f[2], f[3], f[4]}
end

local WAKEABLE = {suspended = true}

-- Lets a finished workflow's promises and their waiter sets expire with it.
local function expire_promises(prk, ttl)
  if not prk then return end
  redis.call('PEXPIRE', prk, ttl)
  for _, k in ipairs(redis.call('SMEMBERS', prk .. ':w')) do redis.call('PEXPIRE', k, ttl) end
  redis.call('PEXPIRE', prk .. ':w', ttl)
end

-- Delivers a completion for entry `idx` of invocation `id` (same partition):
-- stored once; wakes a suspended invocation, or tells a running one.
local function deliver(part, id, idx, completion, now, grace, chan, wakes)
  local inv = part .. 'inv:' .. id
  local st = redis.call('HGET', inv, 'st')
  if not st then return 'gone' end
  if st == 'completed' then return 'done' end
  if redis.call('HSETNX', part .. 'c:' .. id, idx, completion) == 0 then return 'dup' end
  local w = wake(part, id, now, grace, WAKEABLE)
  if w then
    for _, x in ipairs(w) do table.insert(wakes, x) end
  elseif st == 'running' then
    -- Only a running attempt is told; a paused one sees the completion when resumed.
    redis.call('PUBLISH', chan, id .. '\n' .. idx .. '\n' .. completion)
  end
  return 'ok'
end

-- Everything that follows an invocation's completion, whether it completed itself or was
-- killed or cancelled: retention TTLs (record, journal, completions, idempotency record; a
-- workflow run's state, run record, fence and promises), freeing its key (or leaving the
-- inbox it never reached the head of) and readying the next head, and a deadline in `due`
-- while its outcome is still owed to callers. `state` is the workflow's state key.
-- Returns the next head ('' for none), its dispatch sequence, and 1 when outcomes await delivery.
local function finish(part, id, now, grace, inbox, fence, due, state)
  local inv = part .. 'inv:' .. id
  local f = redis.call('HMGET', inv, 'mode', 'ret', 'idem', 'idemk', 'wfk', 'prk')
  local mode = f[1]
  local ret = cjson.decode(f[2])
  local keep = ret.journal
  if f[3] ~= '' and ret.idempotency > keep then keep = ret.idempotency end
  if mode == 'workflow' and ret.workflow > keep then keep = ret.workflow end
  redis.call('PEXPIRE', inv, keep)
  redis.call('PEXPIRE', part .. 'j:' .. id, keep)
  redis.call('PEXPIRE', part .. 'c:' .. id, keep)
  if f[4] then redis.call('PEXPIRE', f[4], ret.idempotency) end
  local nextId, nds = '', 0
  if mode == 'exclusive' or mode == 'workflow' then
    if mode == 'workflow' then
      redis.call('PEXPIRE', state, ret.workflow)
      if f[5] then redis.call('PEXPIRE', f[5], ret.workflow) end
      -- The key's fence goes too: a later run of the same id has a new owner, so a zombie of
      -- this run stays fenced off even when the epoch counter starts over.
      redis.call('PEXPIRE', fence, ret.workflow)
      expire_promises(f[6], ret.workflow)
    end
    if redis.call('LINDEX', inbox, 0) == id then
      redis.call('LPOP', inbox)
      redis.call('HDEL', fence, 'owner')
      local nxt = redis.call('LINDEX', inbox, 0)
      if nxt then
        local nk = part .. 'inv:' .. nxt
        nds = redis.call('HINCRBY', nk, 'ds', 1)
        redis.call('HSET', nk, 'st', 'ready')
        redis.call('ZADD', due, now + grace, nxt)
        nextId = nxt
      end
    else
      redis.call('LREM', inbox, 0, id)
    end
    if redis.call('LLEN', inbox) == 0 then redis.call('DEL', inbox) end
  end
  local notify = 0
  if redis.call('SCARD', part .. 'nt:' .. id) > 0 then
    notify = 1
    redis.call('ZADD', due, now + grace, id)
    redis.call('PEXPIRE', part .. 'nt:' .. id, keep)
  else
    redis.call('ZREM', due, id)
  end
  return nextId, nds, notify
end

-- Sends a completed invocation's outcome message to the processes waiting for it (each listens
-- on its own channel, registered in the watcher set), except channel `own`, whose waiters the
-- caller resolves itself; then forgets the watchers (later ones find the invocation completed).
local function publish_outcome(part, id, msg, own)
  local wk = part .. 'ow:' .. id
  local chans = redis.call('SMEMBERS', wk)
  if #chans == 0 then return end
  if string.len(msg) > 65536 then msg = id end
  for _, ch in ipairs(chans) do
    if ch ~= own then redis.call('PUBLISH', ch, msg) end
  end
  redis.call('DEL', wk)
end

-- Appends journal entries, fixing sleep due times from the store clock:
-- a new sleep entry carries the token "@+<ms>" which becomes now + ms.
-- JSON escaping puts a backslash before every quote inside strings, so the
-- quoted token can only match where the runtime wrote it.
local function append_entries(jk, now, first, count)
  for i = first, first + count - 1 do
    local e = string.gsub(ARGV[i], '"@%+(%d+)"', function(ms) return tostring(now + tonumber(ms)) end)
    redis.call('RPUSH', jk, e)
  end
end

-- Applies state ops: triples (op, name, value) with op 's' (set), 'c' (clear), 'a' (clear all).
local function apply_ops(sk, first, count)
  for i = first, first + 3 * count - 1, 3 do
    local op = ARGV[i]
    if op == 's' then
      redis.call('HSET', sk, ARGV[i + 1], ARGV[i + 2])
    elseif op == 'c' then
      redis.call('HDEL', sk, ARGV[i + 1])
    else
      redis.call('DEL', sk)
    end
  end
end

-- Applies effects: 6-tuples (kind, a1..a5) starting at ARGV[first].
--   out      member                 -> outbox (performed by the worker after the commit)
--   pget     prKey name pwKey idx   -> completion now if the promise is settled, else wait
--   ppeek    prKey name -     idx   -> completion: the value, or pending
--   presolve prKey name pwKey idx completion -> settle once; 409 when already settled
-- Own completions are stored in the invocation's completions hash and returned.
local function apply_effects(first, count, part, id, now, grace, chan, comps, wakes)
  local ck = part .. 'c:' .. id
  for i = first, first + 6 * (count - 1), 6 do
    local kind = ARGV[i]
    if kind == 'out' then
      redis.call('ZADD', part .. 'outbox', now + grace, ARGV[i + 1])
    elseif kind == 'pget' then
      local v = redis.call('HGET', ARGV[i + 1], ARGV[i + 2])
      if v then
        redis.call('HSET', ck, ARGV[i + 4], v)
        table.insert(comps, ARGV[i + 4])
        table.insert(comps, v)
      else
        redis.call('SADD', ARGV[i + 3], id .. ':' .. ARGV[i + 4])
        -- Remember the waiter set, so it expires with the workflow.
        redis.call('SADD', ARGV[i + 1] .. ':w', ARGV[i + 3])
      end
    elseif kind == 'ppeek' then
      local v = redis.call('HGET', ARGV[i + 1], ARGV[i + 2]) or '{"ok":true}'
      redis.call('HSET', ck, ARGV[i + 4], v)
      table.insert(comps, ARGV[i + 4])
      table.insert(comps, v)
    elseif kind == 'presolve' then
      local mine
      if redis.call('HSETNX', ARGV[i + 1], ARGV[i + 2], ARGV[i + 5]) == 1 then
        mine = '{"ok":true}'
        for _, m in ipairs(redis.call('SMEMBERS', ARGV[i + 3])) do
          local sep = string.find(m, ':', 1, true)
          local wid, widx = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
          if wid == id then
            table.insert(comps, widx)
            table.insert(comps, ARGV[i + 5])
            redis.call('HSETNX', ck, widx, ARGV[i + 5])
          else
            deliver(part, wid, widx, ARGV[i + 5], now, grace, chan, wakes)
          end
        end
        redis.call('DEL', ARGV[i + 3])
        redis.call('SREM', ARGV[i + 1] .. ':w', ARGV[i + 3])
      else
        mine = '{"ok":false,"e":{"name":"TerminalError","code":"TERMINAL","message":"the promise was already completed","status":409}}'
      end
      redis.call('HSET', ck, ARGV[i + 4], mine)
      table.insert(comps, ARGV[i + 4])
      table.insert(comps, mine)
    end
  end
end

-- Commits a batch at journal index `from`: entries, state ops, effects, laid out
-- from ARGV[base] as: n, entries..., nops, op triples..., neffects, effect 6-tuples...
-- Returns status ('ok', 'dup' for a batch already committed by a retried call,
-- 'gap' for a stale writer), completions, wakes and the store clock it used.
local function commit_batch(jk, sk, from, base, part, id, grace, chan)
  local n = tonumber(ARGV[base])
  local nops = tonumber(ARGV[base + 1 + n])
  local effBase = base + 2 + n + 3 * nops
  local neff = tonumber(ARGV[effBase])
  local comps, wakes = {}, {}
  local len = redis.call('LLEN', jk)
  local now = now_ms()
  if len == from + n and n > 0 then return 'dup', comps, wakes, now end
  if len ~= from then return 'gap', comps, wakes, now end
  append_entries(jk, now, base + 1, n)
  apply_ops(sk, base + 2 + n, nops)
  if neff > 0 then apply_effects(effBase + 1, neff, part, id, now, grace, chan, comps, wakes) end
  return 'ok', comps, wakes, now
end

-- Leases invocation `id` to `worker` for one attempt and loads what the attempt needs
-- (startAttempt's 'run' reply). Bumps the fence epoch, so every earlier holder's writes are
-- refused; the invocation's deadline in `due` becomes the lease's expiry.
local function lease(inv, journal_key, state_key, fence, due, part, id, mode, rc, worker, lease_ms, now)
  local ep = redis.call('HINCRBY', fence, 'ep', 1)
  if mode == 'exclusive' or mode == 'workflow' then redis.call('HSET', fence, 'owner', id) end
  local expiry = now + tonumber(lease_ms)
  redis.call('HSET', inv, 'st', 'running', 'lease', expiry, 'w', worker, 'rep', ep)
  redis.call('ZADD', due, expiry, id)
  local d = redis.call('HMGET', inv, 'in', 'hdr', 'svc', 'h', 'key')
  local journal = redis.call('LRANGE', journal_key, 0, -1)
  local state = {}
  if mode ~= 'service' then state = redis.call('HGETALL', state_key) end
  local comps = redis.call('HGETALL', part .. 'c:' .. id)
  local cx = redis.call('HGET', inv, 'cx') == '1' and 1 or 0
  return {'run', tostring(ep), rc + 1, now, d[1], d[2], d[3], d[4], d[5], mode, journal, state, comps, cx}
end
