/**
 * What the store knows of an invocation: the request that starts one, the answer to it, how it
 * ended and what a store reports about it. Shared by every consumer of the store.
 */
import type { SerializedError } from '../errors.js';
import type { Entry } from '../journal/entry.js';

/** What a handler was asked to do. */
export interface Target {
  service: string;
  handler: string;
  /** The object or workflow key; absent for services. */
  key?: string;
}

/** How the target's handler runs (decides locking and workflow semantics). */
export type TargetMode = 'service' | 'exclusive' | 'shared' | 'workflow';

/**
 * A request to start an invocation: from a client (through an ingress, `Store.accept`) or from
 * a handler (a call or a send, carried by an `accept` effect of its commit, with `id` set).
 */
export interface InvocationRequest {
  /**
   * The invocation's id, for one started by a handler: deterministic from the parent's seed and
   * the entry's index, so a replayed call names the same child. `Store.accept` draws a fresh id
   * and ignores this field.
   */
  id?: string;
  target: Target;
  mode: TargetMode;
  /** The input, JSON-encoded (already validated). */
  input: string;
  headers?: Record<string, string>;
  idempotencyKey?: string;
  /** Delay before the invocation may start (ms). */
  delayMs?: number;
  /** For a call between handlers: the invocation and journal index its outcome completes. */
  caller?: { id: string; index: number };
  /**
   * For a call or send between handlers: the invocation and journal index that started it (the
   * admin API's `invokedBy`; kept for operators, nothing else reads it).
   */
  parent?: { id: string; index: number };
  /**
   * The trace context to start the invocation under (W3C `traceparent`, then `;` and the
   * `tracestate` when there is one); kept with the invocation so every attempt, on any worker,
   * continues the same trace.
   */
  trace?: string;
  /** Retention (ms) of the completed record/journal. */
  journalRetentionMs: number;
  /** Retention (ms) of the idempotency record, when an idempotency key is given. */
  idempotencyRetentionMs: number;
  /** Retention (ms) of a workflow's output and state, for `workflow` mode. */
  workflowRetentionMs: number;
}

/** An invocation started by a handler: its id is chosen by the parent (see `Attempt.childId`). */
export type ChildInvocationRequest = InvocationRequest & { id: string };

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
export type Outcome =
  { ok: true; value: string | undefined } | { ok: false; error: SerializedError };

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

/** An invocation named by reference: its idempotency key, or its workflow id. */
export type InvocationRef =
  | { service: string; handler: string; key?: string; idempotencyKey: string }
  | { workflow: string; key: string };
