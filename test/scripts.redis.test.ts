/**
 * How the store sends its Lua scripts (packages/redis-store/src/scripts.ts): in full (EVAL) the
 * first time on a connection, by SHA1 (EVALSHA) after that, in full again when Redis answers
 * NOSCRIPT (its script cache was flushed), with every argument as given, and queued in a pipeline
 * when called on one. Runs on a private
 * redis-server: SCRIPT FLUSH would disturb the other test files.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRedisStore, scriptSources, type RedisStore } from '@latchkey/redis-store';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { startMonitor, type Monitor } from './helpers/monitor.js';
import { quietLogger } from './helpers/harness.js';
import { onClusterPass } from './helpers/redis.js';

const sha = createHash('sha1').update(scriptSources().get('watchOutcome')!).digest('hex');

// Skipped on the cluster pass (onClusterPass): this file never uses the project's Redis, as it
// flushes the script cache of its own standalone redis-server and monitors it; there it would only
// repeat the `redis` pass.
describe.skipIf(onClusterPass)('sending scripts', () => {
  let redis: LocalRedis;
  let admin: Redis;
  let monitor: Monitor;
  let store: RedisStore;
  const prefix = 'scripts';

  beforeAll(async () => {
    redis = await startLocalRedis();
    admin = new Redis(redis.url);
    monitor = await startMonitor({ url: redis.url });
    store = createRedisStore({ url: redis.url, prefix, logger: quietLogger });
    await store.init();
  });

  afterAll(async () => {
    await store?.close();
    monitor?.close();
    admin?.disconnect();
    await redis?.stop();
  });

  /** The script commands Redis ran for watchOutcome since `from`: 'eval' or 'evalsha'. */
  function watchCalls(from: number): string[] {
    return monitor.commands
      .slice(from)
      .filter((c) => c.source !== 'lua')
      .filter(
        (c) =>
          (c.args[0] === 'evalsha' && c.args[1] === sha) ||
          (c.args[0] === 'eval' && c.args[1] === scriptSources().get('watchOutcome')),
      )
      .map((c) => c.args[0]!);
  }

  it('sends a script in full on its first call on a connection, by SHA1 afterwards, with every argument as given', async () => {
    const from = monitor.commands.length;
    const inv = `${prefix}:{0}:inv:inv_00none`;
    expect(await store.redis.watchOutcome(inv, 'inv_00none', `${prefix}:{0}:`, 'chan-1')).toEqual([
      'waiting',
    ]);
    expect(await store.redis.watchOutcome(inv, 'inv_00none', `${prefix}:{0}:`, 'chan-2')).toEqual([
      'waiting',
    ]);
    await monitor.caughtUp();
    expect(watchCalls(from)).toEqual(['eval', 'evalsha']);
    const call = monitor.commands
      .slice(from)
      .find((c) => c.args[0] === 'evalsha' && c.args[1] === sha)!;
    expect(call.args.slice(2)).toEqual(['1', inv, 'inv_00none', `${prefix}:{0}:`, 'chan-2']);
    expect(await admin.smembers(`${prefix}:{0}:ow:inv_00none`)).toEqual(
      expect.arrayContaining(['chan-1', 'chan-2']),
    );
  });

  it('queues a script called on a pipeline in that pipeline', async () => {
    const inv = `${prefix}:{2}:inv:inv_02none`;
    const pipe = store.redis.pipeline();
    (pipe as unknown as Record<string, (...a: string[]) => unknown>)['watchOutcome']!(
      inv,
      'inv_02none',
      `${prefix}:{2}:`,
      'chan-4',
    );
    const replies = await pipe.smembers(`${prefix}:{2}:ow:inv_02none`).exec();
    expect(replies).toEqual([
      [null, ['waiting']],
      [null, ['chan-4']],
    ]);
  });

  it('sends a script in full again when Redis has lost it (NOSCRIPT), and the call succeeds', async () => {
    await admin.script('FLUSH');
    expect(await admin.script('EXISTS', sha)).toEqual([0]);
    const from = monitor.commands.length;
    const inv = `${prefix}:{1}:inv:inv_01none`;
    expect(await store.redis.watchOutcome(inv, 'inv_01none', `${prefix}:{1}:`, 'chan-3')).toEqual([
      'waiting',
    ]);
    await monitor.caughtUp();
    expect(watchCalls(from)).toEqual(['evalsha', 'eval']);
    expect(await admin.script('EXISTS', sha)).toEqual([1]);
    expect(await admin.smembers(`${prefix}:{1}:ow:inv_01none`)).toEqual(['chan-3']);
  });
});
