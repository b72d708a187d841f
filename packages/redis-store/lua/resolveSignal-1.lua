--[[
  Resolves or rejects the named signal of an invocation (Restate's signals): stored once in the
  invocation's completions hash as 's:<name>' (the first resolution wins: a second is 'dup'), and
  delivered at once to every 'sig' entry waiting for it ('sw:<name>', see apply_effects' sget);
  an entry that starts waiting later finds it there.
  KEYS[1] invocation hash (the target)
  ARGV: 1 id, 2 signal name, 3 completion JSON, 4 partition prefix, 5 grace ms, 6 completion channel
  Returns {'ok'|'dup'|'done'|'gone', wake tuples {id, ds, svc, key, mode, ...}} ('done': the
  invocation has completed; 'gone': there is no such invocation).
]]
local id, name, part = ARGV[1], ARGV[2], ARGV[4]
local wakes = {}
local st = redis.call('HGET', KEYS[1], 'st')
if not st then return {'gone', wakes} end
if st == 'completed' then return {'done', wakes} end
local ck = part .. KEY_COMPLETIONS .. id
if redis.call('HSETNX', ck, 's:' .. name, ARGV[3]) == 0 then return {'dup', wakes} end
redis.call('HSET', KEYS[1], 'hc', 1)
local waiting = redis.call('HGET', ck, 'sw:' .. name)
if waiting then
  redis.call('HDEL', ck, 'sw:' .. name)
  local now = now_ms()
  for idx in string.gmatch(waiting, '%d+') do
    deliver(part, id, idx, ARGV[3], now, tonumber(ARGV[5]), ARGV[6], wakes, 'signal:' .. name)
  end
end
return {'ok', wakes}
