/** Invocation ids and partitions: which partition a new invocation lands in, and child ids. */
import type { Target } from '@latchkey/core';
import { childInvocationId } from '@latchkey/core/internal';

export { partitionFor } from '@latchkey/core/internal';

/**
 * The id of the invocation that entry `index` of an invocation starts (`childInvocationId`, shared
 * with push deployments, which derive the same ids without a store).
 */
export function childId(
  partitions: number,
  parentSeed: string,
  index: number,
  target: Target,
  idempotencyKey?: string,
): string {
  return childInvocationId(partitions, parentSeed, index, target, idempotencyKey);
}
