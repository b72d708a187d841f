/**
 * Invocation ids and partitions: which partition a new invocation lands in, and child ids (the
 * id entry `index` of an invocation gives the invocation it starts). Defined in core's
 * `store/ids.ts`, shared with push deployments, which derive the same ids without a store.
 */
export { childInvocationId as childId, partitionFor } from '@latchkey/core/internal';
