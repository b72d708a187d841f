-- Shared helpers, prepended to every script.
-- The store clock: Redis TIME in milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Timers, whatever a field or an argument holds: a whole number of ms in [0, MAX_TIMER_MS]
-- (100 years, as @latchkey/core's MAX_TIMER_MS). Anything else (absent, not a number, negative,
-- NaN, huge) is made safe here, so no due time overflows or runs a dispatch loop.
local MAX_TIMER_MS = 3153600000000
local function clamp_ms(v)
  v = tonumber(v)
  if not v or v ~= v or v <= 0 then return 0 end
  if v > MAX_TIMER_MS then return MAX_TIMER_MS end
  return math.floor(v)
end

-- A time in ms as an exact integer string (tostring gives only 14 significant digits).
local function ms_string(v)
  return string.format('%.0f', v)
end

-- A timed wait's deadline (suspended until a wake time, backing off, delayed): its wake time
-- itself, for the partition's owner fires it from the due zset (src/duties.ts). The owner sleeps
-- until the earliest deadline it knows of, so a wake time earlier than every deadline in the zset
-- is announced on the partition's timer channel (the ms from now until it); any later one is found
-- by the sweep the owner runs at or before the earlier deadline.
local function timer_at(part, due, id, at, now)
  local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  redis.call('ZADD', due, at, id)
  if (not first[2]) or at < tonumber(first[2]) then
    redis.call('SPUBLISH', part .. KEY_TIMERS, ms_string(at - now))
  end
end


-- Live events (ARCHITECTURE.md "Live events"): while some process listens, the partition's flag
-- key (KEY_EVENTS) holds the events channel's name, kept alive with a short TTL by the listening
-- processes, and the scripts publish every status change and journal commit there. Nobody
-- listening costs one GET per script call that changes something; the flag is read once per call
-- (nil: not read yet, '' : nobody listens).
local events_chan
local function events_channel(part)
  if events_chan == nil then events_chan = redis.call('GET', part .. KEY_EVENTS) or '' end
  return events_chan
end

-- Publishes invocation `id`'s new status `st`: 's\n<id>\n<st>\n<at>\n<svc>\n<handler>\n<key>'
-- (names cannot hold a newline; the key, last, may). svc, h, key: its target (read here when
-- svc is nil); now: the store clock (read here when nil).
local function emit_status(part, id, st, now, svc, h, key)
  local ch = events_channel(part)
  if ch == '' then return end
  if svc == nil then
    local f = redis.call('HMGET', part .. KEY_INV .. id, 'svc', 'h', 'key')
    svc, h, key = f[1] or '', f[2] or '', f[3]
  end
  redis.call('SPUBLISH', ch, 's\n' .. id .. '\n' .. st .. '\n' .. ms_string(now or now_ms()) .. '\n' .. svc .. '\n' .. (h or '') .. '\n' .. (key or ''))
end

-- Publishes that invocation `id`'s journal holds `len` entries after a commit:
-- 'j\n<id>\n<len>\n<at>\n<svc>'.
local function emit_journal(part, id, len, now)
  local ch = events_channel(part)
  if ch == '' then return end
  local svc = redis.call('HGET', part .. KEY_INV .. id, 'svc') or ''
  redis.call('SPUBLISH', ch, 'j\n' .. id .. '\n' .. len .. '\n' .. ms_string(now) .. '\n' .. svc)
end

-- The partition prefix ('<prefix>:{p}:') of invocation hash `inv` of invocation `id`.
local function part_of(inv, id)
  return string.sub(inv, 1, #inv - #KEY_INV - #id)
end

-- Reads fields of a hash with one HMGET into a table keyed by field name (absent = nil).
local function hmget_named(key, names)
  local v = redis.call('HMGET', key, unpack(names))
  local t = {}
  for i, n in ipairs(names) do t[n] = v[i] or nil end
  return t
end

-- A user-supplied name as the key layout writes it (keys.ts `enc`, encodeURIComponent): every byte
-- but A-Z a-z 0-9 - _ . ! ~ * ' ( ) as %XX. (The same as encodeURIComponent's for well-formed
-- Unicode, the only kind of name that reaches a script.)
local function enc(s)
  return (string.gsub(s, "[^A-Za-z0-9%-_%.!~%*'%(%)]", function(c) return string.format('%%%02X', string.byte(c)) end))
end

-- Every write of an invocation's status goes through here: field 'st', the time of the change
-- 'mt' (the record's modifiedAt), the further fields `...` (name, value pairs) in the same HSET,
-- and the status index ix:ss:<svc>:<status>, scored by 'mt'. A write of the status the
-- invocation already has writes only the further fields.
-- write_status: the same when the caller knows the status `old` (nil for a record it creates)
-- and the service `svc`, so nothing is read.
local function write_status(inv, id, old, svc, new, now, ...)
  if old == new then
    if select('#', ...) > 0 then redis.call('HSET', inv, ...) end
    return
  end
  redis.call('HSET', inv, 'st', new, 'mt', now, ...)
  local prefix = part_of(inv, id) .. KEY_IX_SERVICE_STATUS .. enc(svc) .. ':'
  if old then redis.call('ZREM', prefix .. old, id) end
  redis.call('ZADD', prefix .. new, now, id)
end
local function set_status(inv, id, new, now, ...)
  local f = redis.call('HMGET', inv, 'st', 'svc')
  write_status(inv, id, f[1], f[2], new, now, ...)
end

-- Files a new invocation in its partition's creation-time indexes (scored by `now`, its 'ct'):
-- by service and by object/workflow key (but a workflow's run: its key's fence names it, field
-- 'run', and a listing by key reads it there); an exclusive or workflow invocation's key joins the
-- service's keys (ix:keys); the service joins ix:svcs. (A listing of every service, of a status
-- or of a handler walks the service indexes named by ix:svcs: no index of its own.)
local function index_new(part, id, svc, key, mode, now)
  local s = enc(svc)
  redis.call('ZADD', part .. KEY_IX_SERVICE .. s, now, id)
  if key ~= '' then
    if mode ~= 'workflow' then redis.call('ZADD', part .. KEY_IX_KEY .. s .. ':' .. enc(key), now, id) end
    if mode == 'exclusive' or mode == 'workflow' then redis.call('ZADD', part .. KEY_IX_KEYS .. s, 0, key) end
  end
  redis.call('SADD', part .. KEY_IX_SERVICES, s)
end

-- Schedules the removal of a completed invocation's index entries at `at` (when its record
-- expires): ix:exp holds '<id>:<svc>:<handler>:<key>' (names encoded, so ':' separates them),
-- everything expireIndexes needs once the record is gone.
local function index_expire(part, id, svc, h, key, at)
  redis.call('ZADD', part .. KEY_IX_EXPIRY, at, id .. ':' .. enc(svc) .. ':' .. enc(h) .. ':' .. enc(key or ''))
end

-- Drops a key (encoded `ek`) of service `s` (encoded) from the service's keys (ix:keys) when it
-- has no state, holder or inbox left.
local function prune_key(part, s, ek)
  local suffix = s .. ':' .. ek
  if redis.call('EXISTS', part .. KEY_STATE .. suffix, part .. KEY_INBOX .. suffix) > 0 then return end
  local f = redis.call('HMGET', part .. KEY_FENCE .. suffix, 'owner', 'hd')
  if f[1] or f[2] then return end
  local key = string.gsub(ek, '%%(%x%x)', function(x) return string.char(tonumber(x, 16)) end)
  redis.call('ZREM', part .. KEY_IX_KEYS .. s, key)
end

-- Removes invocation `id` from every index of its partition: `s`, `eh`, `ek` are its service,
-- handler and key encoded, `st` its status; forgets the service when it has no invocation left,
-- and its key when the key has nothing left (prune_key).
local function index_drop(part, id, s, eh, ek, st)
  redis.call('ZREM', part .. KEY_IX_SERVICE .. s, id)
  if ek ~= '' then
    redis.call('ZREM', part .. KEY_IX_KEY .. s .. ':' .. ek, id)
    prune_key(part, s, ek)
  end
  redis.call('ZREM', part .. KEY_IX_SERVICE_STATUS .. s .. ':' .. st, id)
  redis.call('ZREM', part .. KEY_IX_EXPIRY, id .. ':' .. s .. ':' .. eh .. ':' .. ek)
  if redis.call('EXISTS', part .. KEY_IX_SERVICE .. s) == 0 then redis.call('SREM', part .. KEY_IX_SERVICES, s) end
end

-- The exclusive or workflow invocation holding a key: its fence's field 'hd', from the moment it
-- reaches the head of the key's queue until it finishes. The inbox holds only the invocations
-- waiting behind it, so a key nobody waits for has no inbox. A key written by an earlier version
-- has no 'hd': its holder is its inbox's head, moved into 'hd' here (so the layouts never mix).
local function key_holder(fence, inbox)
  local hd = redis.call('HGET', fence, 'hd')
  if hd then return hd end
  hd = redis.call('LPOP', inbox)
  if hd then redis.call('HSET', fence, 'hd', hd) end
  return hd
end

-- An exclusive or workflow invocation `id` joins its key's queue: it holds the key when nobody
-- does (true), else it waits at the end of the inbox (false).
local function join_key(fence, inbox, id)
  if key_holder(fence, inbox) then
    redis.call('RPUSH', inbox, id)
    return false
  end
  redis.call('HSET', fence, 'hd', id)
  return true
end

-- The fence: the hash `fk` names the current owner and epoch of a key (for
-- exclusive/workflow invocations, the object key's meta hash; otherwise the
-- invocation's own hash). A write is allowed only from that owner at that epoch. Also returns the
-- key's holder ('hd', see key_holder), read with them.
local function fenced(fk, id, ep)
  local v = redis.call('HMGET', fk, 'owner', 'ep', 'hd')
  return v[1] == id and v[2] == ep, v[3] or nil
end

-- Makes invocation `id` the owner of a key's fence `fence` at the next epoch, which it returns.
-- `fence_ep`: the fence's epoch when the caller read it already (one write instead of two).
local function take_fence(fence, id, fence_ep)
  if fence_ep then
    local ep = tonumber(fence_ep) + 1
    redis.call('HSET', fence, 'ep', ep, 'owner', id)
    return ep
  end
  local ep = redis.call('HINCRBY', fence, 'ep', 1)
  redis.call('HSET', fence, 'owner', id)
  return ep
end

-- The check before every write of an attempt: the fence names it, and the invocation is running.
-- A non-exclusive invocation is its own fence (fk == inv): one read.
local function running_fenced(inv, fk, id, ep)
  if fk == inv then
    local v = redis.call('HMGET', inv, 'owner', 'ep', 'st')
    return v[1] == id and v[2] == ep and v[3] == 'running'
  end
  return fenced(fk, id, ep) and redis.call('HGET', inv, 'st') == 'running'
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
  local inv = part .. KEY_INV .. id
  local f = redis.call('HMGET', inv, 'st', 'svc', 'key', 'mode')
  if not f[1] or not states[f[1]] then return nil end
  local ds = redis.call('HINCRBY', inv, 'ds', 1)
  set_status(inv, id, 'ready', now)
  emit_status(part, id, 'ready', now)
  redis.call('ZADD', part .. KEY_DUE, now + grace, id)
  return {id, ds, f[2], f[3], f[4]}
end

local WAKEABLE = {suspended = true}

-- An invocation's retention ('ret'): '<journal>,<idempotency>,<workflow>' in ms; an earlier
-- version wrote it as JSON {journal, idempotency, workflow}.
local function retention(s)
  if string.byte(s, 1) == 123 then return cjson.decode(s) end
  local j, i, w = string.match(s, '^(%d+),(%d+),(%d+)$')
  return {journal = tonumber(j), idempotency = tonumber(i), workflow = tonumber(w)}
end

-- A workflow run's promises hash: named after its service and key, or (a record of an earlier
-- version) in its field 'prk'.
local function promises_key(part, prk, svc, key)
  return prk or (part .. KEY_PROMISES .. enc(svc) .. ':' .. enc(key or ''))
end

-- Lets a finished workflow's promises and their waiter sets expire with it.
local function expire_promises(prk, ttl)
  redis.call('PEXPIRE', prk, ttl)
  local sets = redis.call('SMEMBERS', prk .. KEY_PROMISE_SETS)
  if #sets == 0 then return end -- (an empty set does not exist)
  for _, k in ipairs(sets) do redis.call('PEXPIRE', k, ttl) end
  redis.call('PEXPIRE', prk .. KEY_PROMISE_SETS, ttl)
end

-- The journal entry at index `idx` (a string of digits) of invocation `id`, decoded, or nil when
-- the journal has no such entry (not committed, or a journal stored whole at completion: then the
-- invocation takes no completions anyway).
local function entry_at(part, id, idx)
  if not string.match(idx, '^%d+$') then return nil end
  local raw = redis.call('LINDEX', part .. KEY_JOURNAL .. id, idx)
  if not raw then return nil end
  local ok, e = pcall(cjson.decode, raw)
  if not ok or type(e) ~= 'table' then return nil end
  return e
end

-- What a completion may complete: the entry kinds each internal delivery is for.
local RESULT_KINDS = {call = true, attach = true}   -- 'result': a callee's or attached invocation's outcome
local PROMISE_KINDS = {pget = true}                 -- 'pget': a workflow promise's value

-- Delivers a completion for entry `idx` of invocation `id` (same partition) when that entry waits
-- for one of this kind: `want` is 'result', 'pget' or 'signal:<name>' (the engine's own
-- deliveries: a 'sig' entry waiting for that signal), or an awakeable id, which completes only the 'awk' entry recorded with exactly that id; `cap` (for
-- awakeables: a client's deliveries) is the most completions the invocation may hold.
-- Stored once; wakes a suspended invocation, or tells a running one.
-- Returns 'ok', 'dup' (completed already), 'done' (the invocation completed), 'gone' (no such
-- invocation or no entry of that kind at idx) or 'full'.
local function deliver(part, id, idx, completion, now, grace, chan, wakes, want, cap)
  local inv = part .. KEY_INV .. id
  local st = redis.call('HGET', inv, 'st')
  if not st then return 'gone' end
  if st == 'completed' then return 'done' end
  local e = entry_at(part, id, idx)
  if not e then return 'gone' end
  if want == 'result' then
    if not RESULT_KINDS[e.k] then return 'gone' end
  elseif want == 'pget' then
    if not PROMISE_KINDS[e.k] then return 'gone' end
  elseif string.sub(want, 1, 7) == 'signal:' then
    if e.k ~= 'sig' or e.n ~= string.sub(want, 8) then return 'gone' end
  elseif e.k ~= 'awk' or e.id ~= want then
    return 'gone'
  end
  local ck = part .. KEY_COMPLETIONS .. id
  if redis.call('HEXISTS', ck, idx) == 1 then return 'dup' end
  if cap and redis.call('HLEN', ck) >= cap then return 'full' end
  redis.call('HSET', ck, idx, completion)
  -- 'hc': the invocation has completions (loaded by its next attempt, expired with it);
  -- 'd:<idx>': when this completion arrived (the admin API's timeline).
  redis.call('HSET', inv, 'hc', 1, 'd:' .. idx, now)
  local w = wake(part, id, now, grace, WAKEABLE)
  if w then
    for _, x in ipairs(w) do table.insert(wakes, x) end
  elseif st == 'running' then
    -- Only a running attempt is told; a paused one sees the completion when resumed.
    redis.call('SPUBLISH', chan, id .. '\n' .. idx .. '\n' .. completion)
  end
  return 'ok'
end

-- The invocation fields finish() needs; its callers read them (and more) with one HMGET.
--   wn: its notify set (nt:) has members; wo: its watcher set (ow:) has members;
--   hc: its completions hash (c:) exists. Every script that adds to one of them sets the flag,
--   so a completion probes only what exists.
local FINISH_FIELDS = {'st', 'rep', 'mode', 'ret', 'idem', 'idemk', 'wfk', 'prk', 'wn', 'wo', 'hc', 'svc', 'h', 'key'}

-- Leases invocation `id` to `worker` for one attempt and loads what the attempt needs
-- (startAttempt's 'run' reply). `d` holds the invocation's LEASE_FIELDS. Bumps the fence epoch,
-- so every earlier holder's writes are refused; the invocation's deadline in `due` becomes the
-- lease's expiry. An invocation that never ran (no 'rep') has neither journal nor completions.
-- `fence_ep`: the key fence's current epoch when the caller has read it (one write instead of
-- two); `with_state` false: the caller knows the key's state, the reply carries none.
-- `d.ready`: when it became ready to run (the caller knows; else now); `d.lost`: when the attempt
-- lost with its worker had started (startAttempt sets it), for that attempt's span.
local LEASE_FIELDS = {'mode', 'rc', 'in', 'hdr', 'svc', 'h', 'key', 'cx', 'rep', 'hc', 'ep', 'rs', 'fst', 'lst', 'tc', 'ct'}
local function lease(inv, d, rc, journal_key, state_key, fence, due, part, id, worker, lease_ms, now, fence_ep, with_state)
  local mode = d.mode
  local expiry = now + tonumber(lease_ms)
  local ep
  if fence == inv then
    -- A non-exclusive invocation is its own fence: one write for epoch and lease.
    ep = tonumber(d.ep or '0') + 1
    set_status(inv, id, 'running', now, 'lease', expiry, 'w', worker, 'rep', ep, 'ep', ep)
  else
    ep = take_fence(fence, id, fence_ep)
    set_status(inv, id, 'running', now, 'lease', expiry, 'w', worker, 'rep', ep)
  end
  emit_status(part, id, 'running', now, d.svc, d.h, d.key)
  -- Attempt times for operators: the first start once ('fst'), the latest start ('lst') always.
  if d.fst then
    redis.call('HSET', inv, 'lst', now)
  else
    redis.call('HSET', inv, 'fst', now, 'lst', now)
  end
  redis.call('ZADD', due, expiry, id)
  local journal, comps, state = {}, {}, {}
  if d.rep then journal = redis.call('LRANGE', journal_key, 0, -1) end
  if mode ~= 'service' and with_state ~= false then state = redis.call('HGETALL', state_key) end
  if d.hc then comps = redis.call('HGETALL', part .. KEY_COMPLETIONS .. id) end
  local cx = d.cx == '1' and 1 or 0
  return {'run', tostring(ep), rc + 1, now, d['in'], d.hdr, d.svc, d.h, d.key, mode, journal, state, comps, cx, d.rs or '',
    d.tc or '', d.ct or '', d.ready or now, d.lost or ''}
end

-- Everything that follows an invocation's completion, whether it completed itself or was
-- killed or cancelled: retention TTLs (record, journal, completions, idempotency record, index
-- entries through ix:exp; a workflow run's state, run record, fence and promises), freeing its
-- key (or leaving the inbox it waited in) and handing it to the first invocation waiting, and a
-- deadline in `due` while its outcome is still owed to callers. `d` holds the invocation's
-- FINISH_FIELDS; `state` is the workflow's state key; `jlen` is the journal's length when known
-- (nil: expire it anyway). With `worker` set, the next holder is leased to that worker at once
-- (see lease; `fence_ep` is the fence's epoch, read by the caller, and the worker knows the
-- key's state) instead of being made ready. `holder`: the fence's 'hd' when the caller read it
-- (nil: looked up here).
-- Returns the next holder ('' for none), its dispatch sequence, 1 when outcomes await delivery,
-- and lease()'s reply when the next holder was leased (else false).
local function finish(part, id, d, now, grace, inbox, fence, due, state, jlen, worker, lease_ms, fence_ep, holder)
  local inv = part .. KEY_INV .. id
  local mode = d.mode
  local ret = retention(d.ret)
  local keep = ret.journal
  if d.idem and d.idem ~= '' and ret.idempotency > keep then keep = ret.idempotency end
  if mode == 'workflow' and ret.workflow > keep then keep = ret.workflow end
  redis.call('PEXPIRE', inv, keep)
  index_expire(part, id, d.svc, d.h, d.key, now + keep)
  if jlen == nil or jlen > 0 then redis.call('PEXPIRE', part .. KEY_JOURNAL .. id, keep) end
  if d.hc then redis.call('PEXPIRE', part .. KEY_COMPLETIONS .. id, keep) end
  if d.idemk then redis.call('PEXPIRE', d.idemk, ret.idempotency) end
  local nextId, nds, run = '', 0, false
  if mode == 'exclusive' or mode == 'workflow' then
    if mode == 'workflow' then
      redis.call('PEXPIRE', state, ret.workflow)
      -- (A run record as an earlier version wrote it: a string key named in 'wfk'.)
      if d.wfk then redis.call('PEXPIRE', d.wfk, ret.workflow) end
      -- The key's fence goes too, with the run record (its field 'run'): a later run of the same
      -- id has a new owner, so a zombie of this run stays fenced off even when the epoch counter
      -- starts over.
      redis.call('PEXPIRE', fence, ret.workflow)
      expire_promises(promises_key(part, d.prk, d.svc, d.key), ret.workflow)
    end
    if (holder or key_holder(fence, inbox)) == id then
      -- The first invocation waiting holds the key now (a workflow's run has none: it is its
      -- key's only exclusive invocation). (Redis deletes a list when its last element goes: an
      -- emptied inbox needs no DEL.)
      local nxt = mode ~= 'workflow' and redis.call('LPOP', inbox)
      if nxt then
        nextId = nxt
        redis.call('HSET', fence, 'hd', nxt)
        local nk = part .. KEY_INV .. nxt
        if worker and worker ~= '' then
          -- The key passes straight to its next invocation (same key: same state and fence).
          local nd = hmget_named(nk, LEASE_FIELDS)
          run = lease(nk, nd, tonumber(nd.rc or '0'), part .. KEY_JOURNAL .. nxt, state, fence, due, part, nxt, worker, lease_ms, now,
            fence_ep, false)
        else
          redis.call('HDEL', fence, 'owner')
          nds = redis.call('HINCRBY', nk, 'ds', 1)
          set_status(nk, nxt, 'ready', now)
          emit_status(part, nxt, 'ready', now)
          redis.call('ZADD', due, now + grace, nxt)
        end
      else
        redis.call('HDEL', fence, 'owner', 'hd')
      end
    else
      redis.call('LREM', inbox, 0, id)
    end
  end
  local notify = 0
  if d.wn then
    notify = 1
    redis.call('ZADD', due, now + grace, id)
    redis.call('PEXPIRE', part .. KEY_NOTIFY .. id, keep)
  else
    redis.call('ZREM', due, id)
  end
  return nextId, nds, notify, run
end

-- Sends a completed invocation's outcome message to the processes waiting for it (each listens
-- on its own channel, registered in the watcher set), except channel `own`, whose waiters the
-- caller resolves itself; then forgets the watchers (later ones find the invocation completed).
-- `watched` is the invocation's 'wo' flag: without it the set is empty.
local function publish_outcome(part, id, watched, msg, own)
  if not watched then return end
  local wk = part .. KEY_WATCHERS .. id
  local chans = redis.call('SMEMBERS', wk)
  if #chans == 0 then return end
  if string.len(msg) > 65536 then msg = id end
  for _, ch in ipairs(chans) do
    if ch ~= own then redis.call('SPUBLISH', ch, msg) end
  end
  redis.call('DEL', wk)
end

-- New journal entries ARGV[from .. to - 1]. Each is an entry's JSON (it starts with '{'), except a
-- new sleep, which the runtime sends as '@<ms>' or '@<ms>|<name as a JSON string>': its due time
-- comes from the store clock, so the script writes the whole entry,
-- {"k":"sleep"[,"n":<name>],"due":<now + ms>}. The form is told by the first byte alone; nothing
-- inside an entry's JSON (user data) is ever searched or rewritten.
local function entries_at(now, from, to)
  local list = {}
  for j = from, to - 1 do
    local e = ARGV[j]
    if string.byte(e, 1) == 64 then
      local bar = string.find(e, '|', 2, true)
      local due = ms_string(now + clamp_ms(string.sub(e, 2, bar and bar - 1 or -1)))
      if bar then
        e = '{"k":"sleep","n":' .. string.sub(e, bar + 1) .. ',"due":' .. due .. '}'
      else
        e = '{"k":"sleep","due":' .. due .. '}'
      end
    end
    list[#list + 1] = e
  end
  return list
end

-- Appends journal entries (see entries_at) in one RPUSH per thousand (within Lua's stack).
-- Returns the journal's new length.
local function append_entries(jk, now, first, count)
  local len = 0
  for i = first, first + count - 1, 1000 do
    len = redis.call('RPUSH', jk, unpack(entries_at(now, i, math.min(first + count, i + 1000))))
  end
  return len
end

-- Applies state ops: triples (op, name, value) with op 's' (set), 'c' (clear), 'a' (clear all).
-- Consecutive sets go in one HSET.
local function apply_ops(sk, first, count)
  local sets = {}
  local function flush()
    if #sets > 0 then
      redis.call('HSET', sk, unpack(sets))
      sets = {}
    end
  end
  for i = first, first + 3 * count - 1, 3 do
    local op = ARGV[i]
    if op == 's' then
      sets[#sets + 1] = ARGV[i + 1]
      sets[#sets + 1] = ARGV[i + 2]
    else
      flush()
      if op == 'c' then redis.call('HDEL', sk, ARGV[i + 1]) else redis.call('DEL', sk) end
    end
  end
  flush()
end

-- Applies effects: 6-tuples (kind, a1..a5) starting at ARGV[first].
--   out      member                 -> outbox (performed by the worker after the commit)
--   pget     prKey name pwKey idx   -> completion now if the promise is settled, else wait
--   ppeek    prKey name -     idx   -> completion: the value, or pending
--   sget     name  -    -     idx   -> completion now if this invocation's signal `name` arrived,
--                                      else wait for it (the index joins field 'sw:<name>')
--   presolve prKey name pwKey idx completion -> settle once; 409 when already settled
-- Own completions are stored in the invocation's completions hash and returned.
local function apply_effects(first, count, part, id, now, grace, chan, comps, wakes)
  local ck = part .. KEY_COMPLETIONS .. id
  local wrote = false
  for i = first, first + 6 * (count - 1), 6 do
    local kind = ARGV[i]
    if kind == 'out' then
      redis.call('ZADD', part .. KEY_OUTBOX, now + grace, ARGV[i + 1])
    elseif kind == 'pget' then
      local v = redis.call('HGET', ARGV[i + 1], ARGV[i + 2])
      if v then
        redis.call('HSET', ck, ARGV[i + 4], v)
        wrote = true
        table.insert(comps, ARGV[i + 4])
        table.insert(comps, v)
      else
        redis.call('SADD', ARGV[i + 3], id .. ':' .. ARGV[i + 4])
        -- Remember the waiter set, so it expires with the workflow.
        redis.call('SADD', ARGV[i + 1] .. KEY_PROMISE_SETS, ARGV[i + 3])
      end
    elseif kind == 'sget' then
      -- Signals live in the completions hash: 's:<name>' the first resolution, 'sw:<name>' the
      -- indices waiting for it (comma-separated).
      local v = redis.call('HGET', ck, 's:' .. ARGV[i + 1])
      if v then
        redis.call('HSET', ck, ARGV[i + 4], v)
        table.insert(comps, ARGV[i + 4])
        table.insert(comps, v)
      else
        local w = redis.call('HGET', ck, 'sw:' .. ARGV[i + 1])
        redis.call('HSET', ck, 'sw:' .. ARGV[i + 1], w and (w .. ',' .. ARGV[i + 4]) or ARGV[i + 4])
      end
      wrote = true
    elseif kind == 'ppeek' then
      local v = redis.call('HGET', ARGV[i + 1], ARGV[i + 2]) or '{"ok":true}'
      redis.call('HSET', ck, ARGV[i + 4], v)
      wrote = true
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
            deliver(part, wid, widx, ARGV[i + 5], now, grace, chan, wakes, 'pget')
          end
        end
        redis.call('DEL', ARGV[i + 3])
        redis.call('SREM', ARGV[i + 1] .. KEY_PROMISE_SETS, ARGV[i + 3])
      else
        mine = '{"ok":false,"e":{"name":"TerminalError","code":"TERMINAL","message":"the promise was already completed","status":409}}'
      end
      redis.call('HSET', ck, ARGV[i + 4], mine)
      wrote = true
      table.insert(comps, ARGV[i + 4])
      table.insert(comps, mine)
    end
  end
  if wrote then redis.call('HSET', part .. KEY_INV .. id, 'hc', 1) end
end

-- Commits a batch at journal index `from`: entries, state ops, effects, laid out
-- from ARGV[base] as: n, entries..., nops, op triples..., neffects, effect 6-tuples..., and
-- optionally the batch's step durations ('<index>:<ms>,...'), kept with its time as 't:<from>'.
-- Returns status ('ok', 'dup' for a batch already committed by a retried call,
-- 'gap' for a stale writer), completions, wakes, the store clock it used and the journal
-- list's length after the batch. The entries go in first: RPUSH's reply is the index check, and
-- a batch that does not fit (a retried or stale one, never the attempt holding the fence in
-- the common case) is taken out again before anything else is written.
-- With `to_field`, a batch that starts the journal (from 0: the completion of an invocation that
-- never committed before, whose journal is then known whole and final) is not appended: its
-- entries come back as a JSON array (sixth value) for the invocation hash's 'jf' field, one key
-- fewer per invocation. The fence holder's view of the journal is exact, so nothing is checked.
local function commit_batch(jk, sk, from, base, part, id, grace, chan, to_field)
  local n = tonumber(ARGV[base])
  local nops = tonumber(ARGV[base + 1 + n])
  local effBase = base + 2 + n + 3 * nops
  local neff = tonumber(ARGV[effBase])
  local comps, wakes = {}, {}
  local now = now_ms()
  local jf
  local appended = 0
  if n > 0 and to_field and from == 0 then
    jf = '[' .. table.concat(entries_at(now, base + 1, base + 1 + n), ',') .. ']'
  elseif n > 0 then
    local before = append_entries(jk, now, base + 1, n) - n
    if before ~= from then
      if before == 0 then redis.call('DEL', jk) else redis.call('LTRIM', jk, 0, before - 1) end
      if before == from + n then return 'dup', comps, wakes, now, before end
      return 'gap', comps, wakes, now, before
    end
    appended = n
  elseif nops > 0 or neff > 0 then
    -- Nothing to append, but writes to make: check the index first.
    if redis.call('LLEN', jk) ~= from then return 'gap', comps, wakes, now, from end
  end
  if nops > 0 then apply_ops(sk, base + 2 + n, nops) end
  if neff > 0 then apply_effects(effBase + 1, neff, part, id, now, grace, chan, comps, wakes) end
  if n > 0 then emit_journal(part, id, from + n, now) end
  if n > 0 then
    -- When this batch was committed, for operators (the admin API's timeline): field 't:<from>' is
    -- '<now>', or '<now>|<steps>' with the batch's step durations ('<index>:<ms>,...', measured by
    -- the runtime), the optional last element of the batch.
    local meta = ARGV[effBase + 1 + 6 * neff]
    local t = ms_string(now)
    if meta and meta ~= '' then t = t .. '|' .. meta end
    redis.call('HSET', part .. KEY_INV .. id, 't:' .. from, t)
  end
  return 'ok', comps, wakes, now, from + appended, jf
end
