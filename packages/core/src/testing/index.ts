/**
 * `@latchkey/core/testing`: an in-memory {@link Store} for tests that need no Redis, and
 * `storeContract()`, the vitest suite every store implementation passes (the in-memory one and
 * `@latchkey/redis-store`). Test tooling only: not for production use.
 *
 * @module
 */
export { MemoryStore, createMemoryStore } from './memory/store.js';
export { storeContract } from './contract.js';
export type { StoreContractOptions } from './contract.js';
export type { Store } from '../store/store.js';
