/**
 * Start-up checks and the boot marker: Redis must not evict (an evicted journal is lost in
 * silence), AOF off is warned about, and a marker written at first start tells a process that
 * Redis was wiped or replaced under it.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { masters } from './connection.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';

/** Connects a lazy connection, or waits until an already-connecting one is ready. */
export async function ready(r: Redis): Promise<void> {
  if (r.status === 'ready') return;
  if (r.status === 'wait') {
    await r.connect();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const onReady = (): void => {
      r.off('end', onEnd);
      resolve();
    };
    const onEnd = (): void => {
      r.off('ready', onReady);
      reject(new StoreError('Redis connection ended before it was ready', 'REDIS_UNREACHABLE'));
    };
    r.once('ready', onReady);
    r.once('end', onEnd);
  });
}

/** What Redis reported at start-up. */
export interface Persistence {
  aof: boolean;
  appendfsync: string;
}

/**
 * Refuses a Redis that may evict or is older than 7 (sharded pub/sub); reports (and warns about)
 * its persistence. On a cluster every master is asked (each holds a share of the partitions).
 */
export async function checkRedis(ctx: StoreContext): Promise<Persistence> {
  const each = await Promise.all(masters(ctx.redis).map((node) => checkServer(node)));
  const aof = each.every((s) => s.aof);
  const appendfsync = each[0]?.appendfsync ?? '';
  if (!aof)
    ctx.logger.warn(
      '[latchkey] Redis has AOF off: acknowledged invocations are lost if Redis restarts',
    );
  return { aof, appendfsync };
}

async function checkServer(node: Redis): Promise<Persistence> {
  const info = await node.info();
  const where = node.options.port
    ? ` (${node.options.host ?? 'localhost'}:${node.options.port})`
    : '';
  const version = /redis_version:(\d+)/.exec(info)?.[1];
  if (version !== undefined && Number(version) < 7) {
    throw new StoreError(
      `Redis${where} is version ${/redis_version:(\S+)/.exec(info)?.[1]}; Latchkey needs Redis 7 or later (sharded pub/sub)`,
      'REDIS_VERSION',
    );
  }
  const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
  if (policy !== undefined && policy !== 'noeviction') {
    throw new StoreError(
      `Redis${where} maxmemory-policy is ${policy}; Latchkey needs noeviction (evicted journals would be silently lost)`,
      'REDIS_EVICTION_POLICY',
    );
  }
  const aof = /aof_enabled:(\d)/.exec(info)?.[1] === '1';
  let appendfsync = '';
  try {
    const cfg = (await node.config('GET', 'appendfsync')) as string[];
    appendfsync = cfg[1] ?? '';
  } catch {
    // CONFIG may be disabled on managed Redis
  }
  return { aof, appendfsync };
}

/**
 * The format of the data this version writes, kept in `<prefix>:layout` beside the partition
 * count. Format 1 (no `format=` there) is the data of earlier versions, which this one reads: the
 * inbox with its key's holder at its head, the `wf:` run record, retention as JSON.
 */
export const DATA_FORMAT = 2;

/**
 * The partition count of the store's data: stored at its first start (`<prefix>:layout`), kept
 * for the life of the data (every key and invocation id names its partition). `given`: the
 * process was configured with its own number, which must then be the stored one. The layout also
 * holds the data's format ({@link DATA_FORMAT}): data of an earlier format is marked as this one's
 * (this version reads it), data of a later format is refused. (A version from before the format
 * was kept expects the layout to hold the partition count alone: it refuses to start on data
 * marked so, and cannot run beside this one.)
 */
async function checkLayout(ctx: StoreContext, given: boolean): Promise<number> {
  const mine = ctx.opts.partitions;
  await ctx.redis.set(ctx.keys.layout, `partitions=${mine} format=${DATA_FORMAT}`, 'NX');
  const stored = await ctx.redis.get(ctx.keys.layout);
  const m = /^partitions=(\d+)(?: format=(\d+))?$/.exec(stored ?? '');
  const n = Number(m?.[1]);
  if (!Number.isInteger(n) || n < 1)
    throw new StoreError(
      `${ctx.keys.layout} holds '${stored}', not a partition count`,
      'PARTITIONS_MISMATCH',
    );
  if (n !== mine && given)
    throw new StoreError(
      `this store's data (prefix '${ctx.keys.prefix}') has ${n} partitions, but this process is configured with ${mine}; partitions are fixed for the life of the data: start it with ${n} (or without the option)`,
      'PARTITIONS_MISMATCH',
    );
  const format = m?.[2] !== undefined ? Number(m[2]) : 1;
  if (format > DATA_FORMAT)
    throw new StoreError(
      `this store's data (prefix '${ctx.keys.prefix}') was written by a later version of Latchkey (data format ${format}); this version reads formats up to ${DATA_FORMAT}: upgrade this process`,
      'DATA_FORMAT',
    );
  // (Processes of this version starting side by side write the same value.)
  if (format < DATA_FORMAT)
    await ctx.redis.set(ctx.keys.layout, `partitions=${n} format=${DATA_FORMAT}`);
  return n;
}

/** Writes the boot marker unless there is one, and returns the one Redis holds. */
export async function bootMarker(ctx: StoreContext): Promise<string | undefined> {
  await ctx.redis.set(ctx.keys.boot, `${randomUUID()} ${new Date().toISOString()}`, 'NX');
  return (await ctx.redis.get(ctx.keys.boot)) ?? undefined;
}

/**
 * Compares the boot marker with the one read at start (after a reconnect). When it vanished or
 * changed, Redis was wiped or replaced: sets `life.wiped` and calls `onWiped`.
 */
export async function checkBootMarker(
  ctx: StoreContext,
  marker: string | undefined,
  onWiped: () => void,
): Promise<void> {
  try {
    const m = await ctx.redis.get(ctx.keys.boot);
    if (m !== marker) {
      ctx.life.wiped = true;
      onWiped();
      ctx.logger.error(
        `[latchkey] Redis boot marker ${m === null ? 'is gone' : 'changed'}: Redis was wiped or replaced. Refusing to run invocations.`,
      );
    }
  } catch {
    // reconnecting; checked again on the next ready
  }
}

/** Checks the partition count (see {@link checkLayout}) and lays the keys out for the stored one. */
export async function adoptLayout(ctx: StoreContext, given: boolean): Promise<void> {
  const partitions = await checkLayout(ctx, given);
  if (partitions === ctx.opts.partitions) return;
  (ctx.opts as { partitions: number }).partitions = partitions;
  ctx.keys.setPartitions(partitions);
}
