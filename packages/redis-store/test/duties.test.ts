/**
 * The partition assignment of the duties (`src/duties.ts`): every process computes the same one
 * from the same live set, each holds at most ceil(partitions / live), and a process joining or
 * leaving moves few partitions.
 */
import { describe, expect, it } from 'vitest';
import { assignPartitions } from '../src/duties.js';

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `host:${1000 + i}:ab${i}`);

function counts(owners: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const o of owners) m.set(o, (m.get(o) ?? 0) + 1);
  return m;
}

describe('assignPartitions', () => {
  it.each([
    [16, 1],
    [16, 3],
    [16, 4],
    [16, 16],
    [16, 50],
    [128, 7],
  ])(
    '%i partitions over %i processes: every partition owned, none above its fair share',
    (p, n) => {
      const live = ids(n);
      const owners = assignPartitions(p, live);
      expect(owners).toHaveLength(p);
      for (const o of owners) expect(live).toContain(o);
      const cap = Math.ceil(p / n);
      for (const c of counts(owners).values()) expect(c).toBeLessThanOrEqual(cap);
      expect(counts(owners).size).toBe(Math.min(p, n));
    },
  );

  it('depends only on the set of live ids (order and duplicates do not matter)', () => {
    const live = ids(5);
    const a = assignPartitions(16, live);
    expect(assignPartitions(16, [...live].reverse())).toEqual(a);
    expect(assignPartitions(16, [...live, live[2]!])).toEqual(a);
  });

  it('moves few partitions when a process joins or leaves', () => {
    const live = ids(4);
    const before = assignPartitions(64, live);
    const joined = assignPartitions(64, [...live, 'host:2000:new']);
    const moved = before.filter((o, p) => joined[p] !== o).length;
    // The newcomer takes about its share (64 / 5), and little else moves.
    expect(counts(joined).get('host:2000:new')).toBeGreaterThanOrEqual(10);
    expect(moved).toBeLessThanOrEqual(24);
    const left = assignPartitions(64, live.slice(1));
    const kept = before.filter((o, p) => o !== live[0] && left[p] === o).length;
    expect(kept).toBeGreaterThanOrEqual(40);
  });

  it('has no owners without live processes', () => {
    expect(assignPartitions(16, [])).toEqual([]);
  });
});
