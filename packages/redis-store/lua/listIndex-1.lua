--[[
  One partition's share of an admin list page: walks an index (a zset scored by created or
  modified time, members invocation ids) from a position, checks each id against the filters the
  index does not answer (from the invocation hash), and returns the matches. Reads only.
  KEYS[1] index zset ({p}:ix:...)
  ARGV: 1 partition prefix, 2 'asc'|'desc', 3 start bound (a ZRANGE BYSCORE bound: '-inf', '+inf',
        '<n>' or '(<n>'), 4 end bound, 5 the cursor's score ('' for none), 6 the cursor's id (with a
        cursor: members at exactly its score that come before it or are it are skipped),
        7 most matches, 8 most ids examined, 9 n exact filters, then (field, value) pairs,
        then n range filters, then (field, low, high) triples (exclusive bounds; '' for none)
  Returns {matches {id, score, ...}, frontier score or '', frontier id or '', exhausted 0|1}:
  the frontier is the last id examined when the examination limit stopped the walk (the page may
  not go past it); exhausted is 1 when the walk reached the end of the range.
  Ties (equal scores) are in member order, byte by byte (Redis's order), never Lua's string
  comparison (locale-dependent).
]]
local part, desc = ARGV[1], ARGV[2] == 'desc'
local from, to = ARGV[3], ARGV[4]
local tie_score = ARGV[5] ~= '' and tonumber(ARGV[5]) or nil
local tie_id = ARGV[6]
local limit, most = tonumber(ARGV[7]), tonumber(ARGV[8])
local exact, ranges, fields = {}, {}, {}
local i = 10
for _ = 1, tonumber(ARGV[9]) do
  exact[#exact + 1] = {ARGV[i], ARGV[i + 1]}
  fields[#fields + 1] = ARGV[i]
  i = i + 2
end
local nranges = tonumber(ARGV[i])
i = i + 1
for _ = 1, nranges do
  ranges[#ranges + 1] = {ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])}
  fields[#fields + 1] = ARGV[i]
  i = i + 3
end
-- a before b in member order (memcmp).
local function bytes_before(a, b)
  local n = math.min(#a, #b)
  for j = 1, n do
    local x, y = string.byte(a, j), string.byte(b, j)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local function matches(id)
  if #fields == 0 then return true end
  local v = redis.call('HMGET', part .. KEY_INV .. id, unpack(fields))
  for j, e in ipairs(exact) do
    if v[j] ~= e[2] then return false end
  end
  for j, r in ipairs(ranges) do
    local x = tonumber(v[#exact + j])
    if not x then return false end
    if r[2] and x <= r[2] then return false end
    if r[3] and x >= r[3] then return false end
  end
  return true
end
local out, examined, offset = {}, 0, 0
-- Without filters every id examined matches: read as many as the page needs (and more on a tie).
local chunk = #fields == 0 and limit + 1 or math.max(16, math.min(most, limit * 2))
while true do
  local got
  if desc then
    got = redis.call('ZRANGE', KEYS[1], from, to, 'BYSCORE', 'REV', 'LIMIT', offset, chunk, 'WITHSCORES')
  else
    got = redis.call('ZRANGE', KEYS[1], from, to, 'BYSCORE', 'LIMIT', offset, chunk, 'WITHSCORES')
  end
  for j = 1, #got, 2 do
    local id, score = got[j], got[j + 1]
    local skip = false
    if tie_score and tonumber(score) == tie_score then
      -- Past the cursor only: desc walks ties from the largest member down, asc from the smallest up.
      if desc then skip = not bytes_before(id, tie_id) else skip = not bytes_before(tie_id, id) end
    end
    if not skip then
      examined = examined + 1
      if matches(id) then
        out[#out + 1] = id
        out[#out + 1] = score
        if #out >= 2 * limit then return {out, '', '', 0} end
      end
      if examined >= most then return {out, score, id, 0} end
    end
  end
  if #got < 2 * chunk then return {out, '', '', 1} end
  offset = offset + chunk
end
