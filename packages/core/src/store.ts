// The store interfaces, by consumer (see store/store.ts). Kept as one module to import from.
export type * from './store/invocation.js';
export type * from './store/attempt.js';
export type * from './store/store.js';
export type * from './store/events.js';
export type * from './store/listing.js';
export type * from './store/detail.js';
