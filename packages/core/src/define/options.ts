import type { Duration } from './duration.js';

/** Retry policy of an invocation, as in Restate (defaults: 50 ms, ×2, capped at 60 s; 70 attempts, then pause). */
export interface RetryPolicy {
  /** Total attempts, the first included; default 70 (Restate 1.7's). `Infinity` retries forever. */
  maxAttempts?: number;
  /** Delay before the first retry; default 50 ms. */
  initialInterval?: Duration;
  /** Multiplier between retries; default 2. */
  exponentiationFactor?: number;
  /** Cap on the delay; default 60 s. */
  maxInterval?: Duration;
  /** What happens when `maxAttempts` runs out: `pause` (default) or `kill` (fail the invocation). */
  onMaxAttempts?: 'pause' | 'kill';
}

/** Options that apply to a handler, or to every handler of a service. */
export interface HandlerOptions {
  /** Time a waiting handler stays in memory before it suspends; default 1 min. 0 = always suspend. */
  inactivityTimeout?: Duration;
  /** Accepted for Restate compatibility; Latchkey aborts at lease loss instead. */
  abortTimeout?: Duration;
  /** How long idempotency-keyed results are kept; default 24 h. */
  idempotencyRetention?: Duration;
  /** How long a completed invocation's journal and record are kept; default 24 h. */
  journalRetention?: Duration;
  /** Not callable through the ingress, only from other handlers. */
  ingressPrivate?: boolean;
  /** Retry policy for failed attempts. */
  retryPolicy?: RetryPolicy;
}

/** Options of a workflow's `run` handler or of the whole workflow. */
export interface WorkflowOptions extends HandlerOptions {
  /** How long a finished workflow's output, state and promises are kept; default 24 h. */
  workflowRetention?: Duration;
}
