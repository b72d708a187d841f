/**
 * The admin API's listing of invocations and of the keys of objects and workflows, as every store
 * answers it: the query, the page, the summaries, and the rules both stores share (the order, the
 * cursor's format, the filters' meaning). A store answers from indexes; these rules say what.
 */
import type { SerializedError } from '../errors.js';
import type { Completion } from '../journal/entry.js';
import type { InvocationStatus, Target, TargetMode } from './invocation.js';

/** Every status an invocation may have, in lifecycle order. */
export const INVOCATION_STATUSES: readonly InvocationStatus[] = [
  'delayed',
  'queued',
  'ready',
  'running',
  'suspended',
  'backing-off',
  'paused',
  'completed',
];

/** The most invocations (or keys) one page may hold. */
export const LIST_LIMIT_MAX = 1000;
/** How many invocations (or keys) a page holds when the query does not say. */
export const LIST_LIMIT_DEFAULT = 100;

/**
 * Filters, order and position of a page of invocations (`AdminStore.list`). Every filter is an
 * exact match and they combine with AND; time bounds are exclusive (ms since the epoch, the
 * store's clock). `handler`, `key` and `idempotencyKey` need `service`.
 */
export interface ListQuery {
  status?: InvocationStatus;
  service?: string;
  handler?: string;
  key?: string;
  idempotencyKey?: string;
  createdAfter?: number;
  createdBefore?: number;
  modifiedAfter?: number;
  modifiedBefore?: number;
  /** At most this many (default {@link LIST_LIMIT_DEFAULT}, at most {@link LIST_LIMIT_MAX}). */
  limit?: number;
  /** `desc` (default): newest first; `asc`: oldest first (see {@link listSortField}). */
  order?: 'asc' | 'desc';
  /** The `nextCursor` of the previous page of the same query. */
  cursor?: string;
}

/** What the admin API lists of an invocation. */
export interface InvocationSummary {
  id: string;
  target: Target;
  mode: TargetMode;
  status: InvocationStatus;
  /** Attempts that failed (retryable errors) or were lost with their workers so far. */
  attempts: number;
  createdAt: number;
  /** When its status last changed. */
  modifiedAt: number;
  idempotencyKey?: string;
  /** When a `backing-off` invocation is retried. */
  nextRetryAt?: number;
  lastFailure?: SerializedError;
}

/** A page of invocations; `nextCursor` is absent on the last page. */
export interface ListPage {
  invocations: InvocationSummary[];
  /**
   * Where the next page starts (opaque). A page may hold fewer than `limit` invocations and still
   * have a next one (a store bounds the work of one page).
   */
  nextCursor?: string;
}

/** How many invocations a store holds, by status and by service (`AdminStore.counts`). */
export interface InvocationCounts {
  total: number;
  byStatus: Partial<Record<InvocationStatus, number>>;
  byService: Record<string, number>;
}

/** A key of an object or workflow that has state, a holder or an inbox. */
export interface KeyInfo {
  key: string;
  /** Invocations in the key's inbox, the one at its head included. */
  inbox: number;
  /** The invocation holding the key (an exclusive handler or a workflow run), if any. */
  holder?: string;
}

/** A page of keys (in byte order of their UTF-8); `nextCursor` is absent on the last page. */
export interface KeyPage {
  keys: KeyInfo[];
  nextCursor?: string;
}

/** The invocations waiting for a key, in the order they will run, after its holder. */
export interface KeyQueue {
  holder?: string;
  queue: InvocationSummary[];
}

/** A workflow run's durable promise: pending, or its completion. */
export interface PromiseInfo {
  name: string;
  /** Absent while pending. */
  completion?: Completion;
}

/**
 * The order of a page: by `modifiedAt` when the query names a status (the time an invocation
 * entered it), else by `createdAt`; equal times by id.
 */
export function listSortField(q: ListQuery): 'createdAt' | 'modifiedAt' {
  return q.status !== undefined ? 'modifiedAt' : 'createdAt';
}

/** A position in the order of a page: the sort time and id of an invocation. */
export interface ListPosition {
  at: number;
  id: string;
}

const ID_RE = /^[A-Za-z0-9_]{1,128}$/;

/** The opaque cursor of a position in the order `field`. */
export function encodeListCursor(field: 'createdAt' | 'modifiedAt', pos: ListPosition): string {
  return Buffer.from(`${field === 'createdAt' ? 'c' : 'm'}.${pos.at}.${pos.id}`).toString(
    'base64url',
  );
}

/**
 * The position a cursor names, or undefined when it is not a cursor of a page in order `field`
 * (malformed, or made for a query with another order).
 */
export function decodeListCursor(
  cursor: string,
  field: 'createdAt' | 'modifiedAt',
): ListPosition | undefined {
  if (cursor.length === 0 || cursor.length > 256 || !/^[A-Za-z0-9_-]+$/.test(cursor))
    return undefined;
  const m = /^([cm])\.(\d{1,16})\.(.+)$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  if (!m || m[1] !== (field === 'createdAt' ? 'c' : 'm') || !ID_RE.test(m[3]!)) return undefined;
  const at = Number(m[2]);
  return Number.isSafeInteger(at) ? { at, id: m[3]! } : undefined;
}

/** The opaque cursor of a page of keys that ends at `key`. */
export function encodeKeyCursor(key: string): string {
  return Buffer.from(`k.${key}`, 'utf8').toString('base64url');
}

/** The key a keys cursor names, or undefined when malformed. */
export function decodeKeyCursor(cursor: string): string | undefined {
  // A key of 1,024 characters is at most 4 KiB of UTF-8: its cursor, under 6 KiB.
  if (cursor.length === 0 || cursor.length > 6000 || !/^[A-Za-z0-9_-]+$/.test(cursor))
    return undefined;
  const bytes = Buffer.from(cursor, 'base64url');
  const text = bytes.toString('utf8');
  // Well-formed UTF-8 only: the text encodes back to exactly those bytes.
  if (!text.startsWith('k.') || text.length < 3 || !Buffer.from(text, 'utf8').equals(bytes))
    return undefined;
  return text.slice(2);
}

/** Whether position `a` comes before `b` in a page's order. */
export function positionBefore(a: ListPosition, b: ListPosition, order: 'asc' | 'desc'): boolean {
  if (a.at !== b.at) return order === 'asc' ? a.at < b.at : a.at > b.at;
  return order === 'asc' ? a.id < b.id : a.id > b.id;
}

/** Whether an invocation matches every filter of a query (not its position). */
export function matchesQuery(s: InvocationSummary, q: ListQuery): boolean {
  const t = s.target;
  if (q.status !== undefined && s.status !== q.status) return false;
  if (q.service !== undefined && t.service !== q.service) return false;
  if (q.handler !== undefined && t.handler !== q.handler) return false;
  if (q.key !== undefined && t.key !== q.key) return false;
  if (q.idempotencyKey !== undefined && s.idempotencyKey !== q.idempotencyKey) return false;
  if (q.createdAfter !== undefined && !(s.createdAt > q.createdAfter)) return false;
  if (q.createdBefore !== undefined && !(s.createdAt < q.createdBefore)) return false;
  if (q.modifiedAfter !== undefined && !(s.modifiedAt > q.modifiedAfter)) return false;
  if (q.modifiedBefore !== undefined && !(s.modifiedAt < q.modifiedBefore)) return false;
  return true;
}
