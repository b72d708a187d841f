/** The filters of `inv ls` and of bulk actions: times given on the command line, the query. */
import { describe, expect, it } from 'vitest';
import { filterQuery, parseTime } from '../src/filters.js';
import { formatCounts } from '../src/format/invocations.js';
import { PLAIN } from '../src/output.js';

const NOW = Date.UTC(2026, 11, 4, 8, 30, 0, 0);

describe('parseTime', () => {
  it.each([
    ['1764800000000', 1764800000000],
    ['2026-12-04T08:00:00Z', Date.UTC(2026, 11, 4, 8, 0, 0)],
    ['90s', NOW - 90_000],
    ['10m', NOW - 600_000],
    ['2h', NOW - 7_200_000],
    ['1.5d', NOW - 129_600_000],
    ['250ms', NOW - 250],
  ])('%s → %d', (text, t) => {
    expect(parseTime(text, NOW)).toBe(t);
  });

  it.each([['yesterday'], ['10 minutes'], ['-5m'], ['']])('%o is refused', (text) => {
    expect(() => parseTime(text, NOW)).toThrow(/expected epoch ms, an ISO 8601 time/);
  });
});

describe('filterQuery', () => {
  it('names every filter as the admin API does', () => {
    expect(
      filterQuery({
        status: 'backing-off',
        service: 'checkout',
        handler: 'run',
        key: 'o1',
        idempotencyKey: 'k',
        createdAfter: 1,
        createdBefore: 2,
        modifiedAfter: 3,
        modifiedBefore: 4,
      }),
    ).toEqual({
      status: 'backing-off',
      service: 'checkout',
      handler: 'run',
      key: 'o1',
      idempotencyKey: 'k',
      createdAfter: '1',
      createdBefore: '2',
      modifiedAfter: '3',
      modifiedBefore: '4',
    });
    expect(filterQuery({})).toEqual({});
  });

  it.each([['handler'], ['key'], ['idempotencyKey']] as const)(
    '%s without service is a usage error',
    (name) => {
      expect(() => filterQuery({ [name]: 'x' })).toThrow(/needs --service/);
    },
  );
});

describe('formatCounts', () => {
  it('the total, statuses in lifecycle order, services by name', () => {
    const out = formatCounts(
      {
        total: 5,
        byStatus: { completed: 3, running: 1, 'backing-off': 1 },
        byService: { b: 2, a: 3 },
      },
      PLAIN,
    );
    expect(out).toBe(
      [
        'total 5',
        '',
        'STATUS       COUNT',
        'running      1',
        'backing-off  1',
        'completed    3',
        '',
        'SERVICE  COUNT',
        'a        3',
        'b        2',
        '',
      ].join('\n'),
    );
  });
});
