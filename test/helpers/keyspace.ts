/**
 * Keyspace snapshots for "changes nothing" assertions: every key under a test
 * prefix (Latchkey's keys and the BullMQ mailbox keys, which live under the
 * same prefix) with a digest of its content and whether it expires.
 */
import { until } from './harness.js';
import { keysOnMasters, type RawRedis } from './redis.js';

/** key -> `<type>/<sha1 of its content>/<persistent|expiring>`, sorted by key. */
export type Keyspace = Record<string, string>;

/**
 * A digest of each key's content in a canonical form (hash fields and set members in no particular
 * order) and whether it expires, computed by Redis (large values never travel). Not DUMP: its bytes
 * also capture a value's internal layout, and a plain HGET on a hashtable-encoded hash that is
 * being rehashed advances the rehash and reorders what DUMP writes, so a request that only read a
 * key would look as if it had changed it.
 */
const CANONICAL_DIGEST = `
local out = {}
local function lp(s) return #s .. ':' .. s end
for i, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k)['ok']
  local parts = {}
  if t == 'string' then
    parts = { lp(redis.call('GET', k)) }
  elseif t == 'hash' then
    local kv = redis.call('HGETALL', k)
    for j = 1, #kv, 2 do parts[#parts + 1] = redis.sha1hex(lp(kv[j]) .. lp(kv[j + 1])) end
    table.sort(parts)
  elseif t == 'set' then
    for _, m in ipairs(redis.call('SMEMBERS', k)) do parts[#parts + 1] = redis.sha1hex(lp(m)) end
    table.sort(parts)
  elseif t == 'list' then
    for _, m in ipairs(redis.call('LRANGE', k, 0, -1)) do parts[#parts + 1] = lp(m) end
  elseif t == 'zset' then
    for _, m in ipairs(redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')) do parts[#parts + 1] = lp(m) end
  elseif t == 'stream' then
    for _, e in ipairs(redis.call('XRANGE', k, '-', '+')) do
      parts[#parts + 1] = lp(e[1])
      for _, m in ipairs(e[2]) do parts[#parts + 1] = lp(m) end
    end
  end
  local ttl = redis.call('PTTL', k)
  out[i] = t .. '/' .. redis.sha1hex(table.concat(parts, ',')) .. '/' .. (ttl == -1 and 'persistent' or ttl == -2 and 'gone' or 'expiring')
end
return out
`;

/**
 * Canonical content digests of `keys` (see {@link CANONICAL_DIGEST}), key -> digest: 200 keys a
 * script on a standalone server, one key a script on a cluster (a script's keys share a slot).
 */
export async function canonicalDigests(
  redis: RawRedis,
  keys: string[],
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const per = redis.isCluster ? 1 : 200;
  const batches: string[][] = [];
  for (let i = 0; i < keys.length; i += per) batches.push(keys.slice(i, i + per));
  await Promise.all(
    batches.map(async (batch) => {
      const res = (await redis.eval(CANONICAL_DIGEST, batch.length, ...batch)) as string[];
      batch.forEach((k, j) => (out[k] = res[j]!));
    }),
  );
  return out;
}

/**
 * The partitions' live events flags (`<prefix>:{p}:ev`): a listening process's interest, set while
 * it has listeners (a WebSocket subscription, an admin event stream) and expiring on their own
 * afterwards, whatever the requests of the moment. Not data: snapshots leave them out.
 */
const EVENTS_FLAG = /:\{[\d.]+\}:ev$/;

/**
 * The processes' liveness: the live worker registry (`{w}:live`), the hand-off registry
 * (`workers`) and the partitions' duty leases (`{p}:own`), renewed every second or so by every
 * worker process whatever the requests of the moment. Not data either.
 */
const LIVENESS = /(?::\{w\}:live|:workers|:\{[\d.]+\}:own)$/;

/**
 * Every key matching `<prefix>:*` (KEYS on every master, as the test prefix holds few keys) with
 * its content digest, but the live events flags and the processes' liveness (see
 * {@link EVENTS_FLAG}, {@link LIVENESS}).
 */
export async function snapshotKeyspace(redis: RawRedis, prefix: string): Promise<Keyspace> {
  const keys = (await keysOnMasters(redis, `${prefix}:*`))
    .filter((k) => !EVENTS_FLAG.test(k) && !LIVENESS.test(k))
    .sort();
  const digests = await canonicalDigests(redis, keys);
  const out: Keyspace = {};
  for (const k of keys) {
    const d = digests[k]!;
    if (!d.startsWith('none/')) out[k] = d; // expired between KEYS and the digest
  }
  return out;
}

/**
 * Takes snapshots `everyMs` apart until two in a row are identical and `ready` accepts the last;
 * returns it.
 */
async function stableKeyspace(
  redis: RawRedis,
  prefix: string,
  what: string,
  everyMs: number,
  timeoutMs: number,
  ready: (snap: Keyspace) => boolean,
): Promise<Keyspace> {
  let prev = await snapshotKeyspace(redis, prefix);
  return until(
    what,
    async () => {
      await new Promise((r) => setTimeout(r, everyMs));
      const cur = await snapshotKeyspace(redis, prefix);
      const stable = JSON.stringify(cur) === JSON.stringify(prev);
      prev = cur;
      return stable && ready(cur) ? cur : undefined;
    },
    timeoutMs,
    0,
  );
}

/**
 * Waits until the keyspace is at rest: no BullMQ job waiting or active, every
 * mailbox shard's stalled-check marker present, and two snapshots 100 ms apart
 * identical. Returns the settled snapshot. (Used before a request, never to
 * wait for something not to happen after one.)
 */
export function settledKeyspace(
  redis: RawRedis,
  prefix: string,
  timeoutMs = 30_000,
): Promise<Keyspace> {
  return stableKeyspace(redis, prefix, 'the keyspace to settle', 100, timeoutMs, (snap) => {
    const keys = Object.keys(snap);
    // A mailbox job waiting, or a timer that has not fired: a delayed start or a retry's backoff
    // is a timer in its partition's `due` zset (no BullMQ delayed job any more), named by its
    // status index until it runs.
    const busy = keys.some(
      (k) =>
        /:jobs:(wait|active|delayed|prioritized|paused|marker)$/.test(k) ||
        /:ix:ss:[^:]+:(delayed|backing-off)$/.test(k),
    );
    const metas = keys.filter((k) => k.endsWith(':jobs:meta')).length;
    const checks = keys.filter((k) => k.endsWith(':jobs:stalled-check')).length;
    return !busy && metas > 0 && checks === metas;
  });
}

/**
 * The keyspace once it rests: two snapshots 150 ms apart agree. Unlike {@link settledKeyspace} it
 * does not wait for the mailbox to be idle (a suspended invocation may hold a delayed job).
 */
export function restingKeyspace(
  redis: RawRedis,
  prefix: string,
  timeoutMs = 30_000,
): Promise<Keyspace> {
  return stableKeyspace(redis, prefix, 'the keyspace to rest', 150, timeoutMs, () => true);
}
