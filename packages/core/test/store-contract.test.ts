/**
 * The Store contract (`storeContract` from `@latchkey/core/testing`) on the in-memory store: no
 * Redis. The same suite runs on the Redis store in test/store-contract.redis.test.ts.
 */
import { createMemoryStore, storeContract } from '@latchkey/core/testing';

storeContract('in-memory store', () => createMemoryStore());
