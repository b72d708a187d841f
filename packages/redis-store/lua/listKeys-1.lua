--[[
  One partition's share of a page of an object's or workflow's keys (admin): walks the service's
  key index in member order from a position and answers, for each key that has state, a holder
  or an inbox, its inbox length and holder. A key with none of them is dropped from the index
  (the index is pruned lazily, here: accepts, state patches and delayed starts add keys again).
  KEYS[1] key index zset {p}:ix:keys:<svc> (score 0, members the raw keys)
  ARGV: 1 partition prefix, 2 the service's name encoded (as in key names), 3 start bound ('-' or
        '(<key>'), 4 most keys, 5 most keys examined
  Returns {keys {key, inbox length (the holder included), holder or '', ...}, frontier key or '', exhausted 0|1} (see
  listIndex: the frontier is the last key examined when the examination limit stopped the walk).
]]
local part, s = ARGV[1], ARGV[2]
local from, limit, most = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local out, examined = {}, 0
local chunk = math.max(16, math.min(most, limit * 2))
while true do
  local got = redis.call('ZRANGE', KEYS[1], from, '+', 'BYLEX', 'LIMIT', 0, chunk)
  for _, key in ipairs(got) do
    examined = examined + 1
    local suffix = s .. ':' .. enc(key)
    -- The inbox holds those waiting behind the key's holder ('hd'; an earlier version's inbox
    -- holds it too, then there is no 'hd'); the holder reported is the one leased ('owner').
    local inbox = redis.call('LLEN', part .. KEY_INBOX .. suffix)
    local f = redis.call('HMGET', part .. KEY_FENCE .. suffix, 'owner', 'hd')
    local holder = f[1]
    if f[2] then inbox = inbox + 1 end
    if inbox > 0 or holder or redis.call('EXISTS', part .. KEY_STATE .. suffix) == 1 then
      out[#out + 1] = key
      out[#out + 1] = inbox
      out[#out + 1] = holder or ''
      if #out >= 3 * limit then return {out, '', 0} end
    else
      redis.call('ZREM', KEYS[1], key)
    end
    if examined >= most then return {out, key, 0} end
  end
  if #got < chunk then return {out, '', 1} end
  from = '(' .. got[#got]
end
