/**
 * The worker's side of the store: an attempt of one invocation as leased to a worker, and the
 * executor that runs it. `@latchkey/core`'s runtime sees a store only through these.
 */
import type { SerializedError } from '../errors.js';
import type { Completion, Effect, Entry, EntryKind, NewEntry, StateOp } from '../journal/entry.js';
import type { SuspendOn } from '../journal/replay-types.js';
import type { FailureDetail } from './detail.js';
import type { StopSignal } from '../runtime/stop-signal.js';
import type { Outcome, Target, TargetMode } from './invocation.js';

/** An invocation as a worker receives it at the start of an attempt. */
export interface StartedInvocation {
  id: string;
  target: Target;
  mode: TargetMode;
  input: string;
  headers: Record<string, string>;
  /** 1 for the first attempt. */
  attempt: number;
  /** The committed journal. */
  journal: Entry[];
  /** Committed state of the key (JSON-encoded values); empty for services. */
  state: Map<string, string>;
  /**
   * Names of state values the key has but `state` leaves out (a push request over its eager-state
   * size): reading one ends the attempt with `Attempt.needState`, to run again with it.
   */
  lazyState?: string[];
  /** The store's clock when the attempt started (ms). */
  now: number;
  /** Completions already delivered to completable entries, by journal index. */
  completions: Map<number, Completion>;
  /** A cancellation was requested (and may not be journaled yet). */
  cancelRequested: boolean;
  /**
   * The invocation's random seed, drawn when it was accepted and kept secret (never sent to a
   * client): `ctx.rand`, awakeable ids and child invocation ids derive from it.
   */
  seed: string;
  /**
   * The trace context the invocation was accepted under (W3C `traceparent`, then `;` and the
   * `tracestate` when there is one): every attempt's span is its child, so all attempts of one
   * invocation form one trace. Absent when nobody traced the request.
   */
  trace?: string;
  /** When the invocation was accepted (store clock, ms), when the store knows it. */
  createdAt?: number;
  /**
   * When the invocation last became ready to run (store clock, ms): the attempt's queue wait is
   * `now - readyAt`. Absent when the store does not know it.
   */
  readyAt?: number;
  /**
   * The previous attempt was lost with its worker (its lease expired): when it started (store
   * clock, ms), so that its span can be recorded by the attempt that took over.
   */
  lostAttemptStartedAt?: number;
}

/** Receives what arrives for a running attempt from outside. */
export interface AttemptListener {
  /** A completion for the completable entry at `index`. */
  completion(index: number, c: Completion): void;
  /** A cancellation request. */
  cancel(): void;
}

/** What a commit returns: the store clock and completions the commit itself produced. */
export interface CommitResult {
  now: number;
  completions: Map<number, Completion>;
}

export type { SuspendOn } from '../journal/replay-types.js';

/**
 * One attempt of one invocation, as leased to a worker by the store. Every write
 * is fenced: once another worker has taken the invocation over, writes reject
 * with a `FENCED` error and `signal` aborts.
 */
export interface Attempt {
  readonly invocation: StartedInvocation;
  /** Aborted when the lease is lost (fenced) or the worker shuts down. */
  readonly signal: StopSignal;
  /**
   * True for an *eager* attempt: one that runs before its invocation is accepted, against state
   * the store expects to be current, to be accepted and completed with its outcome in one store
   * operation. It admits only state reads and writes (see `admits`): before the handler creates
   * any other journal entry (a step, timer, call, send, awakeable, promise), the attempt stops as
   * if it were fenced, so nothing of that entry runs, and the store accepts the invocation the
   * ordinary way. `complete` resolves once the invocation is accepted and completed, and rejects
   * with a `FENCED` error when the store accepted it the ordinary way instead (the handler's
   * console lines are written only in the first case).
   */
  readonly eager?: boolean;
  /**
   * The attempt's policy on new journal entries: false for a kind it may not create (the attempt
   * then stops, as if fenced, before anything of that entry runs). Every kind when absent. An
   * eager attempt admits state entries only (`isStateKind`).
   */
  admits?(kind: EntryKind): boolean;
  /**
   * The store's partition count when its child invocation ids are `childInvocationId`'s (the
   * Redis store's): a push deployment derives the same ids from it. Absent: 1.
   */
  readonly partitions?: number;
  /**
   * A token with which another process of the same store takes this attempt over, its writes
   * fenced as this one's (`Store.adoptAttempt`): a push deployment that reaches the store commits
   * the attempt itself. Absent when the store cannot hand attempts over.
   */
  readonly handle?: string;
  /** The attempt's fencing epoch in the store, when it has one (push requests carry it). */
  readonly epoch?: string;
  /** The store's clock now, never ahead of it (ms). */
  storeNow(): number;
  /** Appends entries at `fromIndex`, applies their state ops and effects atomically. */
  commit(
    fromIndex: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
  ): Promise<CommitResult>;
  /**
   * Commits entries then suspends until the wake time or a completion of an awaited entry.
   * Answers the completions instead when one (or a cancellation) arrived meanwhile.
   */
  suspend(
    fromIndex: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    on: SuspendOn,
  ): Promise<'suspended' | (CommitResult & { cancelled: boolean })>;
  /** Commits entries and the outcome; frees the key and dispatches the next invocation. */
  complete(
    fromIndex: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    outcome: Outcome,
  ): Promise<void>;
  /**
   * The handler read state values the invocation was started without (`lazyState`): the attempt
   * ends here, and is run again with them (push deployments).
   */
  needState?(names: string[]): void;
  /** Registers the receiver of completions and cancellations. */
  listen(listener: AttemptListener): void;
  /** The deterministic id of the invocation started by the entry at `index`. */
  childId(index: number, target: Target, idempotencyKey?: string): string;
  /**
   * Ends this attempt with a retryable failure; the store retries after `delayMs`. `detail`
   * (the attempt, the step it failed in, the stack) is kept as the invocation's last failure.
   */
  retry(failure: SerializedError, delayMs: number, detail?: FailureDetail): Promise<void>;
  /**
   * Ends this attempt and pauses the invocation (retries exhausted with
   * `onMaxAttempts: 'pause'`); `detail` as for {@link Attempt.retry}.
   */
  pause(failure: SerializedError, detail?: FailureDetail): Promise<void>;
}

/** Runs attempts: what a worker hands each leased invocation to. */
export interface Executor {
  /** Runs one attempt to its end (completion, suspension, retry or lease loss). */
  run(attempt: Attempt): Promise<void>;
  /** Asks attempts that are only waiting on timers to suspend now (graceful shutdown). */
  hurry(): void;
}

/** Options a worker is started with. */
export interface WorkerOptions {
  /**
   * Invocations run at once by this worker, per mailbox shard (the local fast path takes up to
   * this × shards).
   */
  concurrency?: number;
}

/** A running worker. */
export interface WorkerHandle {
  /** Stops taking work, lets running attempts finish (up to `timeoutMs`), then stops. */
  close(timeoutMs?: number): Promise<void>;
}
