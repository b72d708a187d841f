import type { SerializedError } from './errors.js';
import type { Completion, Effect, Entry, NewEntry, OutgoingInvocation, StateOp } from './journal/entry.js';
import type { StopSignal } from './runtime/stop-signal.js';

/** What a handler was asked to do. */
export interface Target {
  service: string;
  handler: string;
  /** The object or workflow key; absent for services. */
  key?: string;
}

/** How the target's handler runs (decides locking and workflow semantics). */
export type TargetMode = 'service' | 'exclusive' | 'shared' | 'workflow';

/** A request to start an invocation. */
export interface InvocationRequest {
  target: Target;
  mode: TargetMode;
  /** The input, JSON-encoded (already validated). */
  input: string;
  headers?: Record<string, string>;
  idempotencyKey?: string;
  /** Delay before the invocation may start (ms). */
  delayMs?: number;
  /** Retention (ms) of the completed record/journal. */
  journalRetentionMs: number;
  /** Retention (ms) of the idempotency record, when an idempotency key is given. */
  idempotencyRetentionMs: number;
  /** Retention (ms) of a workflow's output and state, for `workflow` mode. */
  workflowRetentionMs: number;
}

/** The answer to {@link InvocationRequest}. */
export interface Accepted {
  invocationId: string;
  /** `PreviouslyAccepted` when an idempotency key or workflow id matched an earlier invocation. */
  status: 'Accepted' | 'PreviouslyAccepted';
  /** Why an earlier invocation matched: its idempotency key or its workflow id. */
  reason?: 'idempotency' | 'workflow';
  /**
   * For a fresh invocation (status `Accepted`) created by this request: the proof that the
   * requester started it, which lets it cancel the invocation through the public ingress (see
   * `Store.cancel`). Absent when an earlier invocation matched.
   */
  cancelToken?: string;
}

/** How an invocation ended. */
export type Outcome = { ok: true; value: string | undefined } | { ok: false; error: SerializedError };

/** Lifecycle states of an invocation. */
export type InvocationStatus =
  | 'delayed' // accepted with a delay that has not passed yet
  | 'queued' // accepted, waiting behind other invocations of its key
  | 'ready' // dispatched to the mailbox, not yet picked up
  | 'running'
  | 'suspended'
  | 'backing-off'
  | 'paused'
  | 'completed';

/** What a store reports about one invocation. */
export interface InvocationInfo {
  id: string;
  target: Target;
  mode: TargetMode;
  status: InvocationStatus;
  /** Attempts that failed (retryable errors) or were lost with their workers so far. */
  attempts: number;
  createdAt: number;
  lastFailure?: SerializedError;
  outcome?: Outcome;
  journal?: Entry[];
}

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

/** What the attempt awaits when it suspends. */
export interface SuspendOn {
  /** Earliest due sleep (store clock), if any. */
  wakeAt: number | null;
  /** Indices of pending completable entries (calls, awakeables, promises…). */
  awaiting: number[];
}

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
   * operation. It may only read and write state: before the handler creates any other journal
   * entry (a step, timer, call, send, awakeable, promise), the runner stops the attempt as if it
   * were fenced, so nothing of that entry runs, and the store accepts the invocation the
   * ordinary way. `complete` resolves once the invocation is accepted and completed, and rejects
   * with a `FENCED` error when the store accepted it the ordinary way instead (the handler's
   * console lines are written only in the first case).
   */
  readonly eager?: boolean;
  /** The store's clock now, never ahead of it (ms). */
  storeNow(): number;
  /** Appends entries at `fromIndex`, applies their state ops and effects atomically. */
  commit(fromIndex: number, entries: NewEntry[], ops: StateOp[], effects: Effect[]): Promise<CommitResult>;
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
  complete(fromIndex: number, entries: NewEntry[], ops: StateOp[], effects: Effect[], outcome: Outcome): Promise<void>;
  /** Registers the receiver of completions and cancellations. */
  listen(listener: AttemptListener): void;
  /** The deterministic id of the invocation started by the entry at `index`. */
  childId(index: number, target: Target, idempotencyKey?: string): string;
  /** Ends this attempt with a retryable failure; the store retries after `delayMs`. */
  retry(failure: SerializedError, delayMs: number): Promise<void>;
  /** Ends this attempt and pauses the invocation (retries exhausted with `onMaxAttempts: 'pause'`). */
  pause(failure: SerializedError): Promise<void>;
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
  /** Invocations run at once by this worker, per mailbox shard (the local fast path takes up to this × shards). */
  concurrency?: number;
}

/** A running worker. */
export interface WorkerHandle {
  /** Stops taking work, lets running attempts finish (up to `timeoutMs`), then stops. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Durable storage and mailbox of invocations: the one seam between the pure
 * runtime in `@latchkey/core` and a concrete backend (`@latchkey/redis-store`).
 */
export interface Store {
  /** Checks the backend's preconditions and connects. */
  init(): Promise<void>;
  /**
   * Durably accepts an invocation (dedupes by idempotency key / workflow id) and dispatches it.
   * With `awaitOutcome`, `outcome` resolves with the outcome of the invocation the answer names
   * (listening starts before a fresh invocation exists, so no extra read is needed); aborting the
   * signal stops listening.
   */
  accept(req: InvocationRequest, options?: { awaitOutcome?: StopSignal }): Promise<Accepted & { outcome?: Promise<Outcome> }>;
  /** Resolves with the outcome once the invocation completes. */
  awaitOutcome(invocationId: string, signal?: StopSignal): Promise<Outcome>;
  /** Looks up an invocation (with its journal when asked). */
  describe(invocationId: string, withJournal?: boolean): Promise<InvocationInfo | undefined>;
  /** The invocation an idempotency key or a workflow id names, if any (for attach/output by reference). */
  lookup(ref: { service: string; handler: string; key?: string; idempotencyKey: string } | { workflow: string; key: string }): Promise<string | undefined>;
  /** An invocation's status and the journal entries from `fromIndex` on (for live progress). */
  progress(invocationId: string, fromIndex: number): Promise<{ status: InvocationStatus; entries: Entry[] } | undefined>;
  /** Reads an object's or workflow's committed state. */
  getState(service: string, key: string): Promise<Map<string, string>>;
  /**
   * Resolves or rejects an awakeable: only the awakeable entry whose recorded id is exactly
   * `awakeableId`, once. `'refused'` when there is no such awakeable waiting (unknown, not yet
   * committed, already completed, or the invocation completed), `'full'` when the invocation holds
   * the most completions a client may deliver to it.
   */
  resolveAwakeable(awakeableId: string, completion: Completion): Promise<'ok' | 'refused' | 'full'>;
  /**
   * Requests cancellation (propagated to child calls). With `token`, only when it is the
   * invocation's cancel token (see {@link Accepted.cancelToken}): the public ingress passes the
   * client's, the admin API (an operator) none. False when unknown, completed or the token is wrong.
   */
  cancel(invocationId: string, options?: { token?: string }): Promise<boolean>;
  /** Ends an invocation and its call tree at once, failing callers with 409 and freeing its key. */
  kill(invocationId: string): Promise<boolean>;
  /** Pauses an invocation (a running attempt is fenced off). */
  pause(invocationId: string): Promise<boolean>;
  /** Resumes a paused invocation. */
  resume(invocationId: string): Promise<boolean>;
  /** Removes a completed invocation's record, journal and dedupe records now. */
  purge(invocationId: string): Promise<boolean>;
  /** Lists invocations (filters are exact matches). */
  list(filter: { service?: string; key?: string; status?: InvocationStatus; limit?: number }): Promise<InvocationInfo[]>;
  /** Patches object state while no exclusive handler holds the key; null deletes. Returns false when the key is busy. */
  patchState(service: string, key: string, patch: Record<string, unknown>): Promise<boolean>;
  /** Starts taking work from the mailbox. */
  startWorker(executor: Executor, options?: WorkerOptions): Promise<WorkerHandle>;
  /** Releases connections. */
  close(): Promise<void>;
}
