/**
 * The mailbox: BullMQ delivers, Redis decides. A job (`{i, s, k, m}`) is only a wake-up ("look
 * at this invocation"); the start script decides whether there is anything to run. Also this
 * process's local fast path: with a free worker slot, an attempt starts here without a mailbox
 * round trip (the slot accounting is here too).
 */
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Executor, QueueDepth, WorkerHandle, WorkerOptions } from '@latchkey/core';
import { forEachWake, type Wakes } from './calls.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { partitionOfId } from './keys.js';
import { DAY_MS, type JobData } from './wire.js';

/** The local fast path of a process's worker: attempts it starts itself, up to `capacity`. */
export interface LocalDispatch {
  executor: Executor;
  capacity: number;
  active: number;
  closing: boolean;
  idle?: () => void;
}

/** Starts and runs an attempt for a job (`local`: in a fast-path slot); see `Attempts.process`. */
export type RunJob = (data: JobData, executor: Executor, local?: LocalDispatch) => Promise<void>;

export class Mailbox {
  private readonly ctx: StoreContext;
  private readonly url: string;
  private readonly runJob: RunJob;
  private readonly queues: Queue[] = [];
  private readonly workers: Worker[] = [];
  /** The local fast path of this process's worker (see `dispatch`). */
  private local: LocalDispatch | undefined;
  private bullActive = 0;
  private stopping = false;
  private drained: (() => void) | undefined;

  constructor(ctx: StoreContext, url: string, runJob: RunJob) {
    this.ctx = ctx;
    this.url = url;
    this.runJob = runJob;
  }

  /** Opens the shard queues (after the boot checks passed, so a refused start writes nothing). */
  open(): void {
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
    for (const w of this.workers) void w.close(true).catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close().catch(() => undefined)));
  }

  private connectionOptions(): ConnectionOptions {
    return {
      url: this.url,
      maxRetriesPerRequest: null,
      ...this.ctx.opts.redisOptions,
    } as ConnectionOptions;
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
      });
  }

  /** Adds the mailbox job that wakes a worker for an invocation. */
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

  /** Starts the shard workers and the local fast path (the partition duties are `duties.ts`). */
  start(executor: Executor, options: WorkerOptions): WorkerHandle {
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
    return {
      close: async (timeoutMs = 30_000) => {
        local.closing = true;
        this.stopping = true;
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
