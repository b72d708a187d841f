/**
 * Attempts: leasing an invocation (the start script, or a lease another script handed over) and
 * running it with the executor as a {@link RedisAttempt}, which reaches the store only through
 * the narrow {@link AttemptHost} built here.
 */
import type { Entry, Executor, Outcome, StartedInvocation, Target } from '@latchkey/core';
import { RedisAttempt, type AttemptHost, type NextSlot } from './attempt.js';
import { startAttempt, type Lease } from './calls.js';
import type { StoreContext } from './context.js';
import { type StateCache, stateKey } from './eager.js';
import { StoreError } from './errors.js';
import type { HandedLease } from './handoff.js';
import { childId } from './ids.js';
import { partitionOfId, scriptKeys } from './keys.js';
import type { LocalDispatch, Mailbox } from './mailbox.js';
import type { Outcomes } from './outcomes.js';
import { stateMap, type JobData, type ScriptKeys } from './wire.js';

/** An adopted attempt, and what stops its lease renewals once it is over. */
export interface Adopted {
  attempt: RedisAttempt;
  release(): void;
}

/** How long the marker of an adopted attempt stays (ms): past any request signature's validity. */
const ADOPTED_TTL_MS = 15 * 60_000;

/** Store services an attempt uses that live in other rooms (deliveries, eager state). */
export interface AttemptServices {
  performOutbox(p: number, member: string): Promise<void>;
  deliverOutcome(id: string): Promise<void>;
}

export class Attempts {
  private readonly ctx: StoreContext;
  private readonly mailbox: Mailbox;
  private readonly outcomes: Outcomes;
  private readonly stateCache: StateCache;
  private readonly host: AttemptHost;

  constructor(
    ctx: StoreContext,
    mailbox: Mailbox,
    outcomes: Outcomes,
    stateCache: StateCache,
    services: AttemptServices,
  ) {
    this.ctx = ctx;
    this.mailbox = mailbox;
    this.outcomes = outcomes;
    this.stateCache = stateCache;
    this.host = {
      redis: ctx.redis,
      keys: ctx.keys,
      opts: ctx.opts,
      outcomeChannel: ctx.outcomeChannel,
      listen: (id, l) => outcomes.listenTo(id, l),
      childId: (seed: string, index: number, target: Target, idem?: string) =>
        childId(ctx.opts.partitions, seed, index, target, idem),
      performOutbox: (p, m) => services.performOutbox(p, m),
      dispatchWakes: (w) => mailbox.dispatchWakes(w),
      dispatch: (data, ds, delayMs) => mailbox.dispatch(data, ds, delayMs),
      nextSlot: (inherit) => this.nextSlot(inherit),
      resolveWaiters: (id: string, o: Outcome) => outcomes.resolveWaiters(id, o),
      rememberState: (svc, key, state, ep) => this.rememberState(svc, key, state, ep),
      deliverOutcome: (id) => services.deliverOutcome(id),
    };
  }

  /** Remembers a key's state as an attempt of this process committed it (for eager completion). */
  rememberState(service: string, key: string, state: Map<string, string>, ep: string): void {
    this.stateCache.put(stateKey(service, key), { state, ep });
  }

  /** Starts and runs an attempt for a mailbox job or a local dispatch (`local`: in a fast-path slot). */
  async run(data: JobData, executor: Executor, local?: LocalDispatch): Promise<void> {
    if (this.ctx.life.wiped)
      throw new StoreError('Redis was wiped; not running invocations', 'REDIS_WIPED');
    const p = partitionOfId(data.i, this.ctx.opts.partitions);
    if (p === undefined) return;
    const ks = scriptKeys(this.ctx.keys, p, data);
    await this.holding(data.i, () => this.startAndRun(data, ks, executor, local));
  }

  /**
   * Runs an attempt of invocation `id` while holding its early outcomes: completions published
   * before the attempt listens are kept for it.
   */
  private async holding(id: string, attempt: () => Promise<void>): Promise<void> {
    const ownsEarly = this.outcomes.hold(id);
    try {
      await attempt();
    } finally {
      if (ownsEarly) this.outcomes.release(id);
    }
  }

  private async startAndRun(
    data: JobData,
    ks: ScriptKeys,
    executor: Executor,
    local: LocalDispatch | undefined,
  ): Promise<void> {
    const o = this.ctx.opts;
    const res = await startAttempt(this.ctx.redis, ks, {
      id: data.i,
      workerId: this.ctx.workerId,
      leaseMs: o.leaseMs,
      graceMs: o.graceMs,
      part: this.ctx.keys.part(ks.p),
    });
    // 'early': the script moved its deadline to the wake time, where the partition's owner fires it.
    if (res.tag !== 'run') return;
    await this.runLeased(data, ks, res, executor, local);
  }

  /**
   * Runs the first attempt of a fresh invocation that an accept script leased to this worker
   * through a hand-off (see `handoff.ts`), in a fast-path slot.
   */
  async runHanded(l: HandedLease, local: LocalDispatch): Promise<void> {
    const p = partitionOfId(l.data.i, this.ctx.opts.partitions);
    if (p === undefined) return;
    const ks = scriptKeys(this.ctx.keys, p, l.data);
    await this.holding(l.data.i, () => this.runAttempt(l.data, ks, l.inv, l.epoch, l.now, local));
  }

  /** Runs an attempt that a sweep of this process leased to it (a timer it fired), in a fast-path slot. */
  async runFired(data: JobData, lease: Lease, local: LocalDispatch): Promise<void> {
    const p = partitionOfId(data.i, this.ctx.opts.partitions);
    if (p === undefined) return;
    const ks = scriptKeys(this.ctx.keys, p, data);
    await this.holding(data.i, () => this.runLeased(data, ks, lease, local.executor, local));
  }

  /** Runs an attempt from a lease (`state`: the key's state, when the lease leaves it out). */
  private async runLeased(
    data: JobData,
    ks: ScriptKeys,
    lease: Lease,
    executor: Executor,
    local: LocalDispatch | undefined,
    state?: Map<string, string>,
  ): Promise<void> {
    const inv: StartedInvocation = {
      id: data.i,
      target: {
        service: lease.service,
        handler: lease.handler,
        ...(lease.key ? { key: lease.key } : {}),
      },
      mode: lease.mode,
      input: lease.input,
      headers: JSON.parse(lease.headers) as Record<string, string>,
      attempt: lease.attempt,
      journal: lease.journal.map((e) => JSON.parse(e) as Entry),
      state: state ?? stateMap(lease.state),
      now: lease.now,
      completions: lease.completions,
      cancelRequested: lease.cancelRequested,
      // An invocation accepted before seeds were drawn has none: its id stands in (as it did then).
      seed: lease.seed || data.i,
    };
    if (Number.isFinite(lease.readyAt)) inv.readyAt = lease.readyAt;
    if (lease.trace !== '') inv.trace = lease.trace;
    if (!Number.isNaN(lease.createdAt)) inv.createdAt = lease.createdAt;
    if (lease.lostAttemptStartedAt !== undefined)
      inv.lostAttemptStartedAt = lease.lostAttemptStartedAt;
    await this.runAttempt(data, ks, inv, lease.epoch, lease.now, local ?? executor);
  }

  /**
   * Runs one leased attempt with the executor: a mailbox job's, or (given the local fast path)
   * one in a fast-path slot, which its completion may pass on to the key's next invocation.
   */
  async runAttempt(
    data: JobData,
    ks: ScriptKeys,
    inv: StartedInvocation,
    epoch: string,
    now: number,
    run: Executor | LocalDispatch,
  ): Promise<void> {
    const t = inv.target;
    const info = {
      invocationId: inv.id,
      service: t.service,
      handler: t.handler,
      attempt: inv.attempt,
    };
    this.ctx.opts.hooks?.afterStart?.(info);
    const inSlot = 'capacity' in run;
    const executor = inSlot ? run.executor : run;
    // The key is busy here: no eager run on it until an attempt leaves its state behind.
    if (data.m === 'exclusive') this.stateCache.drop(stateKey(data.s, data.k));
    const attempt = new RedisAttempt(this.host, ks, data, inv, epoch, now, inSlot);
    const running = this.outcomes.running;
    running.set(inv.id, attempt);
    if (this.outcomes.stopHeld(inv.id)) attempt.stopNow();
    try {
      await executor.run(attempt);
    } finally {
      attempt.stopHeartbeat();
      this.outcomes.listenTo(inv.id, undefined);
      if (running.get(inv.id) === attempt) running.delete(inv.id);
    }
  }

  /**
   * An attempt another process of this store leased, taken over from its handle
   * (`RedisAttempt.handle`: the job and the fencing epoch) with the invocation it was leased
   * with: a push deployment that reaches Redis commits the attempt itself. Its writes are fenced
   * by that epoch, as the leasing process's are; no new lease is taken.
   */
  async adopt(handle: string, inv: StartedInvocation): Promise<Adopted> {
    let h: { d?: JobData; e?: unknown };
    try {
      h = JSON.parse(handle) as typeof h;
    } catch {
      throw new StoreError('not an attempt handle', 'INVALID_ID');
    }
    const d = h.d;
    const p = typeof d?.i === 'string' ? partitionOfId(d.i, this.ctx.opts.partitions) : undefined;
    if (!d || p === undefined || d.i !== inv.id || typeof h.e !== 'string') {
      throw new StoreError(`not a handle of an attempt of ${inv.id.slice(0, 64)}`, 'INVALID_ID');
    }
    // Once per handle: a replayed request finds the marker (kept past any signature's validity).
    const marker = `${this.ctx.keys.part(p)}adopted:${inv.id}:${h.e}`;
    if ((await this.ctx.redis.set(marker, '1', 'PX', ADOPTED_TTL_MS, 'NX')) !== 'OK') {
      throw new StoreError(`the attempt of ${inv.id} was taken over already`, 'INVALID_ID');
    }
    const ks = scriptKeys(this.ctx.keys, p, d);
    const attempt = new RedisAttempt(this.host, ks, d, inv, h.e, inv.now, false);
    return { attempt, release: () => attempt.stopHeartbeat() };
  }

  /**
   * The local fast path, when a completion may lease the key's next invocation to this
   * worker. An attempt completing in a slot of its own passes it on (`inherit`: no capacity check,
   * one attempt ends as the next starts); one run by a mailbox job needs a free slot. As for an
   * accept, the slot is taken only when the script has leased (`run`).
   */
  private nextSlot(inherit: boolean): NextSlot | undefined {
    const local = this.mailbox.freeLocal(inherit);
    if (!local) return undefined;
    const { keys, opts } = this.ctx;
    return {
      workerId: this.ctx.workerId,
      run: (data, lease, state) => {
        const ks = scriptKeys(keys, partitionOfId(data.i, opts.partitions)!, data);
        void this.mailbox.inSlot(local, () =>
          this.runLeased(data, ks, lease, local.executor, local, state),
        );
      },
    };
  }
}
