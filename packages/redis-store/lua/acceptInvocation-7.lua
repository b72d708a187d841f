--[[
  Accepts an invocation durably.
  KEYS[1] invocation hash      {p}:inv:<id>
  KEYS[2] partition due zset   {p}:due
  KEYS[3] fence hash (the key's meta for exclusive/workflow, else = KEYS[1]; as startAttempt's KEYS[3])
  then, in this order, only those the invocation needs (3 to 7 keys in all):
  state hash           {p}:s:<svc>:<key>   (objects and workflows: mode ~= 'service')
  key inbox list       {p}:q:<svc>:<key>   (exclusive and workflow)
  earlier run record   {p}:wf:<svc>:<key>  (mode 'workflow'; read only: the run record is now the
                                           fence's field 'run')
  idempotency string   {p}:idem:<svc>:<key>:<handler>:<idem>  (when ARGV[7] ~= '')
  ARGV: 1 id, 2 service, 3 handler, 4 key ('' for none), 5 mode, 6 input, 7 idempotency key,
        8 headers JSON, 9 delay ms, 10 grace ms, 11 retention JSON, 12 partition prefix,
        13 notify member '<callerId>:<index>' ('' for none),
        14 for a delegated accept (see delegate.ts), the note for its delegating process, else '':
           that process (its outcome channel is ARGV 17) asked this worker to accept its call, and
           the script tells it there: an eager completion's outcome message, else '<id>\n<note>'
           (accepted, the outcome follows; '+': its eager run stopped short or was not tried, '=':
           the worker had no free slot to try one),
        15 worker id to start the attempt at once ('' for no), 16 lease ms,
        17 outcome channel of a caller waiting for the outcome ('' for none; see watchOutcome),
        18 the invocation's random seed (secret: kept in field 'rs', handed only to its attempts),
        19 the handler invocation and journal index that called or sent it ('<id>:<index>', or ''),
           kept as 'by' for operators,
        20 the trace context ('traceparent[;tracestate]', or ''), kept as 'tc',
        21 hand-off channel: another process's worker to hand the invocation to when it is ready
           and not leased here ('' for none; '<prefix>:{p}:hand:<worker>', this partition's tag, so
           the SPUBLISH stays on the script's slot), 22 that worker's name (the lease's 'w'),
           23 the start JSON of the hand-off message (see handoff.ts),
        24 eager completion: the key fence's epoch the caller's eager run read its state at ('' for
           none; any value for a service), 25 its outcome 'ok'|'err', 26 value or error JSON,
           27.. its batch as commitEntries takes it: n, n journal entries, nops, op triples, 0 effects
  Returns:
    {'dup', existingId, 'idempotency'|'workflow', completion or ''}  an earlier invocation matched
    {'exists', completion or ''}                    this id exists already (a retried accept)
    {'ok', status, dispatchSeq, delayMs, handed}    accepted; dispatch when status is 'ready' (the
                                                    partition's owner fires a 'delayed' one)
                                                    (delayMs: at most a day; a longer delay is dispatched
                                                    again from startAttempt's 'early'), unless 'handed'
                                                    (the subscribers the hand-off message reached) > 0;
                                                    status 'running': leased to the hand-off's worker
    {'done', epoch, now}                            accepted and completed with the eager run's outcome (ARGV
                                                    24..): the key was free and its fence at that epoch
    {'run', epoch, now, state[]}                    accepted and, being ready with ARGV 15 set, leased to
                                                    that worker for its first attempt (as startAttempt would;
                                                    the caller knows the rest, the journal is empty)
  A caller (ARGV 13) is registered in the invocation's notify set (also on 'dup'/'exists'); when
  that invocation has already completed, its completion is returned for immediate delivery.
  Invariant: an exclusive/workflow invocation enters its key's inbox in acceptance order,
  or (delayed) when its delay expires. A new invocation is filed in its partition's indexes
  (index_new, set_status); an eagerly completed one is also scheduled in ix:exp.
]]
local id, mode, idem, part, member = ARGV[1], ARGV[5], ARGV[7], ARGV[12], ARGV[13]
local k_inv, k_due, k_fence = KEYS[1], KEYS[2], KEYS[3]
local k_state, k_inbox, k_wf, k_idem
local nk = 4
if mode ~= 'service' then k_state, nk = KEYS[nk], nk + 1 end
if mode == 'exclusive' or mode == 'workflow' then k_inbox, nk = KEYS[nk], nk + 1 end
if mode == 'workflow' then k_wf, nk = KEYS[nk], nk + 1 end
if idem ~= '' then k_idem = KEYS[nk] end
-- Registers the caller on an existing invocation; returns its completion when already done.
local function latch(existing)
  if member == '' then return '' end
  local inv = part .. KEY_INV .. existing
  if redis.call('HGET', inv, 'st') == 'completed' then return outcome_completion(inv) end
  redis.call('SADD', part .. KEY_NOTIFY .. existing, member)
  redis.call('HSET', inv, 'wn', 1)
  return ''
end
if redis.call('EXISTS', k_inv) == 1 then return {'exists', latch(id)} end
if idem ~= '' then
  local prev = redis.call('GET', k_idem)
  if prev then return {'dup', prev, 'idempotency', latch(prev)} end
end
local delay = clamp_ms(ARGV[9])
-- The key fence's epoch when read already (a workflow's, with its run record).
local fence_ep
if mode == 'workflow' then
  -- The run record is the key fence's field 'run' (it expires with the fence); a string key
  -- {p}:wf:<svc>:<key> is the record as earlier versions wrote it.
  local f = redis.call('HMGET', k_fence, 'run', 'ep')
  fence_ep = f[2] or '0'
  local prev = f[1] or redis.call('GET', k_wf)
  if prev then
    if idem ~= '' then redis.call('SET', k_idem, prev) end
    return {'dup', prev, 'workflow', latch(prev)}
  end
  -- Without a run nobody holds the key (its run is its only exclusive invocation): this one
  -- does, unless delayed (then it takes the key when due, see startAttempt).
  if delay == 0 then
    redis.call('HSET', k_fence, 'run', id, 'hd', id)
  else
    redis.call('HSET', k_fence, 'run', id)
  end
end
if idem ~= '' then redis.call('SET', k_idem, id) end
local now = now_ms()
local grace = tonumber(ARGV[10])
local keyed = mode == 'exclusive' or mode == 'workflow'
local h = {'svc', ARGV[2], 'h', ARGV[3], 'key', ARGV[4], 'mode', mode, 'in', ARGV[6],
  'hdr', ARGV[8], 'ct', now, 'wake', ms_string(now + delay), 'ds', 1, 'rc', 0, 'ret', ARGV[11], 'rs', ARGV[18]}
local function field(k, v)
  h[#h + 1] = k
  h[#h + 1] = v
end
-- A non-exclusive invocation is its own fence ('owner', 'ep'); an exclusive or workflow one's is
-- its key's.
if not keyed then field('owner', id) end
if idem ~= '' then
  field('idem', idem)
  field('idemk', k_idem)
end
-- The trace context it runs under ('tc': traceparent[;tracestate]), for every attempt's span.
if ARGV[20] ~= '' then field('tc', ARGV[20]) end
-- Eager completion (ARGV 24 set; see Attempt.eager): the caller ran the handler already, against
-- the key's state at fence epoch ARGV 24. When the key is free, nobody is queued for it and its
-- fence is still at that epoch (so nobody wrote its state since), the invocation is stored
-- completed at once: journal ('jf'), state ops, outcome; the epoch moves on, as for an attempt.
-- Otherwise nothing of the eager run is used and the accept goes on as usual.
if ARGV[24] ~= '' and delay == 0 and member == '' then
  local ep
  if keyed then
    local fence = redis.call('HMGET', k_fence, 'owner', 'ep', 'hd')
    if not fence[1] and not fence[3] and (fence[2] or '0') == ARGV[24] and redis.call('EXISTS', k_inbox) == 0 then
      ep = tonumber(ARGV[24]) + 1
      redis.call('HSET', k_fence, 'ep', ep)
      field('ep', 0)
    end
  else
    -- A service invocation is its own fence: its first (and only) attempt.
    ep = 1
    field('ep', 1)
  end
  if ep then
    local n = tonumber(ARGV[27])
    local nops = tonumber(ARGV[28 + n])
    field(ARGV[25] == 'ok' and 'out' or 'err', ARGV[26])
    field('ft', now)
    field('lease', 0)
    field('rep', ep)
    -- Attempt times for operators: its one attempt ran just before.
    field('fst', now)
    field('lst', now)
    if n > 0 then field('jf', '[' .. table.concat(entries_at(now, 28, 28 + n), ',') .. ']') end
    write_status(k_inv, id, nil, ARGV[2], 'completed', now, unpack(h))
    index_new(part, id, ARGV[2], ARGV[4], mode, now)
    if n > 0 then emit_journal(part, id, n, now) end
    emit_status(part, id, 'completed', now, ARGV[2], ARGV[3], ARGV[4])
    if nops > 0 then apply_ops(k_state, 29 + n, nops) end
    local ret = retention(ARGV[11])
    local keep = ret.journal
    if idem ~= '' then
      if ret.idempotency > keep then keep = ret.idempotency end
      redis.call('PEXPIRE', k_idem, ret.idempotency)
    end
    redis.call('PEXPIRE', k_inv, keep)
    index_expire(part, id, ARGV[2], ARGV[3], ARGV[4], now + keep)
    if ARGV[14] ~= '' then
      -- The delegating process waits on its outcome channel: the outcome message a completion
      -- would send it (only the id above 64 KiB: it reads the outcome).
      local msg = id .. '\n' .. ARGV[25] .. '\n' .. ARGV[26]
      if string.len(msg) > 65536 then msg = id end
      redis.call('SPUBLISH', ARGV[17], msg)
    end
    return {'done', tostring(ep), now}
  end
end
local st, deadline
if delay > 0 then
  -- Its start time is a timer: the deadline the partition's owner fires it at (no mailbox job).
  st = 'delayed'
elseif mode == 'workflow' then
  -- It holds the key already (above).
  st, deadline = 'ready', now + grace
elseif keyed then
  -- It holds the key when nobody does (the fence's 'hd'), else waits in the key's inbox.
  if join_key(k_fence, k_inbox, id) then
    st, deadline = 'ready', now + grace
  else
    st = 'queued'
  end
else
  st, deadline = 'ready', now + grace
end
if member ~= '' then field('wn', 1) end
-- Who invoked it, for operators (the admin API's invokedBy): '<id>:<index>' of a call or send.
if ARGV[19] ~= '' then field('by', ARGV[19]) end
if ARGV[17] ~= '' then field('wo', 1) end
-- The cheap hand-off (see handoff.ts): a ready invocation not leased here goes to another
-- process's worker in one message. With at most 64 KiB of input and state it is leased to that
-- worker below, exactly when somebody heard the message ('L': everything its first attempt needs);
-- otherwise the message is a wake-up ('W') and the worker's start script leases it. Nobody heard
-- it ('handed' 0): the caller dispatches it.
local handed, hand_lease, hand_state = 0, false, nil
if st == 'ready' and ARGV[15] == '' and ARGV[21] ~= '' then
  local state = {}
  if mode ~= 'service' then state = redis.call('HGETALL', k_state) end
  local size = #ARGV[6] + #ARGV[23]
  for i = 1, #state do size = size + #state[i] end
  if size <= 65536 then
    -- The epoch the lease below moves the fence to.
    local ep1 = 1
    if keyed then
      fence_ep = fence_ep or redis.call('HGET', k_fence, 'ep') or '0'
      ep1 = tonumber(fence_ep) + 1
    end
    local sj = #state > 0 and cjson.encode(state) or '[]'
    handed = redis.call('SPUBLISH', ARGV[21], 'L' .. ep1 .. '\n' .. now .. '\n' .. ARGV[23] .. '\n' .. sj .. '\n' .. ARGV[6])
    hand_lease = handed > 0
  else
    handed = redis.call('SPUBLISH', ARGV[21], 'W1\n' .. ARGV[23])
  end
end
-- Leased at once to the accepting process (its first attempt; see startAttempt for the fields),
-- or to the worker a lease message reached.
local leased = st == 'ready' and (ARGV[15] ~= '' or hand_lease)
local worker = hand_lease and ARGV[22] or ARGV[15]
local ep = 0
if leased then
  st = 'running'
  deadline = now + tonumber(ARGV[16])
  -- Attempt times for operators (as lease() keeps them).
  field('fst', now)
  field('lst', now)
  if keyed then
    ep = take_fence(k_fence, id, fence_ep)
    field('ep', 0)
  else
    -- A non-exclusive invocation is its own fence (k_fence = k_inv): epoch 0 becomes 1.
    ep = 1
    field('ep', 1)
  end
  field('lease', deadline)
  field('w', worker)
  field('rep', ep)
else
  field('ep', 0)
end
write_status(k_inv, id, nil, ARGV[2], st, now, unpack(h))
index_new(part, id, ARGV[2], ARGV[4], mode, now)
emit_status(part, id, st, now, ARGV[2], ARGV[3], ARGV[4])
if st == 'delayed' then
  timer_at(part, k_due, id, now + delay, now)
elseif deadline then
  redis.call('ZADD', k_due, deadline, id)
end
if member ~= '' then redis.call('SADD', part .. KEY_NOTIFY .. id, member) end
if ARGV[17] ~= '' then redis.call('SADD', part .. KEY_WATCHERS .. id, ARGV[17]) end
-- A delegated accept: its process learns that it is accepted; the outcome follows as a watcher's.
if ARGV[14] ~= '' then redis.call('SPUBLISH', ARGV[17], id .. '\n' .. ARGV[14]) end
if leased and not hand_lease then
  local state = {}
  if mode ~= 'service' then state = redis.call('HGETALL', k_state) end
  return {'run', tostring(ep), now, state}
end
return {'ok', st, 1, delay, handed}
