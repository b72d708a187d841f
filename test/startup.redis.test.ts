/**
 * Start-up checks of Redis: the eviction policy must be noeviction, AOF is
 * reported, and a boot marker detects a Redis wiped under a running store.
 * Every test runs against this file's own private redis-server (FLUSHALL and
 * CONFIG SET never touch the shared one).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import {
  handlers,
  object,
  type LatchkeyServer,
  type ObjectContext,
  type ObjectSharedContext,
} from '@latchkey/core';
import { createRedisStore, partitionOfId, type RedisStore } from '@latchkey/redis-store';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import {
  FAST_TIMINGS,
  newPrefix,
  post,
  quietLogger,
  startServer,
  until,
} from './helpers/harness.js';
import { onClusterPass } from './helpers/redis.js';

/** Handler executions in this process (the wiped store must not run any). */
let tallies = 0;

const tally = object({
  name: 'tally',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      await ctx.run('count', () => ++tallies);
      const next = ((await ctx.get<number>('n')) ?? 0) + n;
      ctx.set('n', next);
      return next;
    },
    get: handlers.object.shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<number>('n')) ?? 0,
    ),
  },
});

function captureLogger(): { logger: Pick<Console, 'warn' | 'error' | 'info'>; lines: string[] } {
  const lines: string[] = [];
  const push = (...a: unknown[]): void => void lines.push(a.map(String).join(' '));
  return { logger: { warn: push, error: push, info: push }, lines };
}

/** Silences BullMQ's console.error of reconnect failures on a store's queues (they have no 'error' listener). */
function quietQueues(store: RedisStore): void {
  for (const q of (store as unknown as { queues?: { on(e: 'error', f: () => void): void }[] })
    .queues ?? [])
    q.on('error', () => undefined);
}

// Skipped on the cluster pass (onClusterPass): this file never uses the project's Redis, as it
// reconfigures (CONFIG SET), flushes and restarts its own standalone redis-server; there it would
// only repeat the `redis` pass.
describe.skipIf(onClusterPass)('Redis start-up checks', () => {
  let redis: LocalRedis;
  let admin: Redis;
  const stores: RedisStore[] = [];
  const servers: LatchkeyServer[] = [];

  const newStore = (
    prefix: string,
    logger: Pick<Console, 'warn' | 'error' | 'info'> = quietLogger,
  ): RedisStore => {
    const s = createRedisStore({ url: redis.url, prefix, ...FAST_TIMINGS, logger });
    quietQueues(s);
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    // appendfsync always: the restart test SIGKILLs it and must not lose the boot marker.
    redis = await startLocalRedis({ appendfsync: 'always' });
    admin = new Redis(redis.url, { maxRetriesPerRequest: null });
    admin.on('error', () => undefined);
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await Promise.all(stores.splice(0).map((s) => s.close()));
    // Back to the configuration startLocalRedis gives, whatever a test changed.
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'appendonly', 'yes');
    await admin.flushall();
  });

  afterAll(async () => {
    admin?.disconnect();
    await redis?.stop();
  });

  it('refuses to start when maxmemory-policy is not noeviction, writing nothing', async () => {
    // BullMQ prints its own eviction-policy warning for each queue; keep the output readable.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      await refusesEviction();
    } finally {
      warn.mockRestore();
    }
  });

  async function refusesEviction(): Promise<void> {
    for (const policy of ['allkeys-lru', 'volatile-ttl']) {
      await admin.config('SET', 'maxmemory-policy', policy);
      const prefix = newPrefix();
      const store = newStore(prefix);
      const err = await store.init().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `init() with maxmemory-policy ${policy}`).toBeDefined();
      expect(err).toMatchObject({ kind: 'REDIS_EVICTION_POLICY' });
      expect((err as Error).message).toContain(policy);
      // It stopped before writing any Latchkey data, boot marker included. (Only BullMQ's queue
      // objects, created with the store, may have written their `meta` keys.)
      const written = (await admin.keys(`${prefix}:*`)).filter(
        (k) => !k.startsWith(`${prefix}:{q`),
      );
      expect(written).toEqual([]);
      expect(await admin.exists(`${prefix}:boot`)).toBe(0);
    }
    // The same store configuration starts once the policy is right.
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    const ok = newStore(newPrefix());
    await expect(ok.init()).resolves.toBeUndefined();
  }

  it('reports AOF on, and AOF off with a warning', async () => {
    const on = captureLogger();
    const a = newStore(newPrefix(), on.logger);
    await a.init();
    expect(a.persistence).toEqual({ aof: true, appendfsync: 'always' });
    expect(on.lines.filter((l) => /AOF/i.test(l))).toEqual([]);

    await admin.config('SET', 'appendonly', 'no');
    const off = captureLogger();
    const b = newStore(newPrefix(), off.logger);
    await b.init();
    expect(b.persistence.aof).toBe(false);
    expect(off.lines.some((l) => /AOF off/i.test(l))).toBe(true);
  });

  it('detects a wiped Redis through the boot marker and stops running invocations', async () => {
    const prefix = newPrefix();
    const server = await startServer({ url: redis.url }, prefix, [tally]);
    servers.push(server);
    const store = server.store as RedisStore;
    quietQueues(store);
    expect((await post(server.url, '/tally/t/add', 1)).body).toBe(1);
    expect(store.wiped).toBe(false);
    const before = tallies;

    // Redis loses everything; the store's connections are dropped and reconnect.
    await admin.flushall();
    await admin.client('KILL', 'TYPE', 'normal');
    await until('the store to notice the wipe', () => store.wiped, 30_000);

    // A fresh ingress-only process (it writes a new boot marker) accepts an invocation.
    const ingress = await startServer({ url: redis.url }, prefix, [tally], { workers: false });
    servers.push(ingress);
    quietQueues(ingress.store as RedisStore);
    const sent = await post(ingress.url, '/tally/t/add/send', 5);
    expect(sent.status).toBe(202);
    const id = (sent.body as { invocationId: string }).invocationId;

    // The wiped process refuses new work at its own ingress (503, nothing accepted) ...
    const refused = await post(server.url, '/tally/t/add/send', 7);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ errorCode: 'REDIS_WIPED' });

    // ... and its workers stopped taking mailbox jobs: the job stays waiting, no attempt starts,
    // no handler code runs, no state is written, even across several reconciler rounds.
    const p = partitionOfId(id, 16)!;
    const waitKey = `${prefix}:{q${p % 4}}:jobs:wait`;
    const invKey = store.keys.inv(p, id);
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) {
      const inv = await admin.hgetall(invKey);
      expect(inv['st']).toBe('ready');
      expect(inv['w']).toBeUndefined();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await admin.lrange(waitKey, 0, -1)).toContain(`${id}-1`);
    expect(tallies).toBe(before);
    expect([...(await store.getState('tally', 't'))]).toEqual([]);

    // The invocation itself is sound: a worker that started after the wipe runs it at once.
    const fresh = await startServer({ url: redis.url }, prefix, [tally], { port: false });
    servers.push(fresh);
    quietQueues(fresh.store as RedisStore);
    const out = await until(
      'a fresh worker to complete the invocation',
      async () => (await fresh.store.describe(id))?.outcome,
      30_000,
    );
    expect(out).toEqual({ ok: true, value: '5' });
    expect(tallies).toBe(before + 1);
    expect((fresh.store as RedisStore).wiped).toBe(false);
    expect(store.wiped).toBe(true);
  });

  it('does not mistake a Redis restart with AOF for a wipe', async () => {
    const prefix = newPrefix();
    const server = await startServer({ url: redis.url }, prefix, [tally]);
    servers.push(server);
    const store = server.store as RedisStore;
    quietQueues(store);
    expect((await post(server.url, '/tally/r/add', 1)).body).toBe(1);

    let reconnected = false;
    store.redis.once('ready', () => (reconnected = true));
    await redis.kill(true);
    await redis.restart();
    await until('the store to reconnect', () => reconnected, 30_000);
    // The marker check ran on 'ready' before this call's commands on the same connection.
    expect((await post(server.url, '/tally/r/add', 1)).body).toBe(2);
    expect(store.wiped).toBe(false);
  });
});
