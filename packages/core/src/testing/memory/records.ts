/** The in-memory store's records: invocations and keys, and the values they share. */
import type { SerializedError } from '../../errors.js';
import type { Completion, Entry } from '../../journal/entry.js';
import type { AttemptListener } from '../../store/attempt.js';
import type { EntryTimes, FailureRecord } from '../../store/detail.js';
import type { InvocationStatus, Outcome, Target, TargetMode } from '../../store/invocation.js';

/** One invocation. */
export interface Rec {
  id: string;
  target: Target;
  mode: TargetMode;
  input: string;
  headers: Record<string, string>;
  seed: string;
  /** The trace context it was accepted under (`InvocationRequest.trace`). */
  trace?: string;
  createdAt: number;
  /** When its status last changed (see {@link setStatus}). */
  modifiedAt: number;
  idempotencyKey?: string;
  /** When a `backing-off` invocation is retried. */
  retryAt?: number;
  status: InvocationStatus;
  /** Attempts that failed with a retryable error (or were lost). */
  failures: number;
  /** An attempt has started (a cancel then asks the handler instead of ending it). */
  started: boolean;
  /** Moves on with every attempt and every fencing operation (pause, kill). */
  epoch: number;
  journal: Entry[];
  completions: Map<number, Completion>;
  signals: Map<string, Completion>;
  signalWaiters: Map<string, number[]>;
  cancelRequested: boolean;
  outcome?: Outcome;
  lastFailure?: SerializedError;
  /** Journal entries (`call`, `attach`) of other invocations waiting for this outcome. */
  callers: { id: string; index: number }[];
  /** The running attempt's receiver of completions and cancellations. */
  listener?: AttemptListener;
  /** Stops the running attempt (it has been fenced off). */
  stop?: () => void;
  timer?: NodeJS.Timeout;
  /** Dedupe records naming this invocation (removed by purge). */
  records: string[];
  /** What an operator sees beyond the above (`inspect`). */
  seen: Seen;
}

/** An invocation's times, parent and last failure, as `inspect` reports them. */
export interface Seen {
  /** Per journal entry. */
  times: EntryTimes[];
  firstStartedAt?: number;
  lastStartedAt?: number;
  completedAt?: number;
  nextRetryAt?: number;
  invokedBy?: { id: string; index: number };
  idempotencyKey?: string;
  restartedFrom?: string;
  failure?: FailureRecord;
}

/** An object's or workflow's key. */
export interface KeySlot {
  state: Map<string, string>;
  /** Exclusive/workflow invocations of the key in acceptance order; the head holds the key. */
  inbox: string[];
  promises: Map<string, Completion>;
  promiseWaiters: Map<string, { id: string; index: number }[]>;
}

export const KILLED: SerializedError = {
  name: 'TerminalError',
  code: 'KILLED',
  message: 'the invocation was killed',
  status: 409,
};
export const CANCELLED: SerializedError = {
  name: 'CancelledError',
  code: 'CANCELLED',
  message: 'Cancelled',
  status: 409,
};
export const PROMISE_TAKEN: Completion = {
  ok: false,
  e: {
    name: 'TerminalError',
    code: 'TERMINAL',
    message: 'the promise was already completed',
    status: 409,
  },
};

/** The completion an outcome gives to the entries waiting for it. */
export function completionOf(o: Outcome): Completion {
  if (!o.ok) return { ok: false, e: o.error };
  return o.value === undefined ? { ok: true } : { ok: true, v: o.value };
}

/** A copy as the store keeps it: through JSON, as a real store would. */
export function stored<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Every status change goes through here: it records the time of the change. */
export function setStatus(rec: Rec, status: InvocationStatus): void {
  if (rec.status === status) return;
  rec.status = status;
  rec.modifiedAt = Date.now();
}

export function isKeyed(mode: TargetMode): boolean {
  return mode === 'exclusive' || mode === 'workflow';
}

export function waitersOf<K, V>(m: Map<K, V[]>, k: K): V[] {
  let a = m.get(k);
  if (!a) m.set(k, (a = []));
  return a;
}
