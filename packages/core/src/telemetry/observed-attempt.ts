/**
 * What watches an attempt: its spans (tracing) and its metrics. The executor hands each attempt
 * to {@link observeAttempt} and runs the attempt it gets back; `end()` once the attempt is over.
 */
import type { Effect } from '../journal/entry.js';
import type { Attempt } from '../store.js';
import type { Metrics, AttemptOutcome } from './metrics.js';
import { tracedAttempt } from './traced-attempt.js';
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
  let a = metered ? metered.attempt : attempt;
  if (trace) a = tracedAttempt(a, trace);
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
class MeteredAttempt {
  readonly attempt: Attempt;
  private readonly m: Metrics;
  private readonly base: Attempt;
  private readonly started = performance.now();
  private outcome: AttemptOutcome | undefined;

  constructor(base: Attempt, m: Metrics) {
    this.base = base;
    this.m = m;
    const inv = base.invocation;
    const { service, handler } = inv.target;
    if (inv.readyAt !== undefined && inv.now >= inv.readyAt)
      m.queueWait(service, handler, (inv.now - inv.readyAt) / 1000);
    const children = (effects: Effect[]): void => {
      for (const e of effects)
        if (e.t === 'accept') m.accepted(e.req.target.service, e.req.target.handler);
    };
    this.attempt = {
      invocation: inv,
      signal: base.signal,
      eager: base.eager,
      storeNow: () => base.storeNow(),
      commit: async (from, entries, ops, effects) => {
        const r = await base.commit(from, entries, ops, effects);
        children(effects);
        return r;
      },
      suspend: async (from, entries, ops, effects, on) => {
        const r = await base.suspend(from, entries, ops, effects, on);
        children(effects);
        if (r === 'suspended') this.outcome = 'suspended';
        return r;
      },
      complete: async (from, entries, ops, effects, outcome) => {
        await base.complete(from, entries, ops, effects, outcome);
        children(effects);
        this.outcome = 'completed';
        m.ended(service, handler, outcome.ok ? 'completed' : 'failed');
        const since = inv.createdAt ?? inv.now;
        m.invocation(service, handler, outcome.ok, Math.max(0, base.storeNow() - since) / 1000);
      },
      listen: (l) => base.listen(l),
      childId: (index, target, idem) => base.childId(index, target, idem),
      retry: async (failure, delayMs, detail) => {
        await base.retry(failure, delayMs, detail);
        this.outcome = 'retry';
        m.retried(service, handler);
      },
      pause: async (failure, detail) => {
        await base.pause(failure, detail);
        this.outcome = 'paused';
      },
    };
    if (base.admits) this.attempt.admits = (kind) => base.admits!(kind);
  }

  end(): void {
    const { service, handler } = this.base.invocation.target;
    const outcome = this.outcome ?? (this.base.eager === true ? 'eager-refused' : 'lease-lost');
    this.m.attempt(service, handler, outcome, (performance.now() - this.started) / 1000);
  }
}
