/**
 * Keyspace snapshots for "changes nothing" assertions: every key under a test
 * prefix (Latchkey's keys and the BullMQ mailbox keys, which live under the
 * same prefix) with a digest of its value and whether it expires.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { until } from './harness.js';

/** key -> `<sha1 of DUMP>/<persistent|expiring>`, sorted by key. */
export type Keyspace = Record<string, string>;

/** Every key matching `<prefix>:*` (KEYS, as the test prefix holds few keys) with its value digest. */
export async function snapshotKeyspace(redis: Redis, prefix: string): Promise<Keyspace> {
  const keys = (await redis.keys(`${prefix}:*`)).sort();
  if (keys.length === 0) return {};
  const pipe = redis.pipeline();
  for (const k of keys) {
    pipe.dumpBuffer(k);
    pipe.pttl(k);
  }
  const res = (await pipe.exec()) ?? [];
  const out: Keyspace = {};
  keys.forEach((k, i) => {
    const dump = res[2 * i]?.[1] as Buffer | null;
    const ttl = res[2 * i + 1]?.[1] as number;
    if (dump === null) return; // expired between KEYS and DUMP
    out[k] = `${createHash('sha1').update(dump).digest('hex')}/${ttl === -1 ? 'persistent' : 'expiring'}`;
  });
  return out;
}

/**
 * Waits until the keyspace is at rest: no BullMQ job waiting or active, every
 * mailbox shard's stalled-check marker present, and two snapshots 100 ms apart
 * identical. Returns the settled snapshot. (Used before a request, never to
 * wait for something not to happen after one.)
 */
export async function settledKeyspace(redis: Redis, prefix: string, timeoutMs = 30_000): Promise<Keyspace> {
  let prev = await snapshotKeyspace(redis, prefix);
  return until(
    'the keyspace to settle',
    async () => {
      await new Promise((r) => setTimeout(r, 100));
      const cur = await snapshotKeyspace(redis, prefix);
      const keys = Object.keys(cur);
      const busy = keys.some((k) => /:jobs:(wait|active|delayed|prioritized|paused|marker)$/.test(k));
      const metas = keys.filter((k) => k.endsWith(':jobs:meta')).length;
      const checks = keys.filter((k) => k.endsWith(':jobs:stalled-check')).length;
      const stable = JSON.stringify(cur) === JSON.stringify(prev);
      prev = cur;
      return !busy && metas > 0 && checks === metas && stable ? cur : undefined;
    },
    timeoutMs,
    0,
  );
}
