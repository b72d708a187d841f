/**
 * The admin API's indexed listing (docs/ADMIN-API.md): `GET /invocations` with its filters, order
 * and cursor, and `GET /invocations/counts`. Every query parameter is checked here, before the
 * store is asked: an unknown, repeated or malformed one is a 400 with a precise code and changes
 * nothing. {@link parseListQuery} is the one reading of the listing's filters (bulk actions take
 * the same).
 */
import type { ServerResponse } from 'node:http';
import { ErrorCode, IngressError } from '../errors.js';
import type { InvocationStatus } from '../store/invocation.js';
import { INVOCATION_STATUSES } from '../store/listing.js';
import type { Registry } from '../runtime/registry.js';
import {
  LIST_LIMIT_DEFAULT,
  LIST_LIMIT_MAX,
  decodeListCursor,
  encodeListCursor,
  listSortField,
  positionBefore,
  type InvocationSummary,
  type ListPage,
  type ListQuery,
} from '../store/listing.js';
import type { AdminStore } from '../store/store.js';
import { sendJson } from './http-base.js';
import { checkIdempotencyKey, checkKey } from './input.js';

export const STATUSES: ReadonlySet<string> = new Set<string>(INVOCATION_STATUSES);

/** The filters of the listing (also those of bulk actions). */
const FILTERS = [
  'status',
  'service',
  'handler',
  'key',
  'idempotencyKey',
  'createdAfter',
  'createdBefore',
  'modifiedAfter',
  'modifiedBefore',
] as const;
const PAGING = ['limit', 'cursor', 'order'] as const;
const TIMES = ['createdAfter', 'createdBefore', 'modifiedAfter', 'modifiedBefore'] as const;

/** The longest service or handler name a filter may name. */
const MAX_NAME = 1024;
/** The latest time a time bound may name (ms since the epoch: the year 275760, as `Date`). */
const MAX_TIME = 8.64e15;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function bad(kind: ErrorCode, message: string): IngressError {
  return new IngressError(400, kind, message);
}

/**
 * The single values of the parameters in `allowed`: 400 `INVALID_QUERY` for any other parameter
 * or one given twice. An empty value is the same as no value.
 */
export function queryValues(
  params: URLSearchParams,
  allowed: readonly string[],
): Map<string, string> {
  const out = new Map<string, string>();
  const seen = new Set<string>();
  for (const [name, value] of params) {
    if (!allowed.includes(name))
      throw bad(ErrorCode.INVALID_QUERY, `unknown query parameter '${name.slice(0, 64)}'`);
    if (seen.has(name))
      throw bad(ErrorCode.INVALID_QUERY, `query parameter '${name}' is given more than once`);
    seen.add(name);
    if (value !== '') out.set(name, value);
  }
  return out;
}

function checkName(what: 'service' | 'handler', name: string): void {
  if (name.length > MAX_NAME || CONTROL.test(name) || LONE_SURROGATE.test(name)) {
    throw bad(
      ErrorCode.INVALID_NAME,
      `the ${what} name must be at most ${MAX_NAME} characters of well-formed Unicode without control characters`,
    );
  }
}

/** A time bound: a whole number of ms since the epoch. */
function parseTime(name: string, raw: string): number {
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!(n <= MAX_TIME))
    throw bad(
      ErrorCode.INVALID_TIME,
      `${name} must be a time in ms since the epoch (0 to 8.64e15)`,
    );
  return n;
}

/** The filters of the listing from query values (see {@link queryValues}). */
function parseFilters(v: Map<string, string>): ListQuery {
  const q: ListQuery = {};
  const status = v.get('status');
  if (status !== undefined) {
    if (!STATUSES.has(status))
      throw bad(ErrorCode.INVALID_STATUS, `unknown status '${status.slice(0, 64)}'`);
    q.status = status as InvocationStatus;
  }
  const service = v.get('service');
  if (service !== undefined) {
    checkName('service', service);
    q.service = service;
  }
  for (const dep of ['handler', 'key', 'idempotencyKey'] as const) {
    if (v.has(dep) && service === undefined)
      throw bad(ErrorCode.INVALID_QUERY, `the ${dep} filter needs a service filter`);
  }
  const handler = v.get('handler');
  if (handler !== undefined) {
    checkName('handler', handler);
    q.handler = handler;
  }
  const key = v.get('key');
  if (key !== undefined) {
    checkKey(key);
    q.key = key;
  }
  const idem = v.get('idempotencyKey');
  if (idem !== undefined) {
    checkIdempotencyKey(idem);
    q.idempotencyKey = idem;
  }
  for (const name of TIMES) {
    const raw = v.get(name);
    if (raw !== undefined) q[name] = parseTime(name, raw);
  }
  return q;
}

/**
 * The {@link ListQuery} of `GET /invocations`'s query string: filters, `limit` (1 to 1,000,
 * default 100), `order` (`desc` or `asc`) and `cursor` (a `nextCursor` of the same query). 400
 * with `INVALID_QUERY`, `INVALID_STATUS`, `INVALID_NAME`, `INVALID_KEY`,
 * `INVALID_IDEMPOTENCY_KEY`, `INVALID_TIME`, `INVALID_LIMIT`, `INVALID_ORDER` or
 * `INVALID_CURSOR` for what it cannot take.
 */
export function parseListQuery(params: URLSearchParams): ListQuery {
  const v = queryValues(params, [...FILTERS, ...PAGING]);
  const q = parseFilters(v);
  const limit = v.get('limit');
  if (limit !== undefined) {
    const n = /^\d{1,7}$/.test(limit) ? Number(limit) : NaN;
    if (!(n >= 1 && n <= LIST_LIMIT_MAX))
      throw bad(
        ErrorCode.INVALID_LIMIT,
        `limit must be a whole number from 1 to ${LIST_LIMIT_MAX}`,
      );
    q.limit = n;
  } else {
    q.limit = LIST_LIMIT_DEFAULT;
  }
  const order = v.get('order');
  if (order !== undefined) {
    if (order !== 'asc' && order !== 'desc')
      throw bad(ErrorCode.INVALID_ORDER, `order must be 'desc' or 'asc'`);
    q.order = order;
  }
  const cursor = v.get('cursor');
  if (cursor !== undefined) {
    if (!decodeListCursor(cursor, listSortField(q)))
      throw bad(
        ErrorCode.INVALID_CURSOR,
        'the cursor is not a nextCursor of this query (its status filter decides the order)',
      );
    q.cursor = cursor;
  }
  return q;
}

/**
 * A page by idempotency key without a handler, for a service this process serves whose records
 * name the invocation directly (a plain service, or an object's or workflow's key given): one
 * lookup per handler instead of a walk of the service's index. Undefined when that does not apply.
 */
async function byIdempotencyKey(
  q: ListQuery,
  store: Pick<AdminStore, 'list' | 'lookup'>,
  registry: Registry,
): Promise<ListPage | undefined> {
  const { idempotencyKey, service, key } = q;
  if (idempotencyKey === undefined || service === undefined || q.handler !== undefined)
    return undefined;
  const def = registry.service(service);
  if (!def || (def.kind !== 'service' && key === undefined)) return undefined;
  // The handlers whose record names an invocation; only those are listed (each a direct read).
  const named = (
    await Promise.all(
      Object.keys(def.handlers).map(async (handler) => {
        const ref = { service, handler, idempotencyKey, ...(key !== undefined ? { key } : {}) };
        return (await store.lookup(ref)) !== undefined ? [handler] : [];
      }),
    )
  ).flat();
  const order = q.order ?? 'desc';
  const field = listSortField(q);
  const found = (await Promise.all(named.map((handler) => store.list({ ...q, handler })))).flatMap(
    (page) => page.invocations,
  );
  const at = (s: InvocationSummary) => ({ at: s[field], id: s.id });
  found.sort((a, b) => (positionBefore(at(a), at(b), order) ? -1 : 1));
  const limit = q.limit ?? LIST_LIMIT_DEFAULT;
  const invocations = found.slice(0, limit);
  const last = invocations.at(-1);
  return found.length > limit && last
    ? { invocations, nextCursor: encodeListCursor(field, at(last)) }
    : { invocations };
}

/**
 * Answers the listing's routes: `GET /invocations` and `GET /invocations/counts`. Returns false
 * for any other request.
 */
export async function routeListing(
  method: string | undefined,
  segs: string[],
  params: URLSearchParams,
  deps: { store: Pick<AdminStore, 'list' | 'counts' | 'lookup'>; registry: Registry },
  res: ServerResponse,
): Promise<boolean> {
  if (method !== 'GET' || segs[0] !== 'invocations') return false;
  const { store, registry } = deps;
  if (segs.length === 1) {
    const q = parseListQuery(params);
    sendJson(res, 200, (await byIdempotencyKey(q, store, registry)) ?? (await store.list(q)));
    return true;
  }
  if (segs.length === 2 && segs[1] === 'counts') {
    const v = queryValues(params, ['service']);
    const service = v.get('service');
    if (service !== undefined) checkName('service', service);
    sendJson(res, 200, await store.counts(service !== undefined ? { service } : {}));
    return true;
  }
  return false;
}
