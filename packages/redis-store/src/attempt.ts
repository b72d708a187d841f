import type {
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
import { LeaseLostError } from './errors.js';
import type { RedisStore } from './store.js';
import { applyOps, batchArgs, parseCompletions, type JobData, type OutboxItem, type ScriptKeys, wireEffect } from './wire.js';

/** One leased attempt; every write goes through a fenced script. */
export class RedisAttempt implements Attempt {
  private readonly ac = new Stopper();
  private offset: number;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly store: RedisStore;
  private readonly ks: ScriptKeys;
  private readonly data: JobData;
  readonly invocation: StartedInvocation;
  private readonly epoch: string;
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

  constructor(store: RedisStore, ks: ScriptKeys, data: JobData, invocation: StartedInvocation, epoch: string, now: number, inSlot: boolean) {
    this.inSlot = inSlot;
    this.state = invocation.state;
    this.store = store;
    this.ks = ks;
    this.data = data;
    this.invocation = invocation;
    this.epoch = epoch;
    this.offset = now - Date.now();
    const lease = store.options.leaseMs;
    this.heartbeat = setInterval(() => void this.renew(), Math.max(50, Math.floor(lease / 3)));
    this.heartbeat.unref();
  }

  get signal(): StopSignal {
    return this.ac;
  }

  listen(listener: AttemptListener): void {
    this.store.listenTo(this.invocation.id, listener);
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
    if (!this.ac.signal.aborted) this.ac.abort(new LeaseLostError(this.invocation.id, 'stopped by kill or pause'));
  }

  private lost(reason: string): never {
    const e = new LeaseLostError(this.invocation.id, reason);
    this.stopHeartbeat();
    this.ac.abort(e);
    throw e;
  }

  private async renew(): Promise<void> {
    try {
      const r = (await this.store.redis.renewLease(
        this.ks.inv, this.ks.fence, this.ks.due, this.invocation.id, this.epoch, this.store.options.leaseMs,
      )) as string[];
      if (r[0] === 'fenced') this.lost(r[1] ?? 'fenced');
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
          args.push(['pget', k.promises(p, t.service, t.key ?? ''), e.name, k.promiseWaiters(p, t.service, t.key ?? '', e.name), e.index]);
          break;
        case 'ppeek':
          args.push(['ppeek', k.promises(p, t.service, t.key ?? ''), e.name, '', e.index]);
          break;
        case 'sget':
          args.push(['sget', e.name, '', '', e.index]);
          break;
        case 'presolve':
          args.push([
            'presolve', k.promises(p, t.service, t.key ?? ''), e.name, k.promiseWaiters(p, t.service, t.key ?? '', e.name),
            e.index, JSON.stringify(e.completion),
          ]);
          break;
        default: {
          const m = JSON.stringify({ s: this.invocation.id, e: wireEffect(e) } satisfies OutboxItem);
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

  async commit(fromIndex: number, entries: NewEntry[], ops: StateOp[], effects: Effect[]): Promise<CommitResult> {
    const eff = this.effectArgs(effects);
    const k = this.store.keys;
    const r = (await this.store.redis.commitEntries(
      this.ks.inv, this.ks.journal, this.ks.state, this.ks.fence,
      this.invocation.id, this.epoch, fromIndex, k.part(this.ks.p), this.store.options.graceMs, k.completionChannel,
      ...batchArgs(entries, ops, eff.args),
    )) as unknown[];
    if (r[0] !== 'ok') this.lost(String(r[1]));
    applyOps(this.state, ops);
    const now = Number(r[1]);
    this.observe(now);
    const t = this.invocation.target;
    this.store.options.hooks?.afterCommit?.({ invocationId: this.invocation.id, service: t.service, handler: t.handler, fromIndex, entries });
    this.performOutbox(eff.members);
    await this.store.dispatchWakes(r[3]);
    return { now, completions: parseCompletions(r[2]) };
  }

  async suspend(
    fromIndex: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    on: SuspendOn,
  ): Promise<'suspended' | (CommitResult & { cancelled: boolean })> {
    const eff = this.effectArgs(effects);
    const k = this.store.keys;
    await this.outbox;
    const r = (await this.store.redis.suspendInvocation(
      this.ks.inv, this.ks.journal, this.ks.state, this.ks.fence, this.ks.due,
      this.invocation.id, this.epoch, fromIndex, on.wakeAt === null ? '' : on.wakeAt, this.store.options.graceMs,
      k.part(this.ks.p), k.completionChannel, on.awaiting.length, ...on.awaiting,
      ...batchArgs(entries, ops, eff.args),
    )) as unknown[];
    if (r[0] === 'fenced') this.lost(String(r[1]));
    applyOps(this.state, ops);
    const now = Number(r[1]);
    this.observe(now);
    this.performOutbox(eff.members);
    await this.outbox;
    if (r[0] === 'resume') {
      await this.store.dispatchWakes(r[3]);
      return { now, completions: parseCompletions(r[2]), cancelled: Number(r[4]) === 1 };
    }
    this.stopHeartbeat();
    await this.store.dispatchWakes(r[3]);
    if (on.wakeAt !== null) await this.store.redispatch(this.data, Number(r[2]), on.wakeAt - now);
    return 'suspended';
  }

  async complete(fromIndex: number, entries: NewEntry[], ops: StateOp[], effects: Effect[], outcome: Outcome): Promise<void> {
    this.stopHeartbeat();
    const eff = this.effectArgs(effects);
    const k = this.store.keys;
    const t = this.invocation.target;
    // An exclusive invocation hands its key on: with a free local slot, the next one waiting for
    // the key is leased to this worker by the same script (no start script, no mailbox job).
    const exclusive = this.data.m === 'exclusive' || this.data.m === 'workflow';
    const slot = exclusive ? this.store.nextSlot(this.inSlot) : undefined;
    const r = (await this.store.redis.completeInvocation(
      this.ks.inv, this.ks.journal, this.ks.state, this.ks.fence, this.ks.due, this.ks.inbox,
      this.invocation.id, this.epoch, fromIndex,
      outcome.ok ? 'ok' : 'err',
      outcome.ok ? (outcome.value ?? '') : JSON.stringify(outcome.error),
      k.part(this.ks.p), this.store.options.graceMs, this.store.ownOutcomeChannel, k.completionChannel,
      slot ? slot.workerId : '', this.store.options.leaseMs,
      ...batchArgs(entries, ops, eff.args),
    )) as unknown[];
    const leasedNext = Array.isArray(r[5]) ? (r[5] as unknown[]) : undefined;
    if (r[0] !== 'ok') this.lost(String(r[1]));
    // The script published the outcome to every other watcher; this process's own it resolves here.
    this.store.resolveWaiters(this.invocation.id, outcome);
    this.store.options.hooks?.afterComplete?.({ invocationId: this.invocation.id, service: t.service, handler: t.handler });
    this.performOutbox(eff.members);
    const next = String(r[1]);
    if (exclusive) applyOps(this.state, ops);
    if (leasedNext) slot!.run({ ...this.data, i: next }, leasedNext, this.state);
    else if (next !== '') await this.store.redispatch({ ...this.data, i: next }, Number(r[2]), 0);
    else if (this.data.m === 'exclusive') {
      // The key is free: its state as this invocation left it, at the epoch its fence keeps until
      // someone else writes (for eager completion).
      this.store.rememberState(this.data.s, this.data.k, this.state, this.epoch);
    }
    if (Number(r[3]) === 1) await this.store.deliverOutcome(this.invocation.id).catch(() => undefined);
    await this.store.dispatchWakes(r[4]);
    await this.outbox;
  }

  async retry(failure: SerializedError, delayMs: number): Promise<void> {
    await this.end('retry', failure, delayMs);
  }

  async pause(failure: SerializedError): Promise<void> {
    await this.end('pause', failure, 0);
  }

  private async end(kind: 'retry' | 'pause', failure: SerializedError, delayMs: number): Promise<void> {
    this.stopHeartbeat();
    await this.outbox;
    const r = (await this.store.redis.endAttempt(
      this.ks.inv, this.ks.fence, this.ks.due,
      this.invocation.id, this.epoch, kind, JSON.stringify(failure), Math.round(delayMs), this.store.options.graceMs,
    )) as (string | number)[];
    if (r[0] !== 'ok') this.lost(String(r[1]));
    if (kind === 'retry') await this.store.redispatch(this.data, Number(r[1]), Number(r[2]));
  }
}
