/**
 * The reconciler: the sweep of one partition, which fires the partition's timers and closes
 * every crash window between Redis and the mailbox: due timers and overdue invocations are
 * dispatched, outcomes still owed to callers are delivered, outbox effects a crash left behind
 * are performed. The partition's owner runs it (see `duties.ts`); each partition's sweep is its
 * own call, since each partition is its own Redis Cluster slot.
 */
import { reconcilePartition } from './calls-admin.js';
import { forEachWake } from './calls.js';
import { expireIndexes } from './calls-index.js';
import type { StoreContext } from './context.js';
import type { Deliveries } from './deliveries.js';
import type { Mailbox } from './mailbox.js';
import type { JobData } from './wire.js';

/** Most items of each kind one partition's sweep returns. */
const SWEEP_MAX = 100;
/** Most expired invocations one partition's sweep removes from the indexes (see expireIndexes). */
const EXPIRE_MAX = 2000;

/** What one partition's sweep did. */
export interface SweepResult {
  /** Invocations dispatched, outcomes delivered and outbox effects performed. */
  handled: number;
  /** Ms until the partition's earliest deadline left (0: sweep again now); undefined for none. */
  waitMs: number | undefined;
  /** Due timers left for later (beyond `fireMax`), and how late the latest of them is (ms). */
  held: number;
  heldLateMs: number;
}

const NOTHING: SweepResult = { handled: 0, waitMs: undefined, held: 0, heldLateMs: -1 };

/** Removes the index entries of partition p's expired invocations (failures: next time). */
export async function expirePartitionIndexes(ctx: StoreContext, p: number): Promise<void> {
  if (ctx.life.wiped || ctx.life.closed) return;
  const k = ctx.keys;
  await expireIndexes(ctx.redis, k.ixExpiry(p), { part: k.part(p), max: EXPIRE_MAX }).catch(
    () => undefined,
  );
}

/**
 * Sweeps partition p once, firing at most `fireMax` due timers (-1: all; the rest stay due).
 * Redis unreachable: nothing handled, and no deadline known.
 */
export async function sweepPartition(
  ctx: StoreContext,
  p: number,
  mailbox: Mailbox,
  deliveries: Deliveries,
  fireMax = -1,
): Promise<SweepResult> {
  if (ctx.life.wiped || ctx.life.closed) return NOTHING;
  const k = ctx.keys;
  let sweep;
  try {
    sweep = await reconcilePartition(
      ctx.redis,
      { due: k.due(p), outbox: k.outbox(p) },
      {
        part: k.part(p),
        max: SWEEP_MAX,
        graceMs: ctx.opts.graceMs,
        fireMax,
        // With a limit, what it fires fits this process's free slots: lease those timers to it.
        ...(fireMax >= 0 ? { workerId: ctx.workerId, leaseMs: ctx.opts.leaseMs } : {}),
      },
    );
  } catch {
    return NOTHING; // the next sweep tries again
  }
  const jobs: [JobData, number][] = [];
  const collect = (i: string, ds: number, s: string, key: string, m: JobData['m']): void => {
    jobs.push([{ i, s, k: key, m }, ds]);
  };
  forEachWake(sweep.fire, collect);
  const fired = jobs.length;
  forEachWake(sweep.dispatch, collect);
  const found = {
    dispatch: jobs.length - fired,
    deliver: sweep.deliver.length,
    outbox: sweep.outbox.length,
  };
  // Timers firing on time are not the reconciler's recoveries; only the rest is reported.
  if (sweep.lagMs !== undefined || found.dispatch + found.deliver + found.outbox > 0)
    ctx.watch.observer?.swept(sweep.lagMs, found);
  for (const { id, lease } of sweep.leased)
    mailbox.takeFired({ i: id, s: lease.service, k: lease.key, m: lease.mode }, lease);
  let handled = jobs.length + sweep.leased.length;
  await Promise.all(jobs.map(([data, ds]) => mailbox.dispatch(data, ds, 0).catch(() => undefined)));
  for (const id of sweep.deliver) {
    handled++;
    await deliveries.deliverOutcome(id).catch(() => undefined);
  }
  for (const m of sweep.outbox) {
    handled++;
    await deliveries.performOutbox(p, m).catch(() => undefined);
  }
  return { handled, waitMs: sweep.waitMs, held: sweep.held, heldLateMs: sweep.heldLateMs };
}

/** Sweeps every partition once, whoever owns them (each partition its own call); items handled. */
export async function reconcile(
  ctx: StoreContext,
  mailbox: Mailbox,
  deliveries: Deliveries,
): Promise<number> {
  const parts = Array.from({ length: ctx.opts.partitions }, (_, p) => p);
  const swept = await Promise.all(
    parts.map(async (p) => {
      await expirePartitionIndexes(ctx, p);
      return (await sweepPartition(ctx, p, mailbox, deliveries)).handled;
    }),
  );
  return swept.reduce((a, b) => a + b, 0);
}
