export { RedisStore, createRedisStore } from './store.js';
export type { RedisStoreOptions, StoreHooks } from './options.js';
export { Keys, enc, partitionOf, partitionOfId, partitionTag } from './keys.js';
export type { RedisTarget } from './connection.js';
export type { Replicated } from './durability.js';
export { scriptSources } from './scripts.js';
export type { ScriptName } from './scripts.js';
export { StoreError, LeaseLostError } from './errors.js';
export { DATA_FORMAT } from './boot.js';
