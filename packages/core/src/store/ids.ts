/**
 * Invocation ids of a partitioned store (the Redis store's, and what a push deployment computes
 * for the invocations its handlers start): `inv_<pp><random>`, `pp` the partition in base 36.
 * Pure functions: the engine and a deployment without any store derive the same child ids.
 */
import { deriveSecret } from '../context/secrets.js';
import type { Target } from './invocation.js';

/** FNV-1a, 32 bit. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Partition of a keyed target: every invocation of one object key lands in one partition. */
export function partitionOf(partitions: number, ...parts: string[]): number {
  return fnv1a(parts.join('\u0000')) % partitions;
}

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Makes an invocation id `inv_<pp><random>`; `pp` is the partition in base 36. */
export function newInvocationId(partition: number, random: Uint8Array): string {
  let s = '';
  for (const b of random) s += ALPHABET[b % 62];
  return `inv_${partition.toString(36).padStart(2, '0')}${s}`;
}

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
export function childInvocationId(
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
