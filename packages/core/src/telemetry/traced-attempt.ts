/**
 * An attempt that tells its {@link AttemptTrace} how it ends: suspended, completed, retried or
 * paused (a fenced or refused attempt tells nothing: its span says so when it ends).
 */
import type { SerializedError } from '../errors.js';
import type { Effect, NewEntry, StateOp } from '../journal/entry.js';
import type { Attempt, CommitResult, FailureDetail, Outcome, SuspendOn } from '../store.js';
import { AttemptDecorator } from './attempt-decorator.js';
import type { AttemptTrace } from './tracing.js';

/** `base`, reporting to `t` once each ending write is done. */
export class TracedAttempt extends AttemptDecorator {
  private readonly t: AttemptTrace;

  constructor(base: Attempt, t: AttemptTrace) {
    super(base);
    this.t = t;
  }

  override async suspend(
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

  override async complete(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    outcome: Outcome,
  ): Promise<void> {
    await this.base.complete(from, entries, ops, effects, outcome);
    this.t.completed(outcome);
  }

  override async retry(
    failure: SerializedError,
    delayMs: number,
    detail?: FailureDetail,
  ): Promise<void> {
    await this.base.retry(failure, delayMs, detail);
    this.t.retried(failure, delayMs);
  }

  override async pause(failure: SerializedError, detail?: FailureDetail): Promise<void> {
    await this.base.pause(failure, detail);
    this.t.paused(failure);
  }
}
