/**
 * An {@link Attempt} that tells its {@link AttemptTrace} how it ends: suspended, completed,
 * retried or paused (a fenced or refused attempt tells nothing: its span says so when it ends).
 */
import type { Attempt } from '../store.js';
import type { AttemptTrace } from './tracing.js';

/** `attempt`, reporting to `t` once each ending write is done. */
export function tracedAttempt(attempt: Attempt, t: AttemptTrace): Attempt {
  const traced: Attempt = {
    invocation: attempt.invocation,
    signal: attempt.signal,
    eager: attempt.eager,
    storeNow: () => attempt.storeNow(),
    commit: (from, entries, ops, effects) => attempt.commit(from, entries, ops, effects),
    async suspend(from, entries, ops, effects, on) {
      const r = await attempt.suspend(from, entries, ops, effects, on);
      if (r === 'suspended') t.suspended(on);
      return r;
    },
    async complete(from, entries, ops, effects, outcome) {
      await attempt.complete(from, entries, ops, effects, outcome);
      t.completed(outcome);
    },
    listen: (l) => attempt.listen(l),
    childId: (index, target, idem) => attempt.childId(index, target, idem),
    async retry(failure, delayMs, detail) {
      await attempt.retry(failure, delayMs, detail);
      t.retried(failure, delayMs);
    },
    async pause(failure, detail) {
      await attempt.pause(failure, detail);
      t.paused(failure);
    },
  };
  if (attempt.admits) traced.admits = (kind) => attempt.admits!(kind);
  return traced;
}
