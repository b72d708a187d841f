/**
 * The reconciler: one sweep over every partition (one pipeline) that closes every crash window
 * between Redis and the mailbox: overdue invocations are dispatched again, outcomes still owed
 * to callers are delivered, outbox effects a crash left behind are performed, and the index
 * entries of expired invocations are removed.
 */
import { partitionBatch } from './connection.js';
import { decodeSweep, queueReconcile } from './calls-admin.js';
import { forEachWake } from './calls.js';
import { queueExpireIndexes } from './calls-index.js';
import type { StoreContext } from './context.js';
import type { Deliveries } from './deliveries.js';
import type { Mailbox } from './mailbox.js';
import type { JobData } from './wire.js';

/** Most items of each kind one partition's sweep returns. */
const SWEEP_MAX = 100;
/** Most expired invocations one partition's sweep removes from the indexes (see expireIndexes). */
const EXPIRE_MAX = 2000;

/** Removes the index entries of expired invocations: one pipeline over the partitions. */
async function expireIndexes(ctx: StoreContext): Promise<void> {
  const k = ctx.keys;
  const pipe = partitionBatch(ctx.redis);
  for (let p = 0; p < ctx.opts.partitions; p++) {
    queueExpireIndexes(pipe, k.ixExpiry(p), { part: k.part(p), max: EXPIRE_MAX });
  }
  await pipe.exec();
}

export async function reconcile(
  ctx: StoreContext,
  mailbox: Mailbox,
  deliveries: Deliveries,
): Promise<number> {
  if (ctx.life.wiped || ctx.life.closed) return 0;
  try {
    const k = ctx.keys;
    const pipe = partitionBatch(ctx.redis);
    for (let p = 0; p < ctx.opts.partitions; p++) {
      const keys = { due: k.due(p), outbox: k.outbox(p) };
      queueReconcile(pipe, keys, { part: k.part(p), max: SWEEP_MAX, graceMs: ctx.opts.graceMs });
    }
    // The index sweep's failure never costs the dispatches of this sweep: it runs again next time.
    const [results] = await Promise.all([
      pipe.exec().then((r) => r ?? []),
      expireIndexes(ctx).catch(() => undefined),
    ]);
    let n = 0;
    for (const [p, [err, res]] of results.entries()) {
      if (err) continue;
      const sweep = decodeSweep(res);
      const jobs: [JobData, number][] = [];
      forEachWake(sweep.dispatch, (i, ds, s, key, m) => jobs.push([{ i, s, k: key, m }, ds]));
      const found = {
        dispatch: jobs.length,
        deliver: sweep.deliver.length,
        outbox: sweep.outbox.length,
      };
      if (sweep.lagMs !== undefined || found.dispatch + found.deliver + found.outbox > 0)
        ctx.watch.observer?.swept(sweep.lagMs, found);
      for (const [data, ds] of jobs) {
        n++;
        await mailbox.dispatch(data, ds, 0);
      }
      for (const id of sweep.deliver) {
        n++;
        await deliveries.deliverOutcome(id).catch(() => undefined);
      }
      for (const m of sweep.outbox) {
        n++;
        await deliveries.performOutbox(p, m).catch(() => undefined);
      }
    }
    return n;
  } catch {
    return 0; // Redis unreachable: the next sweep tries again
  }
}
