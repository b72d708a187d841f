import type { Duration } from '../define/duration.js';

/** Retry options of one `ctx.run` step (Restate's names). */
export interface RunOptions {
  /** Attempts of the closure, the first included. When exhausted the step records a TerminalError. */
  maxRetryAttempts?: number;
  /** Stop retrying after this long; the step then records a TerminalError. */
  maxRetryDuration?: Duration;
  /** First retry delay; default 50 ms. */
  initialRetryInterval?: Duration;
  /** Multiplier between delays; default 2. */
  retryIntervalFactor?: number;
  /** Cap on the delay; default 10 s. */
  maxRetryInterval?: Duration;
}

/** Deterministic randomness, seeded from the invocation id. */
export interface Rand {
  /** A float in [0, 1), the same on every replay. */
  random(): number;
  /** A version-4 UUID, the same on every replay. */
  uuidv4(): string;
}

/** Journaled clock. */
export interface ContextDate {
  /** Milliseconds since the epoch, journaled on first execution. */
  now(): Promise<number>;
  /** The journaled time as an ISO string. */
  toJSON(): Promise<string>;
}

/** The request that started this invocation. */
export interface Request {
  /** The invocation id (`inv_…`). */
  readonly id: string;
  /** Headers the caller sent (lower-case names). */
  readonly headers: ReadonlyMap<string, string>;
  /** Headers of the current attempt. */
  readonly attemptHeaders: ReadonlyMap<string, string | string[] | undefined>;
  /** The raw input, JSON-encoded. */
  readonly body: Uint8Array;
  /** The attempt number, starting at 1. */
  readonly attempt: number;
}

/**
 * The context of a service handler. Every method is journaled: on replay it
 * returns what was recorded instead of acting again.
 */
export interface Context {
  /**
   * Runs a side effect once and journals its result.
   *
   * @remarks The closure may run more than once if the worker dies before the
   * result is recorded, but every replay sees the one recorded result. A
   * `TerminalError` thrown by the closure is recorded and rethrown; any other
   * error is retried (per `options`, else by retrying the attempt).
   *
   * @example
   * ```ts
   * const user = await ctx.run('create user', () => db.insert(email));
   * ```
   */
  run<T>(name: string, action: () => T | Promise<T>, options?: RunOptions): Promise<T>;
  run<T>(action: () => T | Promise<T>, options?: RunOptions): Promise<T>;
  /**
   * Sleeps durably. The due time is taken from the store's clock and journaled.
   *
   * @remarks Ends no earlier than requested; survives crashes. While waiting
   * longer than the inactivity timeout, the invocation suspends and holds no memory.
   *
   * @example
   * ```ts
   * await ctx.sleep({ seconds: 3 });
   * ```
   */
  sleep(duration: Duration, name?: string): Promise<void>;
  /** Deterministic randomness. */
  readonly rand: Rand;
  /** Journaled clock. */
  readonly date: ContextDate;
  /** The request that started this invocation. */
  request(): Request;
  /** A console that stays quiet while the handler replays. */
  readonly console: Console;
}

/** Context of a shared (read-only) virtual-object handler. */
export interface ObjectSharedContext extends Context {
  /** The object key. */
  readonly key: string;
  /** Reads a state value (null when absent). Journaled. */
  get<T = unknown>(name: string): Promise<T | null>;
  /** Lists the state keys. Journaled. */
  stateKeys(): Promise<string[]>;
}

/** Context of an exclusive virtual-object handler: may write state. */
export interface ObjectContext extends ObjectSharedContext {
  /**
   * Writes a state value, journaled and committed atomically with the journal.
   *
   * @example
   * ```ts
   * ctx.set('count', ((await ctx.get<number>('count')) ?? 0) + 1);
   * ```
   */
  set<T>(name: string, value: T): void;
  /** Removes one state value. */
  clear(name: string): void;
  /** Removes every state value of this key. */
  clearAll(): void;
}

/** Context of a workflow's shared handlers. */
export type WorkflowSharedContext = ObjectSharedContext;

/** Context of a workflow's `run` handler. */
export type WorkflowContext = ObjectContext;
