/**
 * The store as its consumers see it: the ingresses ({@link IngressStore}), the admin API
 * ({@link AdminStore}) and the process that runs workers ({@link WorkerStore}). A backend
 * implements all three: {@link Store}. Each consumer depends on the narrowest one it uses.
 */
import type { Completion, Entry } from '../journal/entry.js';
import type { DeploymentInfo } from '../push/deployments.js';
import type { StopSignal } from '../runtime/stop-signal.js';
import type {
  Attempt,
  Executor,
  StartedInvocation,
  WorkerHandle,
  WorkerOptions,
} from './attempt.js';
import type { EventFilter, EventWatch, StoreEvent } from './events.js';
import type { InvocationDetail, RestartOptions, RestartResult } from './detail.js';
import type {
  Accepted,
  InvocationInfo,
  InvocationRef,
  InvocationRequest,
  InvocationStatus,
  Outcome,
} from './invocation.js';
import type {
  InvocationCounts,
  KeyPage,
  KeyQueue,
  ListPage,
  ListQuery,
  PromiseInfo,
} from './listing.js';

/** What the public ingresses (HTTP, WebSocket) ask of the store. */
export interface IngressStore {
  /**
   * Durably accepts an invocation (dedupes by idempotency key / workflow id) and dispatches it.
   * With `awaitOutcome`, `outcome` resolves with the outcome of the invocation the answer names
   * (listening starts before a fresh invocation exists, so no extra read is needed); aborting the
   * signal stops listening.
   */
  accept(
    req: InvocationRequest,
    options?: { awaitOutcome?: StopSignal },
  ): Promise<Accepted & { outcome?: Promise<Outcome> }>;
  /** Resolves with the outcome once the invocation completes. */
  awaitOutcome(invocationId: string, signal?: StopSignal): Promise<Outcome>;
  /** Looks up an invocation (with its journal when asked). */
  describe(invocationId: string, withJournal?: boolean): Promise<InvocationInfo | undefined>;
  /**
   * The invocation an idempotency key or a workflow id names, if any (attach/output by
   * reference).
   */
  lookup(ref: InvocationRef): Promise<string | undefined>;
  /** An invocation's status and the journal entries from `fromIndex` on (for live progress). */
  progress(
    invocationId: string,
    fromIndex: number,
  ): Promise<{ status: InvocationStatus; entries: Entry[] } | undefined>;
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
   * client's, the admin API (an operator) none. False when unknown, completed or the token is
   * wrong.
   */
  cancel(invocationId: string, options?: { token?: string }): Promise<boolean>;
  /**
   * Listens to live events (status changes, journal commits) of the invocations `filter` names,
   * from every process that uses the store: the store hears them once per process, however many
   * listeners it has. Close the watch to stop; a lost event is announced by a `resync` event.
   */
  watchEvents(filter: EventFilter, listener: (e: StoreEvent) => void): EventWatch;
}

/** What the admin API (an operator) asks of the store. */
export interface AdminStore {
  /** Looks up an invocation (with its journal when asked). */
  describe(invocationId: string, withJournal?: boolean): Promise<InvocationInfo | undefined>;
  /**
   * A page of invocations matching a query (see {@link ListQuery}: filters, order, cursor),
   * answered from the store's indexes. An invalid cursor is a `DurableError` of kind
   * `INVALID_CURSOR` (the admin API checks cursors before).
   */
  list(query: ListQuery): Promise<ListPage>;
  /** How many invocations there are, by status and by service (of one service, when given). */
  counts(filter?: { service?: string }): Promise<InvocationCounts>;
  /**
   * A page of the keys of an object or workflow that have state, a holder or an inbox, in byte
   * order of their UTF-8; `cursor` is the `nextCursor` of the previous page.
   */
  listKeys(service: string, page?: { cursor?: string; limit?: number }): Promise<KeyPage>;
  /** A key's holder and the invocations queued behind it, in the order they will run (at most `limit`, default 1,000). */
  keyQueue(service: string, key: string, limit?: number): Promise<KeyQueue>;
  /** The invocation an idempotency key or a workflow id names (see {@link IngressStore.lookup}). */
  lookup(ref: InvocationRef): Promise<string | undefined>;
  /** A workflow run's durable promises (its key's), by name. */
  promises(workflow: string, key: string): Promise<PromiseInfo[]>;
  /** Requests cancellation (see {@link IngressStore.cancel}; the admin passes no token). */
  cancel(invocationId: string, options?: { token?: string }): Promise<boolean>;
  /** Ends an invocation and its call tree at once, failing callers with 409 and freeing its key. */
  kill(invocationId: string): Promise<boolean>;
  /** Pauses an invocation (a running attempt is fenced off). */
  pause(invocationId: string): Promise<boolean>;
  /** Resumes a paused invocation. */
  resume(invocationId: string): Promise<boolean>;
  /** Removes a completed invocation's record, journal and dedupe records now. */
  purge(invocationId: string): Promise<boolean>;
  /** Reads an object's or workflow's committed state. */
  getState(service: string, key: string): Promise<Map<string, string>>;
  /**
   * Patches object state while no exclusive handler holds the key; null deletes. Returns false
   * when the key is busy.
   */
  patchState(service: string, key: string, patch: Record<string, unknown>): Promise<boolean>;
  /** Listens to live events (see {@link IngressStore.watchEvents}). */
  watchEvents(filter: EventFilter, listener: (e: StoreEvent) => void): EventWatch;
  /** Clears all of a key's state while no exclusive handler holds it. False when the key is busy. */
  clearState(service: string, key: string): Promise<boolean>;
  /**
   * An invocation as an operator sees it: journal with per-entry times, completions, input,
   * timestamps, parent, idempotency key and last failure. Undefined when unknown.
   */
  inspect(invocationId: string): Promise<InvocationDetail | undefined>;
  /**
   * Starts a completed invocation again as a new invocation (a fresh id and seed, no idempotency
   * key) with the same target, input and headers; with `keepPrefix`, its journal starts with
   * that many entries of the old one (and their completions), which its first attempt replays
   * (see `prefixProblem` for the prefixes that can be kept). A workflow run is refused (it runs
   * once per workflow id). The old invocation is untouched.
   */
  restartAsNew(invocationId: string, options?: RestartOptions): Promise<RestartResult>;
}

/** What the process that hosts workers asks of the store: its lifecycle. */
export interface WorkerStore {
  /** Checks the backend's preconditions and connects. */
  init(): Promise<void>;
  /** Starts taking work from the mailbox. */
  startWorker(executor: Executor, options?: WorkerOptions): Promise<WorkerHandle>;
  /** Releases connections. */
  close(): Promise<void>;
  /**
   * Reports the store's own work (script latency, the reconciler's sweeps) to `observer` from now
   * on (see docs/METRICS.md); a store without any such work need not implement it.
   */
  observe?(observer: StoreObserver): void;
  /** The mailbox queues' jobs by state, for metrics (a store without queues need not have it). */
  queueDepths?(): Promise<QueueDepth[]>;
  /**
   * The push deployments registered with the engine, shared by all its processes (a store
   * without it serves only the deployments `serve()` is given).
   */
  readonly deployments?: DeploymentRecords;
  /**
   * Takes over an attempt another process leased (its `Attempt.handle`), with the invocation it
   * was leased with; its writes are fenced as the leasing process's. A handle is taken over once
   * (a second adoption, a replayed request, is refused). For push deployments that reach the
   * store (docs/PROTOCOL.md "Direct mode"); a store that cannot need not have it. `release()`
   * once the attempt is over.
   */
  adoptAttempt?(
    handle: string,
    invocation: StartedInvocation,
  ): Promise<{ attempt: Attempt; release(): void }>;
}

/** Where an engine's push deployments are kept (`WorkerStore.deployments`). */
export interface DeploymentRecords {
  /** Every registered deployment. */
  list(): Promise<DeploymentInfo[]>;
  /** Adds a deployment, or replaces the one with its id. */
  put(info: DeploymentInfo): Promise<void>;
  /** Removes a deployment; false when none has that id. */
  remove(id: string): Promise<boolean>;
  /**
   * A token that changes with every `put` and `remove` (readers skip `list` while it has not);
   * a store without one is listed every time.
   */
  version?(): Promise<string>;
}

/** What a store reports to metrics (`WorkerStore.observe`). */
export interface StoreObserver {
  /** A Lua script (or an equivalent backend call) named `name` took `seconds`, round trip. */
  script(name: string, seconds: number): void;
  /**
   * A reconciler sweep of one partition: how far past its deadline the most overdue invocation was
   * (undefined: nothing was overdue), and what it handed out again.
   */
  swept(
    lagMs: number | undefined,
    counts: { dispatch: number; deliver: number; outbox: number },
  ): void;
}

/** One mailbox queue's jobs by state (`WorkerStore.queueDepths`). */
export interface QueueDepth {
  queue: string;
  counts: Record<string, number>;
}

/**
 * Durable storage and mailbox of invocations: the one seam between the pure runtime in
 * `@latchkey/core` and a concrete backend (`@latchkey/redis-store`, or the in-memory store of
 * `@latchkey/core/testing`). Its contract is checked by `storeContract()` from
 * `@latchkey/core/testing`.
 */
export interface Store extends IngressStore, AdminStore, WorkerStore {}
