--[[
  Delivers a completion to entry `index` of an invocation: a child's result to
  its caller, an attached invocation's outcome, a workflow promise's value, an
  awakeable's value. Only an entry that waits for that kind of completion takes
  it (see deliver in the prelude): a completion never settles a step, a timer, or
  another invocation's awakeable. Stored once (a second delivery is 'dup'); wakes
  the invocation if it is suspended, otherwise publishes it for the worker running it.
  KEYS[1] invocation hash (the target)
  ARGV: 1 id, 2 index, 3 completion JSON, 4 partition prefix, 5 grace ms, 6 completion channel,
        7 what it completes: 'result' (a call's or attach's outcome), 'pget', or the awakeable id,
        8 the most completions the invocation may hold ('' for no limit; given for awakeables)
  Returns {'ok'|'dup'|'done'|'gone'|'full', wake tuple {id, ds, svc, key, mode} or {}} ('done':
  the invocation has completed, e.g. killed, and takes no completions; 'gone': no such invocation
  or no entry waiting for this at that index; 'full': the cap is reached).
]]
local wakes = {}
local r = deliver(ARGV[4], ARGV[1], ARGV[2], ARGV[3], now_ms(), tonumber(ARGV[5]), ARGV[6], wakes, ARGV[7], tonumber(ARGV[8]))
return {r, wakes}
