/**
 * The mailbox: BullMQ delivers, Redis decides. A job (`{i, s, k, m}`) is only a wake-up ("look
 * at this invocation"); the start script decides whether there is anything to run. Also this
 * process's local fast path: with a free worker slot, an attempt starts here without a mailbox
 * round trip (the slot accounting is here too); without one, the hand-off to another process's
 * worker (`handoff.ts`) before a BullMQ job.
 */
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Executor, QueueDepth, WorkerHandle, WorkerOptions } from '@latchkey/core';
import { forEachWake, type Lease, type Wakes } from './calls.js';
import { connect, type RedisTarget } from './connection.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { releaseLease } from './calls.js';
import type { DelegatedAccept } from './delegate.js';
import type { HandedLease, HandoffTarget, Handoffs } from './handoff.js';
import { partitionOfId, scriptKeys } from './keys.js';
import { DAY_MS, type JobData } from './wire.js';

/** The local fast path of a process's worker: attempts it starts itself, up to `capacity`. */
export interface LocalDispatch {
  executor: Executor;
  capacity: number;
  active: number;
  closing: boolean;
  idle?: () => void;
}

/** Starts and runs an attempt for a job (`local`: in a fast-path slot); see `Attempts.run`. */
export type RunJob = (data: JobData, executor: Executor, local?: LocalDispatch) => Promise<void>;

/** Runs the first attempt of a hand-off lease in a fast-path slot; see `Attempts.runHanded`. */
export type RunHanded = (l: HandedLease, local: LocalDispatch) => Promise<void>;

/** Runs an attempt a sweep leased to this process (a timer it fired); see `Attempts.runFired`. */
export type RunFired = (data: JobData, lease: Lease, local: LocalDispatch) => Promise<void>;

export class Mailbox {
  private readonly ctx: StoreContext;
  private readonly target: RedisTarget;
  /** Cluster connections made for the shard workers (BullMQ leaves a given connection open). */
  private readonly owned: { disconnect(): void }[] = [];
  private readonly runJob: RunJob;
  private readonly runHanded: RunHanded;
  private readonly runFired: RunFired;
  /** Takes a call another process delegated to this worker (see `delegate.ts`). */
  private readonly takeDelegated: (d: DelegatedAccept) => void;
  /** Told each time a slot of the local fast path comes free. */
  private readonly slotFreed: () => void;
  private readonly handoffs: Handoffs;
  private readonly queues: Queue[] = [];
  private readonly workers: Worker[] = [];
  /** The local fast path of this process's worker (see `dispatch`). */
  private local: LocalDispatch | undefined;
  private bullActive = 0;
  private stopping = false;
  private drained: (() => void) | undefined;

  constructor(
    ctx: StoreContext,
    target: RedisTarget,
    run: {
      job: RunJob;
      handed: RunHanded;
      fired: RunFired;
      delegated: (d: DelegatedAccept) => void;
      slotFreed: () => void;
    },
    handoffs: Handoffs,
  ) {
    this.ctx = ctx;
    this.target = target;
    this.runJob = run.job;
    this.runHanded = run.handed;
    this.runFired = run.fired;
    this.takeDelegated = run.delegated;
    this.slotFreed = run.slotFreed;
    this.handoffs = handoffs;
  }

  /**
   * Opens the shard queues (after the boot checks passed, so a refused start writes nothing) and
   * reads which workers take hand-offs.
   */
  async open(): Promise<void> {
    for (let s = 0; s < this.ctx.opts.shards; s++) {
      const q = new Queue('jobs', {
        connection: this.ctx.redis,
        prefix: this.ctx.keys.queuePrefix(s),
      });
      q.on('error', (e) => {
        if (!this.ctx.life.closed)
          this.ctx.logger.warn(`[latchkey] mailbox queue error: ${e.message}`);
      });
      this.queues.push(q);
    }
    if (this.ctx.opts.handoff) await this.handoffs.refresh();
  }

  /** Each shard queue's jobs by state (named by its shard: `jobs:<shard>`). */
  async depths(): Promise<QueueDepth[]> {
    return Promise.all(
      this.queues.map(async (q, s) => ({
        queue: `jobs:${s}`,
        counts: await q.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'failed'),
      })),
    );
  }

  /** Stops taking jobs at once (Redis was wiped). */
  abandon(): void {
    void this.handoffs.stop();
    for (const w of this.workers) void w.close(true).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.handoffs.stop();
    await Promise.all(this.queues.map((q) => q.close().catch(() => undefined)));
    for (const c of this.owned.splice(0)) c.disconnect();
  }

  /**
   * A shard worker's connection: options for one server (BullMQ opens and closes its own), or a
   * cluster connection of ours (BullMQ cannot open one from options; closed with the mailbox).
   */
  private connectionOptions(): ConnectionOptions {
    const options = { maxRetriesPerRequest: null, ...this.ctx.opts.redisOptions };
    if ('url' in this.target) return { url: this.target.url, ...options } as ConnectionOptions;
    const cluster = connect(this.target, options);
    cluster.on('error', () => undefined);
    this.owned.push(cluster);
    return cluster;
  }

  /** Free slots of this process's local fast path (Infinity without one: nothing to wait for). */
  freeSlots(): number {
    const local = this.freeLocal(true);
    return local ? Math.max(0, local.capacity - local.active) : Infinity;
  }

  /** This process's local fast path when it takes attempts (`force`: even past its capacity). */
  freeLocal(force = false): LocalDispatch | undefined {
    const local = this.local;
    if (
      !local ||
      local.closing ||
      this.ctx.life.wiped ||
      (!force && local.active >= local.capacity)
    )
      return undefined;
    return local;
  }

  /** Runs `work` in a slot of the local fast path: taken now, given back when it settles (failures are the reconciler's). */
  inSlot(local: LocalDispatch, work: () => Promise<void>): Promise<void> {
    local.active++;
    return work()
      .catch(() => undefined)
      .finally(() => {
        local.active--;
        if (local.active === 0) local.idle?.();
        this.slotFreed();
      });
  }

  /**
   * A worker of another process for an accept script to hand a ready invocation to (see
   * `Handoffs.target`), when this process has no free slot; `unheard` when its message reached
   * nobody (the caller then dispatches).
   */
  handoffTarget(p: number, start: () => string): HandoffTarget | undefined {
    return this.freeLocal() ? undefined : this.handoffs.target(p, start);
  }

  /** Asks a worker of another process to accept a call (see `delegate.ts`); false: nobody heard it. */
  delegate(p: number, d: DelegatedAccept): Promise<boolean> {
    return this.handoffs.delegate(p, d);
  }

  /** The worker of a hand-off did not hear it: skip it until the registry is read again. */
  unheard(t: HandoffTarget): void {
    this.handoffs.unheard(t.worker);
  }

  /** Wakes a worker for an invocation: here, by a hand-off to another process, or a mailbox job. */
  async dispatch(data: JobData, ds: number, delayMs: number, suffix = ''): Promise<void> {
    const p = partitionOfId(data.i, this.ctx.opts.partitions);
    if (p === undefined) return;
    const local = delayMs <= 0 ? this.freeLocal() : undefined;
    if (local) {
      // Fast path: this process has a free worker slot, so it starts the attempt itself instead of a
      // mailbox round trip. A crash here is covered like a lost job: the invocation's deadline in
      // `due` passes and the reconciler dispatches it again.
      void this.inSlot(local, () => this.runJob(data, local.executor, local));
      return;
    }
    // The hand-off: one message to a live worker of another process, covered like a lost job too.
    if (delayMs <= 0 && (await this.handoffs.send(p, data, ds))) return;
    await this.enqueue(p, data, ds, delayMs, suffix);
  }

  /** Adds the mailbox job that wakes a worker for an invocation. */
  private async enqueue(
    p: number,
    data: JobData,
    ds: number,
    delayMs: number,
    suffix = '',
  ): Promise<void> {
    const q = this.queues[p % this.ctx.opts.shards]!;
    await q.add('run', data, {
      jobId: `${data.i}-${ds}${suffix}`,
      // At most a day: a longer wait is dispatched again by startAttempt's 'early' until it is due.
      delay: Math.min(Math.max(0, delayMs), DAY_MS),
      removeOnComplete: true,
      removeOnFail: true,
      attempts: 1,
    });
  }

  /**
   * Takes a hand-off from another process: in a free slot of the local fast path, or (none free,
   * or closing) as a mailbox job for whichever worker frees a slot first.
   */
  private takeWake(data: JobData, ds: number): void {
    const local = this.freeLocal();
    this.ctx.opts.hooks?.afterHandoff?.({
      invocationId: data.i,
      service: data.s,
      local: local !== undefined,
    });
    if (local) {
      void this.inSlot(local, () => this.runJob(data, local.executor, local));
      return;
    }
    const p = partitionOfId(data.i, this.ctx.opts.partitions);
    if (p === undefined) return;
    this.enqueue(p, data, ds, 0).catch((e: unknown) => {
      // Left to the reconciler: the invocation's deadline in `due` stands.
      if (!this.ctx.life.closed)
        this.ctx.logger.warn(`[latchkey] hand-off to the mailbox failed: ${String(e)}`);
    });
  }

  /**
   * Takes a fresh invocation an accept script leased to this worker: its first attempt in a free
   * slot, or (none free, or closing) the lease handed back and a mailbox job instead.
   */
  private takeLease(l: HandedLease): void {
    const local = this.freeLocal();
    this.ctx.opts.hooks?.afterHandoff?.({
      invocationId: l.data.i,
      service: l.data.s,
      local: local !== undefined,
    });
    if (local) {
      void this.inSlot(local, () => this.runHanded(l, local));
      return;
    }
    this.handBack(l.data, l.epoch);
  }

  /**
   * Runs a timer that this process's sweep leased to it, in a fast-path slot: the sweep leased
   * no more than the free slots it was promised, so this runs even past capacity. Closing: the
   * lease is handed back and a mailbox job added instead.
   */
  takeFired(data: JobData, lease: Lease): void {
    this.ctx.opts.hooks?.afterFire?.({ invocationId: data.i, service: data.s });
    const local = this.freeLocal(true);
    if (local) void this.inSlot(local, () => this.runFired(data, lease, local));
    else this.handBack(data, lease.epoch);
  }

  /** Hands back a lease this process will not use (`releaseLease`) and adds the mailbox job. */
  private handBack(data: JobData, epoch: string): void {
    const p = partitionOfId(data.i, this.ctx.opts.partitions);
    if (p === undefined) return;
    const ks = scriptKeys(this.ctx.keys, p, data);
    releaseLease(this.ctx.redis, ks, {
      id: data.i,
      epoch,
      graceMs: this.ctx.opts.graceMs,
      part: this.ctx.keys.part(p),
    })
      .then((r) => (r.tag === 'ok' ? this.enqueue(p, data, r.ds, 0) : undefined))
      .catch((e: unknown) => {
        // Left to the reconciler: the lease expires, and its deadline in `due` with it.
        if (!this.ctx.life.closed)
          this.ctx.logger.warn(`[latchkey] handing back a lease failed: ${String(e)}`);
      });
  }

  /** Dispatches the invocations a script made ready (its wake tuples). */
  async dispatchWakes(wakes: Wakes | undefined): Promise<void> {
    if (!wakes || wakes.length === 0) return;
    const jobs: [JobData, number][] = [];
    forEachWake(wakes, (i, ds, s, k, m) => jobs.push([{ i, s, k, m }, ds]));
    for (const [data, ds] of jobs) await this.dispatch(data, ds, 0);
  }

  private async process(job: Job<JobData>, executor: Executor): Promise<void> {
    const local = this.local;
    if (this.stopping) {
      // Taken while this worker shuts down: leave it to the others (its deadline in `due` stands).
      throw new StoreError('worker is shutting down', 'SHUTTING_DOWN');
    }
    this.bullActive++;
    try {
      await this.runJob(job.data, executor);
    } finally {
      this.bullActive--;
      if (this.bullActive === 0 && (local?.active ?? 0) === 0) this.drained?.();
    }
  }

  /**
   * Starts the shard workers, the local fast path and the hand-offs it takes (with the local fast
   * path and `handoff` on); the partition duties (sweeps, timers) are `duties.ts`.
   */
  async start(executor: Executor, options: WorkerOptions): Promise<WorkerHandle> {
    const o = this.ctx.opts;
    const workers: Worker[] = [];
    const concurrency = options.concurrency ?? 32;
    for (let s = 0; s < o.shards; s++) {
      const w = new Worker<JobData>('jobs', (job) => this.process(job, executor), {
        connection: this.connectionOptions(),
        prefix: this.ctx.keys.queuePrefix(s),
        concurrency,
        lockDuration: o.lockDurationMs,
        stalledInterval: o.stalledIntervalMs,
        maxStalledCount: o.maxStalledCount,
        // An idle worker's blocking wait for a job (s): adding a job ends it at once, so a long one
        // only spares each idle process's shard workers a round of commands every few seconds.
        drainDelay: 30,
      });
      w.on('error', (e) => {
        if (!this.ctx.life.closed)
          this.ctx.logger.warn(`[latchkey] mailbox worker error: ${e.message}`);
      });
      workers.push(w);
      this.workers.push(w);
    }
    const local: LocalDispatch = {
      executor,
      capacity: concurrency * o.shards,
      active: 0,
      closing: false,
    };
    if (o.localDispatch) this.local = local;
    if (o.localDispatch && o.handoff)
      await this.handoffs.listen(
        {
          wake: (data, ds) => this.takeWake(data, ds),
          lease: (l) => this.takeLease(l),
          accept: (d) => this.takeDelegated(d),
        },
        () => Math.max(0, local.capacity - local.active),
      );
    return {
      close: async (timeoutMs = 30_000) => {
        local.closing = true;
        this.stopping = true;
        // Hand-offs still on their way become mailbox jobs (closing: no free slot).
        await this.handoffs.stop();
        // Attempts waiting on timers suspend now; running ones finish (up to timeoutMs).
        executor.hurry();
        let t: NodeJS.Timeout | undefined;
        const expire = new Promise<void>((r) => (t = setTimeout(r, timeoutMs)));
        const idle = new Promise<void>((r) => {
          const check = (): void => {
            if (this.bullActive === 0 && local.active === 0) r();
          };
          this.drained = check;
          local.idle = check;
          check();
        });
        await Promise.race([idle, expire]);
        clearTimeout(t);
        // Nothing of ours is running now, so closing the mailbox workers by force loses nothing
        // (a graceful BullMQ close can wait forever on a blocking connection after a Redis restart).
        let t2: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all(workers.map((w) => w.close(true))),
          new Promise<void>((r) => (t2 = setTimeout(r, 5000))),
        ]);
        clearTimeout(t2);
      },
    };
  }
}
