/**
 * Merging the partitions' shares of an admin list page (`src/merge.ts`): in order, at most
 * `limit`, never past the earliest partition that stopped short, and a next position exactly when
 * something may follow.
 */
import { describe, expect, it } from 'vitest';
import type { Share } from '../src/calls-index.js';
import { mergeShares } from '../src/merge.js';

const asc = (a: number, b: number): boolean => a < b;
const share = (items: number[], exhausted = true, frontier?: number): Share<number> => ({
  items,
  frontier,
  exhausted,
});

describe('mergeShares', () => {
  it('merges in order and has no next position when every partition ran out', () => {
    expect(mergeShares([share([1, 4]), share([2, 3])], asc, 10)).toEqual({
      page: [1, 2, 3, 4],
      next: undefined,
    });
  });

  it('cuts at the limit and continues after the last item', () => {
    expect(mergeShares([share([1, 4]), share([2, 3])], asc, 3)).toEqual({
      page: [1, 2, 3],
      next: 3,
    });
  });

  it('continues after a full page when a partition may hold more', () => {
    expect(mergeShares([share([1, 2], false), share([3])], asc, 2)).toEqual({
      page: [1, 2],
      next: 2,
    });
  });

  it('ends exactly when a full page used up every partition', () => {
    expect(mergeShares([share([1]), share([2])], asc, 2)).toEqual({
      page: [1, 2],
      next: undefined,
    });
  });

  it('never goes past the earliest frontier, and continues from it', () => {
    // Partition 0 examined up to 5 without finding more; partition 1 found 6 and 7 beyond it.
    expect(mergeShares([share([2], false, 5), share([3, 6, 7])], asc, 10)).toEqual({
      page: [2, 3],
      next: 5,
    });
    // An empty page that stopped short still moves on.
    expect(mergeShares([share([], false, 9), share([], false, 4)], asc, 10)).toEqual({
      page: [],
      next: 4,
    });
  });
});
