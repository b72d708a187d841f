/**
 * The layout of a key's queue (ARCHITECTURE.md "Redis key layout"): the exclusive invocation
 * holding an object key is named by its fence's field `hd`, and the key's inbox (`q:`) holds only
 * the invocations waiting behind it, so a key nobody waits for has no inbox. A key whose queue an
 * earlier version wrote (its holder at the inbox's head, no `hd`) is handed on in the same order.
 * An invocation's retention (`ret`) is stored as `<journal>,<idempotency>,<workflow>` ms; a record
 * with the JSON an earlier version wrote still gets its TTLs from it.
 */
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { Keys, partitionOf, partitionOfId } from '@latchkey/redis-store';
import { object, type ObjectContext } from '@latchkey/core';
import { post } from './helpers/harness.js';
import { admin, attach, fileClients, setupControl } from './helpers/control.js';

const redisTarget = inject('redisTarget');
const { log, redis } = fileClients(redisTarget);

const PARTITIONS = 16;
const JOURNAL_RETENTION_MS = 60_000;

const box = object({
  name: 'qbox',
  options: { journalRetention: JOURNAL_RETENTION_MS },
  handlers: {
    /** Holds the key until its awakeable is resolved; logs when it starts and ends. */
    hold: async (ctx: ObjectContext, tag: string) => {
      const a = ctx.awakeable<string>();
      await ctx.run('published', () => log.add(`hold:${tag}:${a.id}`));
      const v = await a.promise;
      await ctx.run('after', () => log.add(`done:${tag}`));
      return `${tag}:${v}`;
    },
  },
});

/** Sends `qbox/<key>/hold` with `tag`; returns its invocation id. */
async function sendHold(url: string, key: string, tag: string): Promise<string> {
  const sent = await post(url, `/qbox/${key}/hold/send`, tag);
  expect(sent.status).toBe(202);
  return (sent.body as { invocationId: string }).invocationId;
}

/** Waits until the hold tagged `tag` runs; returns its awakeable's id. */
async function awakeableOf(tag: string): Promise<string> {
  const line = await log.waitFor(new RegExp(`^hold:${tag}:`));
  return line.slice(`hold:${tag}:`.length);
}

async function release(url: string, tag: string): Promise<void> {
  const awk = await awakeableOf(tag);
  expect((await post(url, `/restate/awakeables/${awk}/resolve`, 'go')).status).toBe(202);
  await log.waitFor(`done:${tag}`);
}

describe("a key's queue", () => {
  it('names its holder in the fence and keeps an inbox only while somebody waits', async () => {
    const { prefix, server } = await setupControl(redisTarget, [box], log, onTestFinished);
    const k = new Keys(prefix);
    const o = k.objectKeys(partitionOf(PARTITIONS, 'qbox', 'a'), 'qbox', 'a');

    const first = await sendHold(server.url, 'a', 'one');
    await awakeableOf('one');
    expect(await redis.hget(o.fence, 'hd')).toBe(first);
    expect(await redis.exists(o.inbox)).toBe(0);

    const second = await sendHold(server.url, 'a', 'two');
    const third = await sendHold(server.url, 'a', 'three');
    expect(await redis.lrange(o.inbox, 0, -1)).toEqual([second, third]);
    const keys = await admin<{ keys: unknown[] }>(server.adminUrl, 'GET', '/services/qbox/keys');
    expect(keys.body.keys).toEqual([{ key: 'a', inbox: 3, holder: first }]);
    const queue = await admin<{ holder: string; queue: { id: string }[] }>(
      server.adminUrl,
      'GET',
      '/services/qbox/keys/a/queue',
    );
    expect(queue.body.holder).toBe(first);
    expect(queue.body.queue.map((s) => s.id)).toEqual([second, third]);

    await release(server.url, 'one');
    await awakeableOf('two');
    expect(await redis.hget(o.fence, 'hd')).toBe(second);
    expect(await redis.lrange(o.inbox, 0, -1)).toEqual([third]);

    await release(server.url, 'two');
    await awakeableOf('three');
    expect(await redis.hget(o.fence, 'hd')).toBe(third);
    expect(await redis.exists(o.inbox)).toBe(0);

    await release(server.url, 'three');
    expect((await attach(server.url, third)).body).toBe('three:go');
    expect(await redis.hmget(o.fence, 'hd', 'owner')).toEqual([null, null]);
    expect(await redis.exists(o.inbox)).toBe(0);
  });

  it('hands a key whose queue an earlier version wrote to its waiters in order', async () => {
    const { prefix, server } = await setupControl(redisTarget, [box], log, onTestFinished);
    const k = new Keys(prefix);
    const o = k.objectKeys(partitionOf(PARTITIONS, 'qbox', 'b'), 'qbox', 'b');
    const first = await sendHold(server.url, 'b', 'old1');
    await awakeableOf('old1');
    const second = await sendHold(server.url, 'b', 'old2');
    // As an earlier version kept it: the holder at the inbox's head, no 'hd'.
    await redis.hdel(o.fence, 'hd');
    await redis.lpush(o.inbox, first);
    expect(await redis.lrange(o.inbox, 0, -1)).toEqual([first, second]);

    // A new invocation waits behind both; each runs in turn, alone on the key.
    const third = await sendHold(server.url, 'b', 'old3');
    expect(await redis.hget(o.fence, 'hd')).toBe(first);
    expect(await redis.lrange(o.inbox, 0, -1)).toEqual([second, third]);
    await release(server.url, 'old1');
    await release(server.url, 'old2');
    await release(server.url, 'old3');
    expect((await attach(server.url, third)).body).toBe('old3:go');
    const order = (await log.all()).filter((e) => e.startsWith('hold:') || e.startsWith('done:'));
    expect(order.map((e) => e.split(':').slice(0, 2).join(':'))).toEqual([
      'hold:old1',
      'done:old1',
      'hold:old2',
      'done:old2',
      'hold:old3',
      'done:old3',
    ]);
    expect(await redis.exists(o.inbox)).toBe(0);
  });
});

describe("an invocation's retention", () => {
  it('is stored compactly, and a record with the JSON an earlier version wrote keeps its TTLs', async () => {
    const { prefix, server } = await setupControl(redisTarget, [box], log, onTestFinished);
    const k = new Keys(prefix);
    const id = await sendHold(server.url, 'c', 'ret');
    const inv = k.inv(partitionOfId(id, PARTITIONS)!, id);
    await awakeableOf('ret');
    expect(await redis.hget(inv, 'ret')).toBe(`${JOURNAL_RETENTION_MS},86400000,86400000`);

    // As an earlier version wrote it: a journal retention of 30 s.
    await redis.hset(inv, 'ret', '{"journal":30000,"idempotency":86400000,"workflow":86400000}');
    await release(server.url, 'ret');
    expect((await attach(server.url, id)).body).toBe('ret:go');
    const ttl = await redis.pttl(inv);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30_000);
  });
});
