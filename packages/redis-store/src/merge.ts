/**
 * Merging the partitions' shares of a page (a list page, a page of keys) into one page in order.
 * Each partition walks its own index from the same position and returns at most `limit` matches;
 * one that stopped early (its examination limit) returns where it stopped, its frontier, and the
 * page may not go past the earliest frontier (what lies beyond it there was not examined).
 */
import type { Share } from './calls-index.js';

/** A merged page: its items in order, and the position the next page starts after (if any). */
export interface Merged<T> {
  page: T[];
  next: T | undefined;
}

/**
 * Merges shares in the order `before` defines (a strict "comes before"): the first `limit` items,
 * none past the earliest frontier. `next` is the last item of a full page when anything may
 * follow, or the earliest frontier when the page stopped there; undefined on the last page.
 */
export function mergeShares<T>(
  shares: Share<T>[],
  before: (a: T, b: T) => boolean,
  limit: number,
): Merged<T> {
  const all = shares.flatMap((s) => s.items).sort((a, b) => (before(a, b) ? -1 : 1));
  let bound: T | undefined;
  for (const s of shares) {
    if (s.frontier !== undefined && (bound === undefined || before(s.frontier, bound)))
      bound = s.frontier;
  }
  const page: T[] = [];
  for (const item of all) {
    if (page.length === limit || (bound !== undefined && !before(item, bound))) break;
    page.push(item);
  }
  const more = shares.some((s) => !s.exhausted);
  if (page.length === limit && (more || all.length > limit)) return { page, next: page.at(-1) };
  if (bound !== undefined) return { page, next: bound };
  return { page, next: undefined };
}
