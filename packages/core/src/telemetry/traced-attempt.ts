/**
 * An {@link Attempt} that tells its {@link AttemptTrace} how it ends: suspended, completed,
 * retried or paused (a fenced or refused attempt tells nothing: its span says so when it ends).
 * A class, not an object of closures: the runtime calls these methods on every step, and one
 * stable shape keeps those call sites fast.
 */
import type { SerializedError } from '../errors.js';
import type { Effect, EntryKind, NewEntry, StateOp } from '../journal/entry.js';
import type { StopSignal } from '../runtime/stop-signal.js';
import type {
  Attempt,
  AttemptListener,
  CommitResult,
  FailureDetail,
  Outcome,
  StartedInvocation,
  SuspendOn,
  Target,
} from '../store.js';
import type { AttemptTrace } from './tracing.js';

/** `attempt`, reporting to `t` once each ending write is done. */
export class TracedAttempt implements Attempt {
  private readonly base: Attempt;
  private readonly t: AttemptTrace;
  readonly invocation: StartedInvocation;
  readonly signal: StopSignal;
  readonly eager: boolean | undefined;
  readonly admits: ((kind: EntryKind) => boolean) | undefined;

  constructor(base: Attempt, t: AttemptTrace) {
    this.base = base;
    this.t = t;
    this.invocation = base.invocation;
    this.signal = base.signal;
    this.eager = base.eager;
    this.admits = base.admits ? (kind): boolean => base.admits!(kind) : undefined;
  }

  storeNow(): number {
    return this.base.storeNow();
  }

  commit(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
  ): Promise<CommitResult> {
    return this.base.commit(from, entries, ops, effects);
  }

  async suspend(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    on: SuspendOn,
  ): Promise<'suspended' | (CommitResult & { cancelled: boolean })> {
    const r = await this.base.suspend(from, entries, ops, effects, on);
    if (r === 'suspended') this.t.suspended(on);
    return r;
  }

  async complete(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    outcome: Outcome,
  ): Promise<void> {
    await this.base.complete(from, entries, ops, effects, outcome);
    this.t.completed(outcome);
  }

  listen(l: AttemptListener): void {
    this.base.listen(l);
  }

  childId(index: number, target: Target, idempotencyKey?: string): string {
    return this.base.childId(index, target, idempotencyKey);
  }

  async retry(failure: SerializedError, delayMs: number, detail?: FailureDetail): Promise<void> {
    await this.base.retry(failure, delayMs, detail);
    this.t.retried(failure, delayMs);
  }

  async pause(failure: SerializedError, detail?: FailureDetail): Promise<void> {
    await this.base.pause(failure, detail);
    this.t.paused(failure);
  }
}
