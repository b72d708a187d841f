import type { TestProject } from 'vitest/node';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import type { RedisTarget } from '../helpers/redis.js';

/**
 * Uses REDIS_URL when set; otherwise starts a private redis-server for the project (each Redis
 * project, `redis` and `redis-suspend`, gets its own) and stops it when the project is done.
 * Tests read the target with `inject('redisTarget')` (test/helpers/redis.ts).
 */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  let redis: LocalRedis | undefined;
  let url = process.env['REDIS_URL'];
  if (!url) {
    redis = await startLocalRedis();
    url = redis.url;
  }
  project.provide('redisTarget', { url });
  return async () => {
    await redis?.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The project's Redis: a standalone server (`url`) or a cluster's seed nodes (`cluster`). */
    redisTarget: RedisTarget;
  }
}
