import type { TestProject } from 'vitest/node';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';

let redis: LocalRedis | undefined;

/** Uses REDIS_URL when set; otherwise starts a private redis-server for the run. */
export async function setup(project: TestProject): Promise<void> {
  let url = process.env['REDIS_URL'];
  if (!url) {
    redis = await startLocalRedis();
    url = redis.url;
  }
  project.provide('redisUrl', url);
}

export async function teardown(): Promise<void> {
  await redis?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
