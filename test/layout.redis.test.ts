/**
 * The store's layout: the partition count is chosen when the data is first created, kept in
 * Redis, adopted by a process configured without one and refused (before anything is written)
 * to a process configured with another; every partition's hash tag lands in its own share of
 * the slot space, so the partitions spread evenly over a cluster's masters.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  createRedisStore,
  DATA_FORMAT,
  Keys,
  partitionTag,
  type RedisStore,
} from '@latchkey/redis-store';
import calculateSlot from 'cluster-key-slot';
import { deletePrefix, newPrefix, quietLogger } from './helpers/harness.js';
import { keysOnMasters, rawClient } from './helpers/redis.js';

/** Any prefix: only the hash tag decides a key's slot. */
const prefixOf = (p: number): string => `lk-${p}:`;

const redisTarget = inject('redisTarget');

describe('the partition layout', () => {
  const stores: RedisStore[] = [];
  const prefixes: string[] = [];
  const open = (prefix: string, partitions?: number): RedisStore => {
    const s = createRedisStore({
      ...redisTarget,
      prefix,
      logger: quietLogger,
      ...(partitions !== undefined ? { partitions } : {}),
    });
    stores.push(s);
    return s;
  };

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const p of prefixes.splice(0)) await deletePrefix(redisTarget, p);
  });

  it("marks an earlier version's data as this format, and refuses a later format's data", async () => {
    const prefix = newPrefix();
    prefixes.push(prefix);
    const redis = rawClient(redisTarget);
    try {
      // An earlier version's layout holds the partition count alone (format 1).
      await redis.set(`${prefix}:layout`, 'partitions=8');
      const store = open(prefix);
      await store.init();
      expect(store.keys.part(7)).toBe(new Keys(prefix, 8).part(7));
      const marked = await redis.get(`${prefix}:layout`);
      expect(marked).toBe(`partitions=8 format=${DATA_FORMAT}`);
      // What that earlier version accepts (its check's whole pattern): no longer this marker, so
      // it refuses to start beside this one.
      expect(/^partitions=(\d+)$/.test(marked!)).toBe(false);
      await store.close();
      stores.splice(stores.indexOf(store), 1);

      const later = newPrefix();
      prefixes.push(later);
      await redis.set(`${later}:layout`, `partitions=16 format=${DATA_FORMAT + 1}`);
      const before = (await keysOnMasters(redis, `${later}:*`)).sort();
      await expect(open(later).init()).rejects.toMatchObject({
        kind: 'DATA_FORMAT',
        message: expect.stringContaining(`data format ${DATA_FORMAT + 1}`),
      });
      // Refused before its mailbox or boot marker: nothing written.
      expect((await keysOnMasters(redis, `${later}:*`)).sort()).toEqual(before);
    } finally {
      redis.disconnect();
    }
  });

  it('is kept at first start, adopted without an option, refused when configured otherwise', async () => {
    const prefix = newPrefix();
    prefixes.push(prefix);
    await open(prefix, 8).init();
    const redis = rawClient(redisTarget);
    try {
      expect(await redis.get(`${prefix}:layout`)).toBe(`partitions=8 format=${DATA_FORMAT}`);
      const before = (await keysOnMasters(redis, `${prefix}:*`)).sort();

      const other = open(prefix, 16);
      await expect(other.init()).rejects.toMatchObject({ kind: 'PARTITIONS_MISMATCH' });
      // Refused before its mailbox or boot marker: nothing written.
      expect((await keysOnMasters(redis, `${prefix}:*`)).sort()).toEqual(before);

      const adopting = open(prefix);
      await adopting.init();
      expect(adopting.keys.part(7)).toBe(new Keys(prefix, 8).part(7));
      expect(() => adopting.keys.part(8)).toThrow(/no partition 8/);
      expect(await redis.get(`${prefix}:layout`)).toBe(`partitions=8 format=${DATA_FORMAT}`);
    } finally {
      redis.disconnect();
    }
  });

  it("puts each partition's hash tag in its share of the 16,384 slots", () => {
    for (const partitions of [1, 3, 16, 64]) {
      const tags = new Set<string>();
      for (let p = 0; p < partitions; p++) {
        const tag = partitionTag(p, partitions);
        tags.add(tag);
        // The key's slot as ioredis (and Redis) compute it: CRC16 of the hash tag.
        const slot = calculateSlot(`${prefixOf(p)}{${tag}}:due`);
        expect(slot).toBeGreaterThanOrEqual(Math.floor((p * 16384) / partitions));
        expect(slot).toBeLessThan(Math.floor(((p + 1) * 16384) / partitions));
      }
      expect(tags.size).toBe(partitions);
    }
  });
});
