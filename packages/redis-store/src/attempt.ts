import type {
  FailureDetail,
  Attempt,
  AttemptListener,
  CommitResult,
  Effect,
  NewEntry,
  Outcome,
  SerializedError,
  StartedInvocation,
  StateOp,
  StopSignal,
  SuspendOn,
  Target,
} from '@latchkey/core';
import { Stopper } from '@latchkey/core/internal';
import {
  commitEntries,
  completeInvocation,
  endAttempt,
  renewLease,
  suspendInvocation,
  type FencedWrite,
  type Lease,
  type Wakes,
} from './calls.js';
import { LeaseLostError, fencedError } from './errors.js';
import type { Keys } from './keys.js';
import type { StoreConfig } from './options.js';
import type { ScriptedRedis } from './scripts.js';
import {
  applyOps,
  batchArgs,
  wireEffect,
  type JobData,
  type OutboxItem,
  type ScriptKeys,
} from './wire.js';

/**
 * A local fast-path slot for the key's next invocation, when a completion may lease it to this
 * worker (see `Attempts.nextSlot`).
 */
export interface NextSlot {
  workerId: string;
  run(data: JobData, lease: Lease, state: Map<string, string>): void;
}

/** What an attempt needs of the store: its connection and layout, and a few store services. */
export interface AttemptHost {
  readonly redis: ScriptedRedis;
  readonly keys: Keys;
  readonly opts: StoreConfig;
  /** This process's outcome channel of a partition (its waiters the attempt resolves itself on completion). */
  readonly outcomeChannel: (p: number) => string;
  listen(id: string, listener: AttemptListener | undefined): void;
  childId(parentSeed: string, index: number, target: Target, idempotencyKey?: string): string;
  performOutbox(p: number, member: string): Promise<void>;
  dispatchWakes(wakes: Wakes): Promise<void>;
  dispatch(data: JobData, ds: number, delayMs: number): Promise<void>;
  /** A slot for the key's next invocation (`inherit`: this attempt's own slot passes on). */
  nextSlot(inherit: boolean): NextSlot | undefined;
  resolveWaiters(id: string, outcome: Outcome): void;
  /** Remembers a free key's state as this attempt left it (eager completion). */
  rememberState(service: string, key: string, state: Map<string, string>, epoch: string): void;
  deliverOutcome(id: string): Promise<void>;
}

/** One leased attempt; every write goes through a fenced script. */
export class RedisAttempt implements Attempt {
  private readonly ac = new Stopper();
  private offset: number;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly store: AttemptHost;
  private readonly ks: ScriptKeys;
  private readonly data: JobData;
  readonly invocation: StartedInvocation;
  /** The attempt's fencing epoch: every write is refused once the invocation's differs. */
  readonly epoch: string;
  /** Outbox effects run in order, one after the other. */
  private outbox: Promise<void> = Promise.resolve();

  /** True when the attempt runs in a local fast-path slot (see `RedisStore.nextSlot`). */
  private readonly inSlot: boolean;
  /**
   * The key's committed state: the state leased with the attempt (the handler's context works on
   * a copy) with every batch's ops applied once Redis confirmed it. Exact while the attempt holds
   * the key, so a completion that leases the key's next invocation hands it on.
   */
  private readonly state: Map<string, string>;

  constructor(
    store: AttemptHost,
    ks: ScriptKeys,
    data: JobData,
    invocation: StartedInvocation,
    epoch: string,
    now: number,
    inSlot: boolean,
  ) {
    this.inSlot = inSlot;
    this.state = invocation.state;
    this.store = store;
    this.ks = ks;
    this.data = data;
    this.invocation = invocation;
    this.epoch = epoch;
    this.offset = now - Date.now();
    const lease = store.opts.leaseMs;
    this.heartbeat = setInterval(() => void this.renew(), Math.max(50, Math.floor(lease / 3)));
    this.heartbeat.unref();
  }

  /** The job and the fencing epoch: what `Attempts.adopt` takes the attempt over with. */
  get handle(): string {
    return JSON.stringify({ d: this.data, e: this.epoch });
  }

  get partitions(): number {
    return this.store.opts.partitions;
  }

  get signal(): StopSignal {
    return this.ac;
  }

  listen(listener: AttemptListener): void {
    this.store.listen(this.invocation.id, listener);
  }

  childId(index: number, target: Target, idempotencyKey?: string): string {
    return this.store.childId(this.invocation.seed, index, target, idempotencyKey);
  }

  stopHeartbeat(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Observes the store clock: a reply's time minus the local receive time never overstates the offset. */
  private observe(now: number): void {
    this.offset = Math.max(this.offset, now - Date.now());
  }

  storeNow(): number {
    return Date.now() + this.offset;
  }

  /** Ends the attempt at once: it was killed or paused (its writes are fenced off already). */
  stopNow(): void {
    this.stopHeartbeat();
    if (!this.ac.signal.aborted)
      this.ac.abort(new LeaseLostError(this.invocation.id, 'stopped by kill or pause'));
  }

  private lost(reply: { tag: 'fenced'; why: string }): never {
    const e = fencedError(this.invocation.id, reply);
    this.stopHeartbeat();
    this.ac.abort(e);
    throw e;
  }

  private async renew(): Promise<void> {
    try {
      const r = await renewLease(this.store.redis, this.ks, {
        id: this.invocation.id,
        epoch: this.epoch,
        leaseMs: this.store.opts.leaseMs,
      });
      if (r.tag === 'fenced') this.lost(r);
    } catch {
      // Redis unreachable or lease lost: the lease expires and the reconciler recovers
    }
  }

  /** Script arguments of effects, and the outbox members among them. */
  private effectArgs(effects: Effect[]): { args: (string | number)[][]; members: string[] } {
    const k = this.store.keys;
    const p = this.ks.p;
    const t = this.invocation.target;
    const args: (string | number)[][] = [];
    const members: string[] = [];
    for (const e of effects) {
      switch (e.t) {
        case 'pget':
          args.push([
            'pget',
            k.promises(p, t.service, t.key ?? ''),
            e.name,
            k.promiseWaiters(p, t.service, t.key ?? '', e.name),
            e.index,
          ]);
          break;
        case 'ppeek':
          args.push(['ppeek', k.promises(p, t.service, t.key ?? ''), e.name, '', e.index]);
          break;
        case 'sget':
          args.push(['sget', e.name, '', '', e.index]);
          break;
        case 'presolve':
          args.push([
            'presolve',
            k.promises(p, t.service, t.key ?? ''),
            e.name,
            k.promiseWaiters(p, t.service, t.key ?? '', e.name),
            e.index,
            JSON.stringify(e.completion),
          ]);
          break;
        default: {
          const m = JSON.stringify({
            s: this.invocation.id,
            e: wireEffect(e),
          } satisfies OutboxItem);
          members.push(m);
          args.push(['out', m]);
        }
      }
    }
    return { args, members };
  }

  /** Performs outbox effects after their commit, in order; failures are left to the reconciler. */
  private performOutbox(members: string[]): void {
    if (members.length === 0) return;
    this.outbox = this.outbox.then(async () => {
      for (const m of members) await this.store.performOutbox(this.ks.p, m).catch(() => undefined);
    });
  }

  /** The arguments of a fenced write at `fromIndex` with its batch. */
  private write(fromIndex: number, batch: (string | number)[]): FencedWrite {
    return {
      id: this.invocation.id,
      epoch: this.epoch,
      fromIndex,
      part: this.store.keys.part(this.ks.p),
      graceMs: this.store.opts.graceMs,
      completionChannel: this.store.keys.completionChannel(this.ks.p),
      batch,
    };
  }

  async commit(
    fromIndex: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
  ): Promise<CommitResult> {
    const eff = this.effectArgs(effects);
    const w = this.write(fromIndex, batchArgs(entries, ops, eff.args, fromIndex));
    const r = await commitEntries(this.store.redis, this.ks, w);
    if (r.tag === 'fenced') this.lost(r);
    applyOps(this.state, ops);
    this.observe(r.now);
    const t = this.invocation.target;
    this.store.opts.hooks?.afterCommit?.({
      invocationId: this.invocation.id,
      service: t.service,
      handler: t.handler,
      fromIndex,
      entries,
    });
    this.performOutbox(eff.members);
    await this.store.dispatchWakes(r.wakes);
    return { now: r.now, completions: r.completions };
  }

  async suspend(
    fromIndex: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    on: SuspendOn,
  ): Promise<'suspended' | (CommitResult & { cancelled: boolean })> {
    const eff = this.effectArgs(effects);
    await this.outbox;
    const w = this.write(fromIndex, batchArgs(entries, ops, eff.args, fromIndex));
    const r = await suspendInvocation(this.store.redis, this.ks, {
      ...w,
      wakeAt: on.wakeAt,
      awaiting: on.awaiting,
    });
    if (r.tag === 'fenced') this.lost(r);
    applyOps(this.state, ops);
    this.observe(r.now);
    this.performOutbox(eff.members);
    await this.outbox;
    if (r.tag === 'resume') {
      await this.store.dispatchWakes(r.wakes);
      return { now: r.now, completions: r.completions, cancelled: r.cancelled };
    }
    this.stopHeartbeat();
    await this.store.dispatchWakes(r.wakes);
    // A wake time still to come is a timer the partition's owner fires (see duties.ts).
    if (on.wakeAt !== null && on.wakeAt <= r.now) await this.store.dispatch(this.data, r.ds, 0);
    return 'suspended';
  }

  async complete(
    fromIndex: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    outcome: Outcome,
  ): Promise<void> {
    this.stopHeartbeat();
    const eff = this.effectArgs(effects);
    const t = this.invocation.target;
    // An exclusive invocation hands its key on: with a free local slot, the next one waiting for
    // the key is leased to this worker by the same script (no start script, no mailbox job).
    const exclusive = this.data.m === 'exclusive' || this.data.m === 'workflow';
    const slot = exclusive ? this.store.nextSlot(this.inSlot) : undefined;
    const w = this.write(fromIndex, batchArgs(entries, ops, eff.args, fromIndex));
    const r = await completeInvocation(this.store.redis, this.ks, {
      ...w,
      ok: outcome.ok,
      payload: outcome.ok ? (outcome.value ?? '') : JSON.stringify(outcome.error),
      ownChannel: this.store.outcomeChannel(this.ks.p),
      workerId: slot ? slot.workerId : '',
      leaseMs: this.store.opts.leaseMs,
    });
    if (r.tag === 'fenced') this.lost(r);
    // The script published the outcome to every other watcher; this process's own it resolves here.
    this.store.resolveWaiters(this.invocation.id, outcome);
    this.store.opts.hooks?.afterComplete?.({
      invocationId: this.invocation.id,
      service: t.service,
      handler: t.handler,
    });
    this.performOutbox(eff.members);
    const next = r.nextId;
    if (exclusive) applyOps(this.state, ops);
    if (r.next) slot!.run({ ...this.data, i: next }, r.next, this.state);
    else if (next !== '') await this.store.dispatch({ ...this.data, i: next }, r.nextDs, 0);
    else if (this.data.m === 'exclusive') {
      // The key is free: its state as this invocation left it, at the epoch its fence keeps until
      // someone else writes (for eager completion).
      this.store.rememberState(this.data.s, this.data.k, this.state, this.epoch);
    }
    if (r.notify) await this.store.deliverOutcome(this.invocation.id).catch(() => undefined);
    await this.store.dispatchWakes(r.wakes);
    await this.outbox;
  }

  async retry(failure: SerializedError, delayMs: number, detail?: FailureDetail): Promise<void> {
    await this.end('retry', failure, delayMs, detail);
  }

  async pause(failure: SerializedError, detail?: FailureDetail): Promise<void> {
    await this.end('pause', failure, 0, detail);
  }

  private async end(
    kind: 'retry' | 'pause',
    failure: SerializedError,
    delayMs: number,
    detail: FailureDetail | undefined,
  ): Promise<void> {
    this.stopHeartbeat();
    await this.outbox;
    const r = await endAttempt(this.store.redis, this.ks, {
      id: this.invocation.id,
      epoch: this.epoch,
      kind,
      failureJson: JSON.stringify(failure),
      delayMs: Math.round(delayMs),
      detailJson: detail ? JSON.stringify(detail) : '',
      graceMs: this.store.opts.graceMs,
    });
    if (r.tag === 'fenced') this.lost(r);
    // A backoff is a timer the partition's owner fires (see duties.ts); none is retried at once.
    if (kind === 'retry' && r.delayMs <= 0) await this.store.dispatch(this.data, r.ds, 0);
  }
}
