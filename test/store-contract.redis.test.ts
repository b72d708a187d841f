/**
 * The Store contract (`storeContract` from `@latchkey/core/testing`) on the Redis store: every
 * test gets a store under a fresh key prefix; the prefixes are deleted at the end. The same
 * suite runs on the in-memory store in packages/core/test/store-contract.test.ts.
 */
import { afterAll, inject } from 'vitest';
import { storeContract } from '@latchkey/core/testing';
import { createRedisStore } from '@latchkey/redis-store';
import { FAST_TIMINGS, deletePrefix, newPrefix, quietLogger } from './helpers/harness.js';

const redisTarget = inject('redisTarget');
const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) await deletePrefix(redisTarget, p);
});

storeContract('Redis store', () => {
  const prefix = newPrefix();
  prefixes.push(prefix);
  const logger = quietLogger;
  return createRedisStore({ ...redisTarget, prefix, ...FAST_TIMINGS, logger });
});
