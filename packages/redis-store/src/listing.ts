/**
 * The admin API's listing of invocations and their counts, answered from the partitions' indexes
 * (`ix:*`, kept by the scripts; ARCHITECTURE.md "Indexes"), never by scanning the keyspace.
 *
 * A page: the most selective index the query allows is walked on every partition it may hold
 * entries in, for the service asked or else for every service the partition has (one pipeline of
 * `listIndex` scripts, which check the other filters against each invocation's hash, after one of
 * SMEMBERS when no service is asked), the shares are merged in order, and the page's summaries are
 * read (one pipeline of HMGET): two round trips, three without a service.
 */
import {
  INVOCATION_STATUSES,
  LIST_LIMIT_DEFAULT,
  LIST_LIMIT_MAX,
  type InvocationCounts,
  type InvocationSummary,
  type ListPage,
  type ListPosition,
  type ListQuery,
} from '@latchkey/core';
import {
  decodeListCursor,
  encodeListCursor,
  listSortField,
  matchesQuery,
  positionBefore,
} from '@latchkey/core/internal';
import {
  decodeWalk,
  queueWalk,
  type ExactFilter,
  type RangeFilter,
  type Scored,
  type Share,
} from './calls-index.js';
import { partitionBatch } from './connection.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { partitionOf, partitionOfId, type Keys } from './keys.js';
import { mergeShares } from './merge.js';
import { FILTER_FIELD as F, decodeSummary, queueSummary } from './record.js';

const STATUSES = INVOCATION_STATUSES;

/**
 * How a query is answered: the index walked (of a partition and a service), on which partitions,
 * for which service (undefined: every service the partition's `ix:svcs` names), what the hash must
 * match.
 */
interface Plan {
  index: (p: number, svc: string) => string;
  /** The index is one key's (`ix:key`): a workflow key's run is not in it (see runShare). */
  byKey: boolean;
  service: string | undefined;
  partitions: number[];
  exact: ExactFilter[];
  ranges: RangeFilter[];
  /** Exclusive bounds of the index's scores. */
  low: number | undefined;
  high: number | undefined;
}

function max(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.max(a, b);
}
function min(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/**
 * Picks the index: with a status, a service's status index (scored by the modified time); else
 * the key's or the service's index (scored by the creation time). Without a service, the index of
 * every service of a partition is walked. A handler is checked on the hash. A modified time is
 * never before the creation time, so a bound on one also bounds the other's index.
 */
function plan(k: Keys, partitions: number, q: ListQuery): Plan {
  const all = Array.from({ length: partitions }, (_, p) => p);
  const exact: ExactFilter[] = [];
  const ranges: RangeFilter[] = [];
  const svc = q.service;
  const st = q.status;
  let index: (p: number, svc: string) => string;
  let byKey = false;
  let parts = all;
  let low: number | undefined;
  let high: number | undefined;
  if (q.handler !== undefined) exact.push([F.handler, q.handler]);
  if (st !== undefined) {
    index = (p, s) => k.ixServiceStatus(p, s, st);
    if (q.key !== undefined) exact.push([F.key, q.key]);
    if (q.createdAfter !== undefined || q.createdBefore !== undefined)
      ranges.push([F.createdAt, q.createdAfter, q.createdBefore]);
    low = max(q.modifiedAfter, q.createdAfter);
    high = q.modifiedBefore;
  } else {
    if (svc !== undefined && q.key !== undefined) {
      const key = q.key;
      index = (p, s) => k.ixKey(p, s, key);
      byKey = true;
    } else {
      index = (p, s) => k.ixService(p, s);
      if (q.key !== undefined) exact.push([F.key, q.key]);
    }
    if (q.modifiedAfter !== undefined || q.modifiedBefore !== undefined)
      ranges.push([F.modifiedAt, q.modifiedAfter, q.modifiedBefore]);
    low = q.createdAfter;
    high = min(q.createdBefore, q.modifiedBefore);
  }
  // An object's or workflow's key lives in one partition.
  if (svc !== undefined && q.key !== undefined) parts = [partitionOf(partitions, svc, q.key)];
  if (q.idempotencyKey !== undefined) exact.push([F.idempotencyKey, q.idempotencyKey]);
  return { index, byKey, service: svc, partitions: parts, exact, ranges, low, high };
}

/** Lists and counts invocations from the indexes. */
export class Listing {
  private readonly ctx: StoreContext;

  constructor(ctx: StoreContext) {
    this.ctx = ctx;
  }

  async list(q: ListQuery): Promise<ListPage> {
    const limit = Math.min(Math.max(1, Math.floor(q.limit ?? LIST_LIMIT_DEFAULT)), LIST_LIMIT_MAX);
    const order = q.order ?? 'desc';
    const field = listSortField(q);
    const pos = q.cursor !== undefined ? decodeListCursor(q.cursor, field) : undefined;
    if (q.cursor !== undefined && !pos)
      throw new StoreError('the cursor is not one of this query', 'INVALID_CURSOR');
    const direct = await this.byIdempotencyKey(q);
    if (direct !== undefined) {
      const at = direct && (field === 'createdAt' ? direct.createdAt : direct.modifiedAt);
      const after = !direct || !pos || positionBefore(pos, { at: at!, id: direct.id }, order);
      return { invocations: direct && after ? [direct] : [] };
    }
    const k = this.ctx.keys;
    const pl = plan(k, this.ctx.opts.partitions, q);
    const desc = order === 'desc';
    // Start at the cursor (skipping what comes before it among equal scores) when it lies inside
    // the range; else at the range's own start.
    const open = desc ? pl.high : pl.low;
    const inside =
      open === undefined || (pos !== undefined && (desc ? pos.at < open : pos.at > open));
    const tie = pos !== undefined && inside ? pos : undefined;
    const start = tie ? String(tie.at) : open !== undefined ? `(${open}` : desc ? '+inf' : '-inf';
    const close = desc ? pl.low : pl.high;
    const end = close !== undefined ? `(${close}` : desc ? '-inf' : '+inf';
    const most = Math.max(limit, this.ctx.opts.listExamineLimit);
    const walks = partitionBatch(this.ctx.redis);
    for (const [p, svc] of await this.targets(pl.partitions, pl.service)) {
      queueWalk(walks, pl.index(p, svc), {
        part: k.part(p),
        order,
        start,
        end,
        tie,
        limit,
        most,
        exact: pl.exact,
        ranges: pl.ranges,
      });
    }
    const [walked, run] = await Promise.all([
      walks.exec(),
      pl.byKey ? this.runShare(q, pl, pos, order) : undefined,
    ]);
    const shares = (walked ?? []).map(([err, res]) => {
      if (err) throw err;
      return decodeWalk(res);
    });
    if (run) shares.push(run);
    const before = (a: Scored, b: Scored): boolean => positionBefore(a, b, order);
    const { page, next } = mergeShares(shares, before, limit);
    const invocations = (await this.summaries(page.map((s) => s.id))).filter(
      (s): s is InvocationSummary => s !== undefined && matchesQuery(s, q),
    );
    const out: ListPage = { invocations };
    if (next) out.nextCursor = encodeListCursor(field, next);
    return out;
  }

  /**
   * The run of the workflow key a query names, as a share of its own: the key's index (`ix:key`)
   * lists its other invocations only, the run is its fence's field `run`. None when there is no
   * run, when it does not match the query or lies outside its range or before its position, or
   * when an earlier version filed it in the key's index (walked already).
   */
  private async runShare(
    q: ListQuery,
    pl: Plan,
    pos: ListPosition | undefined,
    order: 'asc' | 'desc',
  ): Promise<Share<Scored> | undefined> {
    const k = this.ctx.keys;
    const [p] = pl.partitions;
    const run = await this.ctx.redis.hget(k.fence(p!, q.service!, q.key!), 'run');
    if (run === null) return undefined;
    const [indexed, [s]] = await Promise.all([
      this.ctx.redis.zscore(k.ixKey(p!, q.service!, q.key!), run),
      this.summaries([run]),
    ]);
    if (indexed !== null || s === undefined || !matchesQuery(s, q)) return undefined;
    const at = s.createdAt;
    if ((pl.low !== undefined && at <= pl.low) || (pl.high !== undefined && at >= pl.high))
      return undefined;
    if (pos !== undefined && !positionBefore(pos, { at, id: run }, order)) return undefined;
    return { items: [{ id: run, at }], frontier: undefined, exhausted: true };
  }

  /**
   * With an idempotency key, a handler and a service, the invocation its record names (or null
   * for none); undefined when the query cannot be answered so (then the indexes are walked).
   */
  private async byIdempotencyKey(q: ListQuery): Promise<InvocationSummary | null | undefined> {
    const { service, handler, idempotencyKey: idem } = q;
    if (service === undefined || handler === undefined || idem === undefined) return undefined;
    const P = this.ctx.opts.partitions;
    const p =
      q.key !== undefined ? partitionOf(P, service, q.key) : partitionOf(P, service, handler, idem);
    const id = await this.ctx.redis.get(
      this.ctx.keys.idempotency(p, service, q.key ?? '', handler, idem),
    );
    // An object's invocation with an idempotency key has a record by key: without the key, walk.
    if (id === null) return q.key !== undefined ? null : undefined;
    const [s] = await this.summaries([id]);
    return s && matchesQuery(s, q) ? s : null;
  }

  /** The summaries of invocations by id (undefined for one that is gone), one pipeline. */
  async summaries(ids: string[]): Promise<(InvocationSummary | undefined)[]> {
    if (ids.length === 0) return [];
    const k = this.ctx.keys;
    const pipe = partitionBatch(this.ctx.redis);
    const P = this.ctx.opts.partitions;
    const known = ids.filter((id) => partitionOfId(id, P) !== undefined);
    for (const id of known) queueSummary(pipe, k.inv(partitionOfId(id, P)!, id));
    const res = known.length > 0 ? ((await pipe.exec()) ?? []) : [];
    const got = new Map(known.map((id, i) => [id, decodeSummary(id, res[i]?.[1])]));
    return ids.map((id) => got.get(id));
  }

  /**
   * The (partition, service) pairs whose indexes a query walks: `service` on each partition, or
   * without one every service each partition's `ix:svcs` names (one pipeline of SMEMBERS).
   */
  private async targets(
    partitions: number[],
    service: string | undefined,
  ): Promise<[number, string][]> {
    if (service !== undefined) return partitions.map((p) => [p, service]);
    const pipe = partitionBatch(this.ctx.redis);
    for (const p of partitions) pipe.smembers(this.ctx.keys.ixServices(p));
    const res = (await pipe.exec()) ?? [];
    return partitions.flatMap((p, i) => {
      const [err, names] = res[i] ?? [];
      if (err) throw err;
      // ix:svcs holds the names encoded, as the keys do.
      return (names as string[]).map((s): [number, string] => [p, decodeURIComponent(s)]);
    });
  }

  /**
   * Counts from the indexes' cardinalities: ZCARD of each service's index and status indexes, on
   * every partition (after the SMEMBERS of `ix:svcs` when no service is given).
   */
  async counts(filter: { service?: string } = {}): Promise<InvocationCounts> {
    const k = this.ctx.keys;
    const all = Array.from({ length: this.ctx.opts.partitions }, (_, p) => p);
    const targets = await this.targets(all, filter.service);
    const counts: InvocationCounts = { total: 0, byStatus: {}, byService: {} };
    if (targets.length === 0) return counts;
    const pipe = partitionBatch(this.ctx.redis);
    for (const [p, svc] of targets) {
      pipe.zcard(k.ixService(p, svc));
      for (const st of STATUSES) pipe.zcard(k.ixServiceStatus(p, svc, st));
    }
    const res = (await pipe.exec()) ?? [];
    const value = (i: number): number => {
      const [err, v] = res[i] ?? [];
      if (err) throw err;
      return Number(v);
    };
    const per = STATUSES.length + 1;
    targets.forEach(([, svc], t) => {
      const n = value(t * per);
      counts.total += n;
      if (n > 0) counts.byService[svc] = (counts.byService[svc] ?? 0) + n;
      STATUSES.forEach((st, j) => {
        const m = value(t * per + 1 + j);
        if (m > 0) counts.byStatus[st] = (counts.byStatus[st] ?? 0) + m;
      });
    });
    return counts;
  }
}
