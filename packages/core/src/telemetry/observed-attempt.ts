/**
 * What watches an attempt: its spans (tracing) and its metrics. The executor hands each attempt
 * to {@link observeAttempt} and runs the attempt it gets back; `end()` once the attempt is over.
 */
import type { SerializedError } from '../errors.js';
import type { Effect, NewEntry, StateOp } from '../journal/entry.js';
import type { Attempt, CommitResult, FailureDetail, Outcome, SuspendOn } from '../store.js';
import { AttemptDecorator } from './attempt-decorator.js';
import type { Metrics, AttemptOutcome } from './metrics.js';
import { TracedAttempt } from './traced-attempt.js';
import type { AttemptTrace, Tracing } from './tracing.js';

/** An attempt as the executor runs it, with its trace (if traced). */
export interface ObservedAttempt {
  attempt: Attempt;
  trace: AttemptTrace | undefined;
  /** The attempt is over (its last write done, or it was fenced off or shut down). */
  end(): void;
}

/** The attempt wrapped for tracing and metrics; undefined when neither watches it. */
export function observeAttempt(
  attempt: Attempt,
  tracing: Tracing | undefined,
  metrics: Metrics | undefined,
): ObservedAttempt | undefined {
  const trace = tracing?.attempt(attempt.invocation, Date.now());
  if (!trace && !metrics) return undefined;
  const metered = metrics ? new MeteredAttempt(attempt, metrics) : undefined;
  let a: Attempt = metered ?? attempt;
  if (trace) a = new TracedAttempt(a, trace);
  return {
    attempt: a,
    trace,
    end(): void {
      metered?.end();
      trace?.end(attempt.signal.aborted, attempt.eager === true);
    },
  };
}

/** Counts and times one attempt: queue wait at its start, its duration and outcome at its end. */
class MeteredAttempt extends AttemptDecorator {
  private readonly m: Metrics;
  private readonly started = performance.now();
  private outcome: AttemptOutcome | undefined;

  constructor(base: Attempt, m: Metrics) {
    super(base);
    this.m = m;
    const inv = this.invocation;
    if (inv.readyAt !== undefined && inv.now >= inv.readyAt)
      m.queueWait(inv.target.service, inv.target.handler, (inv.now - inv.readyAt) / 1000);
  }

  /** Counts the child invocations a write started (calls and sends). */
  private children(effects: Effect[]): void {
    for (const e of effects)
      if (e.t === 'accept') this.m.accepted(e.req.target.service, e.req.target.handler);
  }

  override async commit(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
  ): Promise<CommitResult> {
    const r = await this.base.commit(from, entries, ops, effects);
    this.children(effects);
    return r;
  }

  override async suspend(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    on: SuspendOn,
  ): Promise<'suspended' | (CommitResult & { cancelled: boolean })> {
    const r = await this.base.suspend(from, entries, ops, effects, on);
    this.children(effects);
    if (r === 'suspended') this.outcome = 'suspended';
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
    this.children(effects);
    this.outcome = 'completed';
    const inv = this.invocation;
    const { service, handler } = inv.target;
    this.m.ended(service, handler, outcome.ok ? 'completed' : 'failed');
    const since = inv.createdAt ?? inv.now;
    this.m.invocation(service, handler, outcome.ok, Math.max(0, this.storeNow() - since) / 1000);
  }

  override async retry(
    failure: SerializedError,
    delayMs: number,
    detail?: FailureDetail,
  ): Promise<void> {
    await this.base.retry(failure, delayMs, detail);
    this.outcome = 'retry';
    this.m.retried(this.invocation.target.service, this.invocation.target.handler);
  }

  override async pause(failure: SerializedError, detail?: FailureDetail): Promise<void> {
    await this.base.pause(failure, detail);
    this.outcome = 'paused';
  }

  /** Records the attempt's duration and how it ended (lease lost or eager refused: nothing said). */
  end(): void {
    const { service, handler } = this.invocation.target;
    const outcome = this.outcome ?? (this.eager === true ? 'eager-refused' : 'lease-lost');
    this.m.attempt(service, handler, outcome, (performance.now() - this.started) / 1000);
  }
}
