/**
 * The admin listing's shared rules (`store/listing.ts`): cursors round-trip, belong to their
 * order, and anything else is refused; the order and filters every store applies.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeKeyCursor,
  decodeListCursor,
  encodeKeyCursor,
  encodeListCursor,
  listSortField,
  matchesQuery,
  positionBefore,
  type InvocationSummary,
} from '../src/store/listing.js';

describe('list cursors', () => {
  it('round-trip a position in their own order only', () => {
    const pos = { at: 1764800000123, id: 'inv_0aB3xYz9AAAAAAAAAAAAAA' };
    const c = encodeListCursor('createdAt', pos);
    expect(c).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeListCursor(c, 'createdAt')).toEqual(pos);
    expect(decodeListCursor(c, 'modifiedAt')).toBeUndefined();
    expect(decodeListCursor(encodeListCursor('modifiedAt', pos), 'modifiedAt')).toEqual(pos);
  });

  it('refuses what is not a cursor', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64url');
    for (const bad of [
      '',
      '!!!',
      'A'.repeat(300),
      b64('c.x.inv_1'),
      b64('c.1.'),
      b64('c.1.inv 1'),
      b64('x.1.inv_1'),
      b64(`c.${'9'.repeat(17)}.inv_1`),
      b64('c.99999999999999999.inv_1'),
    ]) {
      expect(decodeListCursor(bad, 'createdAt'), bad).toBeUndefined();
    }
  });

  it('round-trip keys, any well-formed Unicode, up to 1,024 characters of 4 bytes', () => {
    for (const key of ['k', 'a b/é:{x}', '\uFFFD', '😀'.repeat(512), 'x'.repeat(1024)]) {
      expect(decodeKeyCursor(encodeKeyCursor(key))).toBe(key);
    }
    expect(decodeKeyCursor(Buffer.from([0x6b, 0x2e, 0xff]).toString('base64url'))).toBeUndefined();
    expect(decodeKeyCursor(Buffer.from('q.k').toString('base64url'))).toBeUndefined();
    expect(decodeKeyCursor('@@')).toBeUndefined();
  });
});

describe('order and filters', () => {
  const s: InvocationSummary = {
    id: 'inv_b',
    target: { service: 's', handler: 'h', key: 'k' },
    mode: 'exclusive',
    status: 'running',
    attempts: 0,
    createdAt: 10,
    modifiedAt: 20,
    idempotencyKey: 'i',
  };

  it('orders by modifiedAt with a status, else by createdAt; equal times by id', () => {
    expect(listSortField({ status: 'running' })).toBe('modifiedAt');
    expect(listSortField({ service: 's' })).toBe('createdAt');
    expect(positionBefore({ at: 2, id: 'a' }, { at: 1, id: 'b' }, 'desc')).toBe(true);
    expect(positionBefore({ at: 1, id: 'b' }, { at: 1, id: 'a' }, 'desc')).toBe(true);
    expect(positionBefore({ at: 1, id: 'a' }, { at: 1, id: 'b' }, 'asc')).toBe(true);
    expect(positionBefore({ at: 1, id: 'a' }, { at: 1, id: 'a' }, 'asc')).toBe(false);
  });

  it('matches every filter exactly, time bounds exclusive', () => {
    expect(matchesQuery(s, { service: 's', handler: 'h', key: 'k', idempotencyKey: 'i' })).toBe(
      true,
    );
    expect(matchesQuery(s, { status: 'paused' })).toBe(false);
    expect(matchesQuery(s, { createdAfter: 10 })).toBe(false);
    expect(matchesQuery(s, { createdAfter: 9, createdBefore: 11 })).toBe(true);
    expect(matchesQuery(s, { modifiedBefore: 20 })).toBe(false);
    expect(matchesQuery(s, { modifiedAfter: 19 })).toBe(true);
    expect(matchesQuery(s, { idempotencyKey: 'j' })).toBe(false);
  });
});
