export { RedisStore, createRedisStore } from './store.js';
export type { RedisStoreOptions, StoreHooks } from './options.js';
export { Keys, enc, partitionOf, partitionOfId } from './keys.js';
export { scriptSources } from './scripts.js';
export type { ScriptName } from './scripts.js';
export { StoreError, LeaseLostError } from './errors.js';
