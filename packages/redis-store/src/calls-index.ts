/**
 * The typed calls of the admin indexes' scripts: a partition's share of a list page
 * (`listIndex`), of a page of keys (`listKeys`), the removal of expired index entries
 * (`expireIndexes`) and clearing a key's state (`clearState`). As in `calls.ts`: named fields in,
 * in the order the script's header documents, and the reply decoded once here.
 */
import type { ChainableCommander } from 'ioredis';
import type { ScriptedRedis } from './scripts.js';

type Queued<N extends string> = Record<N, (...args: (string | number)[]) => void>;

/** A hash field checked against a value (exact) or a range (exclusive bounds). */
export type ExactFilter = [field: string, value: string];
export type RangeFilter = [field: string, low: number | undefined, high: number | undefined];

/** One partition's walk of an index for a list page. */
export interface IndexWalk {
  part: string;
  order: 'asc' | 'desc';
  /** ZRANGE BYSCORE bounds, in walking order. */
  start: string;
  end: string;
  /** The cursor's position, whose ties at or before it are skipped. */
  tie: { at: number; id: string } | undefined;
  limit: number;
  /** Most ids examined. */
  most: number;
  exact: ExactFilter[];
  ranges: RangeFilter[];
}

/** A partition's share of a page: its matches, where it stopped, and whether it ran out. */
export interface Share<T> {
  items: T[];
  frontier: T | undefined;
  exhausted: boolean;
}

/** An index entry: an invocation id and its score (created or modified time). */
export interface Scored {
  id: string;
  at: number;
}

/** Queues one partition's walk on a pipeline; decode its result with {@link decodeWalk}. */
export function queueWalk(pipe: ChainableCommander, index: string, w: IndexWalk): void {
  const args: (string | number)[] = [w.part, w.order, w.start, w.end];
  args.push(w.tie ? w.tie.at : '', w.tie ? w.tie.id : '', w.limit, w.most, w.exact.length);
  for (const [f, v] of w.exact) args.push(f, v);
  args.push(w.ranges.length);
  for (const [f, lo, hi] of w.ranges) args.push(f, lo ?? '', hi ?? '');
  (pipe as unknown as Queued<'listIndex'>).listIndex(index, ...args);
}

export function decodeWalk(res: unknown): Share<Scored> {
  const [flat, fScore, fId, exhausted] = res as [string[], string, string, number];
  const items: Scored[] = [];
  for (let i = 0; i < flat.length; i += 2) items.push({ id: flat[i]!, at: Number(flat[i + 1]) });
  const frontier = fId !== '' ? { id: fId, at: Number(fScore) } : undefined;
  return { items, frontier, exhausted: exhausted === 1 };
}

/** A key of an object or workflow with its inbox length and holder ('' for none). */
export interface KeyRow {
  key: string;
  inbox: number;
  holder: string;
}

/** Queues one partition's share of a page of keys; decode with {@link decodeKeys}. */
export function queueKeys(
  pipe: ChainableCommander,
  index: string,
  a: { part: string; service: string; start: string; limit: number; most: number },
): void {
  (pipe as unknown as Queued<'listKeys'>).listKeys(
    index,
    a.part,
    a.service,
    a.start,
    a.limit,
    a.most,
  );
}

export function decodeKeys(res: unknown): Share<KeyRow> {
  const [flat, frontier, exhausted] = res as [(string | number)[], string, number];
  const items: KeyRow[] = [];
  for (let i = 0; i < flat.length; i += 3) {
    items.push({ key: String(flat[i]), inbox: Number(flat[i + 1]), holder: String(flat[i + 2]) });
  }
  return {
    items,
    frontier: frontier !== '' ? { key: frontier, inbox: 0, holder: '' } : undefined,
    exhausted: exhausted === 1,
  };
}

/** Removes one partition's expired index entries (at most `max`); how many it removed. */
export async function expireIndexes(
  redis: ScriptedRedis,
  expiry: string,
  a: { part: string; max: number },
): Promise<number> {
  return Number(await redis.expireIndexes(expiry, a.part, a.max));
}

/** Clears a key's state unless an exclusive invocation holds the key. */
export async function clearState(
  redis: ScriptedRedis,
  keys: { state: string; fence: string },
): Promise<{ tag: 'ok' | 'busy' }> {
  const r = (await redis.clearState(keys.state, keys.fence)) as unknown[];
  return { tag: r[0] === 'ok' ? 'ok' : 'busy' };
}
