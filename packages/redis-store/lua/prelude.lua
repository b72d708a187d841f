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

-- Commits a batch (entries then state ops) at journal index `from`. Returns
-- 'ok', 'dup' (the same batch was already committed: an ambiguous reply retried)
-- or 'gap' (the journal moved on: this writer is stale).
local function commit_batch(jk, sk, from, base)
  local n = tonumber(ARGV[base])
  local nops = tonumber(ARGV[base + 1 + n])
  local len = redis.call('LLEN', jk)
  if len == from + n and n > 0 then return 'dup' end
  if len ~= from then return 'gap' end
  local now = now_ms()
  append_entries(jk, now, base + 1, n)
  apply_ops(sk, base + 2 + n, nops)
  return 'ok'
end
