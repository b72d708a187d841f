/**
 * The in-memory store's admin views: the listing of invocations and their counts, the keys of an
 * object or workflow, a key's queue and a workflow's promises. By going over every record (a
 * test double holds few); the order, cursors and filters are the ones every store shares
 * (`store/listing.ts`).
 */
import { DurableError, ErrorCode } from '../../errors.js';
import { INVOCATION_STATUSES } from '../../store/listing.js';
import {
  LIST_LIMIT_DEFAULT,
  LIST_LIMIT_MAX,
  decodeKeyCursor,
  decodeListCursor,
  encodeKeyCursor,
  encodeListCursor,
  listSortField,
  matchesQuery,
  positionBefore,
  type InvocationCounts,
  type InvocationSummary,
  type KeyInfo,
  type KeyPage,
  type KeyQueue,
  type ListPage,
  type ListQuery,
  type PromiseInfo,
} from '../../store/listing.js';
import type { Engine } from './engine.js';
import { stored, type Rec } from './records.js';

/** What the admin API lists of a record. */
export function summaryOf(rec: Rec): InvocationSummary {
  const s: InvocationSummary = {
    id: rec.id,
    target: { ...rec.target },
    mode: rec.mode,
    status: rec.status,
    attempts: rec.failures,
    createdAt: rec.createdAt,
    modifiedAt: rec.modifiedAt,
  };
  if (rec.idempotencyKey !== undefined) s.idempotencyKey = rec.idempotencyKey;
  if (rec.status === 'backing-off' && rec.retryAt !== undefined) s.nextRetryAt = rec.retryAt;
  if (rec.lastFailure) s.lastFailure = rec.lastFailure;
  return s;
}

function pageLimit(limit: number | undefined): number {
  return Math.min(Math.max(1, Math.floor(limit ?? LIST_LIMIT_DEFAULT)), LIST_LIMIT_MAX);
}

function invalidCursor(): DurableError {
  return new DurableError('the cursor is not one of this query', ErrorCode.INVALID_CURSOR, {
    code: 400,
  });
}

/** A page of invocations (see `AdminStore.list`). */
export function listPage(engine: Engine, q: ListQuery): ListPage {
  const limit = pageLimit(q.limit);
  const order = q.order ?? 'desc';
  const field = listSortField(q);
  const pos = q.cursor !== undefined ? decodeListCursor(q.cursor, field) : undefined;
  if (q.cursor !== undefined && !pos) throw invalidCursor();
  const at = (s: InvocationSummary) => ({ at: s[field], id: s.id });
  const all = [...engine.recs.values()]
    .map(summaryOf)
    .filter((s) => matchesQuery(s, q) && (!pos || positionBefore(pos, at(s), order)))
    .sort((a, b) => (positionBefore(at(a), at(b), order) ? -1 : 1));
  const invocations = all.slice(0, limit);
  const last = invocations.at(-1);
  if (all.length > limit && last) {
    return { invocations, nextCursor: encodeListCursor(field, at(last)) };
  }
  return { invocations };
}

/** How many invocations there are, by status and by service (see `AdminStore.counts`). */
export function countsOf(engine: Engine, filter: { service?: string } = {}): InvocationCounts {
  const c: InvocationCounts = { total: 0, byStatus: {}, byService: {} };
  for (const rec of engine.recs.values()) {
    const svc = rec.target.service;
    if (filter.service !== undefined && svc !== filter.service) continue;
    c.total++;
    c.byStatus[rec.status] = (c.byStatus[rec.status] ?? 0) + 1;
    c.byService[svc] = (c.byService[svc] ?? 0) + 1;
  }
  // The same key order as a store that counts status by status.
  const byStatus: InvocationCounts['byStatus'] = {};
  for (const st of INVOCATION_STATUSES)
    if (c.byStatus[st] !== undefined) byStatus[st] = c.byStatus[st];
  c.byStatus = byStatus;
  return c;
}

function utf8Before(a: string, b: string): boolean {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')) < 0;
}

/** The invocation holding a key: its inbox's head once it has started. */
function holderOf(engine: Engine, inbox: string[]): string | undefined {
  const head = engine.recs.get(inbox[0] ?? '');
  return head?.started && head.status !== 'completed' ? head.id : undefined;
}

/** A page of a service's keys with state, a holder or an inbox (see `AdminStore.listKeys`). */
export function keysPage(
  engine: Engine,
  service: string,
  page: { cursor?: string; limit?: number } = {},
): KeyPage {
  const limit = pageLimit(page.limit);
  const after = page.cursor !== undefined ? decodeKeyCursor(page.cursor) : undefined;
  if (page.cursor !== undefined && after === undefined) throw invalidCursor();
  const all: KeyInfo[] = [];
  for (const [key, slot] of engine.slotsOf(service)) {
    if (slot.state.size === 0 && slot.inbox.length === 0) continue;
    if (after !== undefined && !utf8Before(after, key)) continue;
    const info: KeyInfo = { key, inbox: slot.inbox.length };
    const holder = holderOf(engine, slot.inbox);
    if (holder !== undefined) info.holder = holder;
    all.push(info);
  }
  all.sort((a, b) => (utf8Before(a.key, b.key) ? -1 : 1));
  const keys = all.slice(0, limit);
  const last = keys.at(-1);
  return all.length > limit && last ? { keys, nextCursor: encodeKeyCursor(last.key) } : { keys };
}

/** A key's holder and the invocations queued behind it (see `AdminStore.keyQueue`). */
export function queueOf(engine: Engine, service: string, key: string, limit = 1000): KeyQueue {
  const inbox = engine.slot(service, key).inbox;
  const holder = holderOf(engine, inbox);
  const queue = inbox
    .filter((id) => id !== holder)
    .slice(0, limit)
    .flatMap((id) => {
      const rec = engine.recs.get(id);
      return rec ? [summaryOf(rec)] : [];
    });
  return holder !== undefined ? { holder, queue } : { queue };
}

/** A workflow run's promises, by name (see `AdminStore.promises`). */
export function promisesOf(engine: Engine, workflow: string, key: string): PromiseInfo[] {
  const slot = engine.slot(workflow, key);
  const names = new Set([...slot.promises.keys(), ...slot.promiseWaiters.keys()]);
  return [...names].sort().map((name) => {
    const c = slot.promises.get(name);
    return c ? { name, completion: stored(c) } : { name };
  });
}
