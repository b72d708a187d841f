import type { TestProject } from 'vitest/node';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';

/**
 * Uses REDIS_URL when set; otherwise starts a private redis-server for the project (each Redis
 * project, `redis` and `redis-suspend`, gets its own) and stops it when the project is done.
 */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  let redis: LocalRedis | undefined;
  let url = process.env['REDIS_URL'];
  if (!url) {
    redis = await startLocalRedis();
    url = redis.url;
  }
  project.provide('redisUrl', url);
  return async () => {
    await redis?.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
