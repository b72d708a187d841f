--[[
  Delivers a completion to entry `index` of an invocation: a child's result to
  its caller, an attached invocation's outcome, an awakeable's value. Stored
  once (a second delivery is 'dup'); wakes the invocation if it is suspended,
  otherwise publishes it for the worker running it.
  KEYS[1] invocation hash (the target)
  ARGV: 1 id, 2 index, 3 completion JSON, 4 partition prefix, 5 grace ms, 6 completion channel
  Returns {'ok'|'dup'|'done'|'gone', wake tuple {id, ds, svc, key, mode} or {}} ('done': the
  invocation has completed, e.g. killed, and takes no completions).
]]
local wakes = {}
local r = deliver(ARGV[4], ARGV[1], ARGV[2], ARGV[3], now_ms(), tonumber(ARGV[5]), ARGV[6], wakes)
return {r, wakes}
