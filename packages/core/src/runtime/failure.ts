/** Where an attempt failed: the step a failure came from, kept with the error itself. */
import { isNonDeterminismError } from '../errors.js';
import type { EntryKind } from '../journal/entry.js';
import type { StepRef } from '../store/detail.js';

const steps = new WeakMap<Error, StepRef>();

/**
 * Marks `error` as the failure of the step `step` (a `ctx.run` closure); returns it. The latest
 * mark wins: an error object thrown again (a shared constant) names the step that threw it last.
 */
export function failedInStep(error: Error, step: StepRef): Error {
  steps.set(error, step);
  return error;
}

/**
 * The journal entry an attempt's failure happened at: the step that threw it, or the entry where
 * replay diverged (a non-determinism error names the handler's call there); undefined when the
 * handler failed outside any step.
 */
export function stepOfFailure(error: Error): StepRef | undefined {
  const step = steps.get(error);
  if (step) return step;
  if (isNonDeterminismError(error)) {
    const ref: StepRef = { index: error.index, kind: error.actual.kind as EntryKind };
    if (error.actual.name !== undefined) ref.name = error.actual.name;
    return ref;
  }
  return undefined;
}
