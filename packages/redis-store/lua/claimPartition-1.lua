--[[
  A partition's duty lease: the one live process that sweeps the partition and fires its
  timers (see src/duties.ts). One key, in the partition's own hash tag, so it runs on the
  partition's Redis Cluster slot.
  KEYS[1] the partition's duty lease (`<prefix>:{p}:own`, a string holding the owner's duty id)
  ARGV: 1 duty id, 2 'take'|'release', 3 lease ms (for 'take')
  Returns:
    take:    1 held by this process (renewed, or taken now because it was free), 0 another holds it
    release: 1 released, 0 it was not this process's
  Invariant: only the holder renews or releases; a lease nobody renews expires by itself, so a
  process that dies (SIGKILL) loses its partitions after at most one lease.
]]
local holder = redis.call('GET', KEYS[1])
if ARGV[2] == 'release' then
  if holder ~= ARGV[1] then return 0 end
  redis.call('DEL', KEYS[1])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[3]))
return 1
