/**
 * The admin API's invocation detail and actions (docs/ADMIN-API.md): `GET /invocations/{id}` (v2:
 * timeline, previews, `?full=1`), `POST /invocations/{id}/restart-as-new` and
 * `POST /invocations/bulk/{op}` with a dry run. `admin.ts` hands these routes here.
 */
import type { Metrics } from '../telemetry/metrics.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, IngressError } from '../errors.js';
import type {
  AdminStore,
  InvocationStatus,
  InvocationSummary,
  ListQuery,
  RestartResult,
} from '../store.js';
import { isControl, type Control } from './admin-ops.js';
import { detailView } from './admin-view.js';
import { readBody, type BodyBudget, type BodyLimits } from './body.js';
import { sendJson as json } from './http-base.js';
import { parseJson } from './input.js';

/** What the invocation routes need from the admin server. */
export interface InvocationRoutes {
  store: AdminStore;
  statuses: ReadonlySet<string>;
  /** Preview size of values (bytes of JSON text). */
  previewBytes: number;
  /** Default and largest `limit` of a bulk action. */
  maxBulk: number;
  limits: BodyLimits;
  budget: BodyBudget;
  maxJsonDepth: number;
  /** Counts the invocations a bulk kill ended. */
  metrics?: Metrics | undefined;
}

/** The filters of a bulk action (those of `GET /invocations`). */
export type BulkFilter = Omit<ListQuery, 'limit' | 'order' | 'cursor'>;

/** The operations a bulk action applies. */
export type BulkOp = Control | 'restart-as-new';

const TEXT_FILTERS = ['service', 'handler', 'key', 'idempotencyKey'] as const;
const TIME_FILTERS = ['createdAfter', 'createdBefore', 'modifiedAfter', 'modifiedBefore'] as const;

/**
 * Serves the routes of this module; false when `segs` names none of them (the caller goes on).
 * `segs` are the decoded path segments, starting with `invocations`.
 */
export async function invocationRoute(
  r: InvocationRoutes,
  req: IncomingMessage,
  res: ServerResponse,
  segs: string[],
  query: URLSearchParams,
): Promise<boolean> {
  if (segs.length === 2 && req.method === 'GET' && segs[1] !== 'bulk') {
    const detail = await r.store.inspect(segs[1]!);
    if (!detail) throw notFound(segs[1]!);
    const full = query.get('full') === '1' || query.get('full') === 'true';
    json(res, 200, detailView(detail, { previewBytes: r.previewBytes, full }));
    return true;
  }
  if (
    segs.length === 3 &&
    segs[1] !== 'bulk' &&
    segs[2] === 'restart-as-new' &&
    req.method === 'POST'
  ) {
    const body = await readObject(r, req, ['keepPrefix']);
    const keepPrefix = body['keepPrefix'] ?? 0;
    if (!Number.isSafeInteger(keepPrefix) || (keepPrefix as number) < 0) {
      throw new IngressError(
        400,
        ErrorCode.INVALID_PREFIX,
        'keepPrefix must be a whole number, at least 0',
      );
    }
    const id = segs[1]!;
    const done = await r.store.restartAsNew(id, { keepPrefix: keepPrefix as number });
    if (!done.ok) throw restartRefused(id, done);
    json(res, 200, { invocationId: done.invocationId, restartedFrom: id });
    return true;
  }
  if (segs.length === 3 && segs[1] === 'bulk' && req.method === 'POST') {
    const op = segs[2]!;
    if (!isControl(op) && op !== 'restart-as-new') {
      throw new IngressError(404, ErrorCode.NOT_FOUND, `unknown bulk operation ${op.slice(0, 64)}`);
    }
    const filter = parseBulkFilter(query, r.statuses);
    const body = await readObject(r, req, ['dryRun', 'limit']);
    const dryRun = body['dryRun'] ?? false;
    const limit = body['limit'] ?? r.maxBulk;
    if (typeof dryRun !== 'boolean') throw badBody('dryRun must be true or false');
    if (!Number.isSafeInteger(limit) || (limit as number) < 1 || (limit as number) > r.maxBulk) {
      throw badBody(`limit must be a whole number from 1 to ${r.maxBulk}`);
    }
    json(res, 200, await bulk(r, op, filter, limit as number, dryRun));
    return true;
  }
  return false;
}

/** The invocations a bulk action touches: pages of the store's indexed listing, up to `limit`. */
export async function matchBulk(
  store: AdminStore,
  f: BulkFilter,
  limit: number,
): Promise<InvocationSummary[]> {
  const found: InvocationSummary[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({
      ...f,
      order: 'asc',
      limit: Math.min(1000, limit - found.length),
      ...(cursor !== undefined ? { cursor } : {}),
    });
    found.push(...page.invocations);
    cursor = page.nextCursor;
  } while (cursor !== undefined && found.length < limit);
  return found.slice(0, limit);
}

/** Applies `op` to every matching invocation (or, in a dry run, only lists them). */
async function bulk(
  r: InvocationRoutes,
  op: BulkOp,
  filter: BulkFilter,
  limit: number,
  dryRun: boolean,
): Promise<{ dryRun: boolean; matched: number; applied: string[]; failed: unknown[] }> {
  const store = r.store;
  const matched = await matchBulk(store, filter, limit);
  const applied: string[] = [];
  const failed: { id: string; code: ErrorCode; message: string }[] = [];
  for (const inv of matched) {
    if (dryRun) {
      applied.push(inv.id);
      continue;
    }
    try {
      if (op === 'restart-as-new') {
        const done = await store.restartAsNew(inv.id);
        if (!done.ok) throw restartRefused(inv.id, done);
      } else if (!(await store[op](inv.id))) {
        const message = `cannot ${op} invocation ${inv.id} in status ${inv.status}`;
        throw new IngressError(409, ErrorCode.CONFLICT, message);
      }
      if (op === 'kill') r.metrics?.ended(inv.target.service, inv.target.handler, 'killed');
      applied.push(inv.id);
    } catch (e) {
      if (!(e instanceof IngressError)) throw e;
      failed.push({ id: inv.id, code: e.kind, message: e.message });
    }
  }
  return { dryRun, matched: matched.length, applied, failed };
}

/** The filters of a bulk action from its query: at least one, each well-formed. */
export function parseBulkFilter(query: URLSearchParams, statuses: ReadonlySet<string>): BulkFilter {
  const known = new Set<string>(['status', ...TEXT_FILTERS, ...TIME_FILTERS]);
  const f: BulkFilter = {};
  for (const name of new Set(query.keys())) {
    if (!known.has(name)) throw badFilter(`unknown filter ${name.slice(0, 64)}`);
    if (query.getAll(name).length > 1) throw badFilter(`filter ${name.slice(0, 64)} given twice`);
  }
  const status = query.get('status');
  if (status !== null) {
    if (!statuses.has(status)) {
      throw new IngressError(
        400,
        ErrorCode.INVALID_STATUS,
        `unknown status ${status.slice(0, 64)}`,
      );
    }
    f.status = status as InvocationStatus;
  }
  for (const name of TEXT_FILTERS) {
    const v = query.get(name);
    if (v === null) continue;
    if (v === '' || v.length > 1024)
      throw badFilter(`filter ${name} must be 1 to 1,024 characters`);
    f[name] = v;
  }
  for (const name of TIME_FILTERS) {
    const v = query.get(name);
    if (v === null) continue;
    const n = Number(v);
    if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(n)) {
      throw badFilter(`filter ${name} must be a time in milliseconds since the epoch`);
    }
    f[name] = n;
  }
  for (const name of ['handler', 'key', 'idempotencyKey'] as const) {
    if (f[name] !== undefined && f.service === undefined) {
      throw badFilter(`filter ${name} needs service`);
    }
  }
  if (Object.keys(f).length === 0) {
    throw badFilter('a bulk action needs at least one filter (status, service, ...)');
  }
  return f;
}

/** An optional JSON object body with only the fields `allowed` (empty body: `{}`). */
async function readObject(
  r: InvocationRoutes,
  req: IncomingMessage,
  allowed: string[],
): Promise<Record<string, unknown>> {
  const text = (await readBody(req, r.limits, r.budget)).toString('utf8');
  if (text.trim() === '') return {};
  const ctype = String(req.headers['content-type'] ?? '');
  if (!/^application\/json\s*(;|$)/i.test(ctype)) {
    throw new IngressError(
      415,
      ErrorCode.UNSUPPORTED_CONTENT_TYPE,
      'send the body as application/json',
    );
  }
  const body = parseJson(text, r.maxJsonDepth);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badBody('the body must be a JSON object');
  }
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k))
      throw badBody(`unknown field ${k.slice(0, 64)} (allowed: ${allowed.join(', ')})`);
  }
  return body as Record<string, unknown>;
}

/** The admin answer to a refused restart. */
function restartRefused(id: string, r: Extract<RestartResult, { ok: false }>): IngressError {
  switch (r.reason) {
    case 'gone':
      return notFound(id);
    case 'not-completed':
      return new IngressError(409, ErrorCode.CONFLICT, r.message);
    case 'workflow':
      return new IngressError(409, ErrorCode.WORKFLOW_ALREADY_INVOKED, r.message);
    case 'prefix':
      return new IngressError(400, ErrorCode.INVALID_PREFIX, r.message);
  }
}

function notFound(id: string): IngressError {
  return new IngressError(404, ErrorCode.NOT_FOUND, `invocation ${id.slice(0, 256)} not found`);
}

function badFilter(message: string): IngressError {
  return new IngressError(400, ErrorCode.INVALID_FILTER, message);
}

function badBody(message: string): IngressError {
  return new IngressError(400, ErrorCode.INVALID_BODY, message);
}
