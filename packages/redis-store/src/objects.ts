/**
 * The admin API's views of objects and workflows: a service's keys (from the per-partition key
 * index `ix:keys:<svc>`, pruned as it is read), a key's queue, a workflow run's promises, and
 * clearing a key's state through its fence.
 */
import {
  LIST_LIMIT_DEFAULT,
  LIST_LIMIT_MAX,
  type Completion,
  type KeyInfo,
  type KeyPage,
  type KeyQueue,
  type PromiseInfo,
} from '@latchkey/core';
import { decodeKeyCursor, encodeKeyCursor } from '@latchkey/core/internal';
import { clearState, decodeKeys, queueKeys, type KeyRow } from './calls-index.js';
import { partitionBatch } from './connection.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { enc, partitionOf } from './keys.js';
import type { Listing } from './listing.js';
import { mergeShares } from './merge.js';

/** Byte order of UTF-8, as Redis orders the members of a key index. */
function keyBefore(a: KeyRow, b: KeyRow): boolean {
  return Buffer.compare(Buffer.from(a.key, 'utf8'), Buffer.from(b.key, 'utf8')) < 0;
}

export class Objects {
  private readonly ctx: StoreContext;
  private readonly listing: Listing;

  constructor(ctx: StoreContext, listing: Listing) {
    this.ctx = ctx;
    this.listing = listing;
  }

  /** A page of a service's keys that have state, a holder or an inbox. */
  async listKeys(
    service: string,
    page: { cursor?: string; limit?: number } = {},
  ): Promise<KeyPage> {
    const limit = Math.min(
      Math.max(1, Math.floor(page.limit ?? LIST_LIMIT_DEFAULT)),
      LIST_LIMIT_MAX,
    );
    const after = page.cursor !== undefined ? decodeKeyCursor(page.cursor) : undefined;
    if (page.cursor !== undefined && after === undefined)
      throw new StoreError('the cursor is not a cursor of keys', 'INVALID_CURSOR');
    const k = this.ctx.keys;
    const pipe = partitionBatch(this.ctx.redis);
    for (let p = 0; p < this.ctx.opts.partitions; p++) {
      queueKeys(pipe, k.ixKeys(p, service), {
        part: k.part(p),
        service: enc(service),
        start: after !== undefined ? `(${after}` : '-',
        limit,
        most: Math.max(limit, this.ctx.opts.listExamineLimit),
      });
    }
    const shares = ((await pipe.exec()) ?? []).map(([err, res]) => {
      if (err) throw err;
      return decodeKeys(res);
    });
    const { page: rows, next } = mergeShares(shares, keyBefore, limit);
    const keys = rows.map((r): KeyInfo => {
      const info: KeyInfo = { key: r.key, inbox: r.inbox };
      if (r.holder !== '') info.holder = r.holder;
      return info;
    });
    return next ? { keys, nextCursor: encodeKeyCursor(next.key) } : { keys };
  }

  /** A key's holder and the invocations waiting behind it, in the order they will run. */
  async keyQueue(service: string, key: string, limit = LIST_LIMIT_MAX): Promise<KeyQueue> {
    const p = partitionOf(this.ctx.opts.partitions, service, key);
    const o = this.ctx.keys.objectKeys(p, service, key);
    const [[, fence], [, inbox]] = ((await this.ctx.redis
      .pipeline()
      .hmget(o.fence, 'owner', 'hd')
      .lrange(o.inbox, 0, limit)
      .exec()) ?? [[], []]) as [[unknown, (string | null)[]], [unknown, string[]]];
    // The one leased holds it; the key's holder ('hd') not leased yet runs first. The inbox holds
    // those waiting behind it (and, written by an earlier version, the holder too).
    const holder = fence?.[0] ?? undefined;
    const head = fence?.[1] ?? undefined;
    const first = head !== undefined && head !== holder ? [head] : [];
    const waiting = [...first, ...(inbox ?? [])].filter((id) => id !== holder).slice(0, limit);
    const queue = (await this.listing.summaries(waiting)).filter((s) => s !== undefined);
    return holder !== undefined ? { holder, queue } : { queue };
  }

  /**
   * A workflow run's promises: those settled (its promises hash) and those only awaited (a waiter
   * set named in `<promises>:w`, whose name ends with the promise's name, encoded).
   */
  async promises(workflow: string, key: string): Promise<PromiseInfo[]> {
    const p = partitionOf(this.ctx.opts.partitions, workflow, key);
    const prk = this.ctx.keys.promises(p, workflow, key);
    const [[, settled], [, sets]] = ((await this.ctx.redis
      .pipeline()
      .hgetall(prk)
      .smembers(this.ctx.keys.promiseSets(p, workflow, key))
      .exec()) ?? [[], []]) as [[unknown, Record<string, string>], [unknown, string[]]];
    const out = new Map<string, PromiseInfo>();
    for (const [name, raw] of Object.entries(settled ?? {})) {
      out.set(name, { name, completion: JSON.parse(raw) as Completion });
    }
    const waiterPrefix = this.ctx.keys.promiseWaiters(p, workflow, key, '');
    for (const set of sets ?? []) {
      if (!set.startsWith(waiterPrefix)) continue;
      const name = decodeURIComponent(set.slice(waiterPrefix.length));
      if (!out.has(name)) out.set(name, { name });
    }
    return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Clears a key's state unless an exclusive invocation holds it; false when busy. */
  async clearState(service: string, key: string): Promise<boolean> {
    const p = partitionOf(this.ctx.opts.partitions, service, key);
    const o = this.ctx.keys.objectKeys(p, service, key);
    return (await clearState(this.ctx.redis, { state: o.state, fence: o.fence })).tag === 'ok';
  }
}
