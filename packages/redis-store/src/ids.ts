/** Invocation ids and partitions: which partition a new invocation lands in, and child ids. */
import type { Target } from '@latchkey/core';
import { deriveSecret } from '@latchkey/core/internal';
import { newInvocationId, partitionOf } from './keys.js';

/**
 * The partition of a target: an object or workflow key's own; for a service, the idempotency
 * key's (so duplicates meet), else the one `randomByte` picks.
 */
export function partitionFor(
  partitions: number,
  target: Target,
  idempotencyKey: string | undefined,
  randomByte: number,
): number {
  const P = partitions;
  if (target.key !== undefined) return partitionOf(P, target.service, target.key);
  if (idempotencyKey !== undefined && idempotencyKey !== '') {
    return partitionOf(P, target.service, target.handler, idempotencyKey);
  }
  return randomByte % P;
}

/**
 * The id of the invocation that entry `index` of an invocation starts: the same on every replay,
 * derived from the parent's secret seed, so knowing the parent's id tells nobody its children's.
 */
export function childId(
  partitions: number,
  parentSeed: string,
  index: number,
  target: Target,
  idempotencyKey?: string,
): string {
  const digest = deriveSecret(parentSeed, `child:${index}`);
  return newInvocationId(
    partitionFor(partitions, target, idempotencyKey, digest[0]!),
    digest.subarray(1, 23),
  );
}
