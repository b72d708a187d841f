/**
 * What an operator sees of one invocation beyond {@link InvocationInfo}: its timestamps, who
 * invoked it, where its last failed attempt failed, when each journal entry was recorded, and how
 * a completed invocation is restarted as a new one. Shared by every store and the admin API.
 */
import type { SerializedError } from '../errors.js';
import type { Completion, Entry, EntryKind } from '../journal/entry.js';
import type { InvocationInfo } from './invocation.js';

/** A journal entry named by its index, kind and name: where an attempt failed. */
export interface StepRef {
  index: number;
  kind: EntryKind;
  /** The entry's name (a step's name), when it has one. */
  name?: string;
}

/** The longest failure message a store keeps (characters); longer ones are cut. */
export const MAX_FAILURE_MESSAGE = 4096;
/** The longest failure stack a store keeps (characters); longer ones are cut. */
export const MAX_FAILURE_STACK = 8192;

/**
 * What the runtime tells the store about a failed attempt beside its serialized error (see
 * `Attempt.retry` and `Attempt.pause`). Bounded: a store keeps it as given.
 */
export interface FailureDetail {
  /** The attempt that failed (1 for the first). */
  attempt: number;
  /** The journal entry the attempt was running when it failed; absent outside any step. */
  step?: StepRef;
  /** The error's stack, at most {@link MAX_FAILURE_STACK} characters. */
  stack?: string;
}

/** The last failed attempt of an invocation, as a store keeps it. */
export interface FailureRecord {
  /** The attempt that failed (1 for the first). */
  attempt: number;
  /** When it failed (store clock, ms); absent for failures stored before it was kept. */
  at?: number;
  /** The journal entry it was running; absent when the handler failed outside a step. */
  step?: StepRef;
  /** The failure, with its stack when one was kept. */
  error: SerializedError & { stack?: string };
}

/** When a journal entry was recorded and, for a step, how long its closure ran. */
export interface EntryTimes {
  /** When the entry was committed (store clock, ms); absent when the store did not keep it. */
  recordedAt?: number;
  /** How long a step's closure ran (ms), as the runtime measured it. */
  stepMs?: number;
  /** When a completable entry's completion arrived (store clock, ms), when known. */
  completedAt?: number;
}

/** An invocation with everything an operator may want to see (see `AdminStore.inspect`). */
export interface InvocationDetail extends InvocationInfo {
  journal: Entry[];
  /** Per journal entry, in journal order (shorter when a store kept no times for the tail). */
  times: EntryTimes[];
  /** Completions of completable entries, by journal index. */
  completions: Map<number, Completion>;
  /** The input as stored (JSON text, or base64 when the handler's serde is not JSON). */
  input?: string;
  /** When its first and its latest attempt started (store clock, ms). */
  firstStartedAt?: number;
  lastStartedAt?: number;
  /** When it completed (store clock, ms). */
  completedAt?: number;
  /** When it is retried next, while backing off (store clock, ms). */
  nextRetryAt?: number;
  /** The handler invocation that called or sent it, and the journal index of that entry. */
  invokedBy?: { id: string; index: number };
  idempotencyKey?: string;
  /** The invocation this one was restarted from (`restartAsNew`). */
  restartedFrom?: string;
  /**
   * The trace its spans belong to (W3C trace id, 32 hex digits), when it was accepted under a
   * trace context (a client's `traceparent`, or tracing on in the accepting process).
   */
  traceId?: string;
  /** Where and how its last failed attempt failed. */
  failure?: FailureRecord;
}

/** Options of `AdminStore.restartAsNew`. */
export interface RestartOptions {
  /** Journal entries of the old invocation the new one starts with (default 0). */
  keepPrefix?: number;
}

/** The answer of `AdminStore.restartAsNew`. */
export type RestartResult =
  | { ok: true; invocationId: string }
  | {
      ok: false;
      /**
       * `gone`: no such invocation; `not-completed`: it has not completed; `workflow`: it is a
       * workflow run (run once per workflow id); `prefix`: the prefix cannot be kept.
       */
      reason: 'gone' | 'not-completed' | 'workflow' | 'prefix';
      message: string;
    };

/** Entry kinds whose result arrives as a completion from outside the journal. */
const COMPLETED_FROM_OUTSIDE: ReadonlySet<EntryKind> = new Set<EntryKind>([
  'call',
  'attach',
  'awk',
  'sig',
  'pget',
  'ppeek',
  'presolve',
]);

/**
 * Why the first `n` entries of a completed invocation's journal cannot start a new invocation,
 * or undefined when they can. A new run replays a kept entry from its recorded result, so every
 * kept entry must hold its result: a kept call, attach, awakeable, signal or promise entry needs
 * its completion; a cancellation (`signal`) is never kept (the new run would start cancelled).
 * Kept state writes are not applied again (the key's state is what it is now).
 */
export function prefixProblem(
  journal: readonly Entry[],
  completions: ReadonlyMap<number, Completion>,
  n: number,
): string | undefined {
  if (!Number.isSafeInteger(n) || n < 0) return 'keepPrefix must be a whole number, at least 0';
  if (n > journal.length) {
    return `keepPrefix ${n} is longer than the journal (${journal.length} entries)`;
  }
  for (let i = 0; i < n; i++) {
    const e = journal[i]!;
    if (e.k === 'signal') return `entry ${i} is a cancellation: keep at most ${i} entries`;
    if (COMPLETED_FROM_OUTSIDE.has(e.k) && !completions.has(i)) {
      return `entry ${i} (${e.k}) has no result: keep at most ${i} entries`;
    }
  }
  return undefined;
}

/** A failure's detail for the store: the attempt, the step, the stack cut to its bound. */
export function failureDetail(
  attempt: number,
  error: Error,
  step: StepRef | undefined,
): FailureDetail {
  const d: FailureDetail = { attempt };
  if (step) d.step = step;
  if (typeof error.stack === 'string' && error.stack !== '') {
    d.stack = error.stack.slice(0, MAX_FAILURE_STACK);
  }
  return d;
}

/** A serialized error with its message cut to {@link MAX_FAILURE_MESSAGE}. */
export function boundedError(e: SerializedError): SerializedError {
  if (e.message.length <= MAX_FAILURE_MESSAGE) return e;
  return { ...e, message: e.message.slice(0, MAX_FAILURE_MESSAGE) + '…' };
}
