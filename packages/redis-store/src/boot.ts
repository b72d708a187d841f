/**
 * Start-up checks and the boot marker: Redis must not evict (an evicted journal is lost in
 * silence), AOF off is warned about, and a marker written at first start tells a process that
 * Redis was wiped or replaced under it.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
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

/** Refuses a Redis that may evict; reports (and warns about) its persistence. */
export async function checkRedis(ctx: StoreContext): Promise<Persistence> {
  const info = await ctx.redis.info();
  const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
  if (policy !== undefined && policy !== 'noeviction') {
    throw new StoreError(
      `Redis maxmemory-policy is ${policy}; Latchkey needs noeviction (evicted journals would be silently lost)`,
      'REDIS_EVICTION_POLICY',
    );
  }
  const aof = /aof_enabled:(\d)/.exec(info)?.[1] === '1';
  let appendfsync = '';
  try {
    const cfg = (await ctx.redis.config('GET', 'appendfsync')) as string[];
    appendfsync = cfg[1] ?? '';
  } catch {
    // CONFIG may be disabled on managed Redis
  }
  if (!aof)
    ctx.logger.warn(
      '[latchkey] Redis has AOF off: acknowledged invocations are lost if Redis restarts',
    );
  return { aof, appendfsync };
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
