import type { Definition, HandlerWrapper, ServiceKind } from '../define/definitions.js';
import type { Duration } from '../define/duration.js';
import type { Opts, SendOpts } from '../define/rpc.js';
import type { DurablePromise } from './durable-promise.js';

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

/** Deterministic randomness, seeded from the invocation's secret random seed (drawn at acceptance). */
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
  run<T>(name: string, action: () => T | Promise<T>, options?: RunOptions): DurablePromise<T>;
  run<T>(action: () => T | Promise<T>, options?: RunOptions): DurablePromise<T>;
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
  sleep(duration: Duration, name?: string): DurablePromise<void>;
  /**
   * A client for a service's handlers: each call is journaled and returns a
   * durable promise of the result (a child's `TerminalError` is rethrown).
   *
   * @example
   * ```ts
   * const greeting = await ctx.serviceClient(greeter).greet({ name: 'Ada' });
   * ```
   */
  serviceClient<D extends Definition<'service', string, unknown>>(
    def: D | { name: D['name'] },
  ): Client<D>;
  /** A client for a virtual object's handlers at `key`. */
  objectClient<D extends Definition<'object', string, unknown>>(
    def: D | { name: D['name'] },
    key: string,
  ): Client<D>;
  /** A client for a workflow's handlers at `key` (`run` starts it once). */
  workflowClient<D extends Definition<'workflow', string, unknown>>(
    def: D | { name: D['name'] },
    key: string,
  ): Client<D>;
  /** A one-way client for a service (optionally delayed with `rpc.sendOpts({ delay })`). */
  serviceSendClient<D extends Definition<'service', string, unknown>>(
    def: D | { name: D['name'] },
  ): SendClient<D>;
  /** A one-way client for a virtual object at `key`. */
  objectSendClient<D extends Definition<'object', string, unknown>>(
    def: D | { name: D['name'] },
    key: string,
  ): SendClient<D>;
  /** A one-way client for a workflow at `key`. */
  workflowSendClient<D extends Definition<'workflow', string, unknown>>(
    def: D | { name: D['name'] },
    key: string,
  ): SendClient<D>;
  /** Calls any handler by name. */
  genericCall<O = unknown>(call: GenericCall): DurablePromise<O>;
  /** Sends to any handler by name. */
  genericSend(send: GenericCall & { delay?: Duration }): InvocationHandle;
  /**
   * Creates an awakeable: an id someone else resolves (through the ingress or
   * `ctx.resolveAwakeable`) and a durable promise of its value.
   */
  awakeable<T = unknown>(): { id: string; promise: DurablePromise<T> };
  /** Resolves someone's awakeable (journaled; delivered exactly once). */
  resolveAwakeable<T>(id: string, payload?: T): void;
  /** Rejects someone's awakeable with a terminal failure. */
  rejectAwakeable(id: string, reason: string): void;
  /** A reference to another invocation: attach to its result or cancel it. */
  invocation<T = unknown>(invocationId: string): InvocationReference<T>;
  /**
   * A named signal of this invocation: a durable promise another handler completes with
   * `ctx.invocation(thisInvocationId).signal(name).resolve(value)` (or `reject`), before or after
   * this handler awaits it (Restate's signals). Combines with `RestatePromise` and `orTimeout`.
   */
  signal<T = unknown>(name: string): DurablePromise<T>;
  /** Requests cancellation of another invocation (Restate's `ctx.cancel`). */
  cancel(invocationId: string): void;
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

/** A workflow's durable promise: resolvable once, by anyone, before or after someone awaits it. */
export interface WorkflowPromise<T> extends DurablePromise<T> {
  /** Waits for the value (journaled); awaiting the promise itself does the same. */
  get(): DurablePromise<T>;
  /** The value if resolved, undefined otherwise (journaled). */
  peek(): Promise<T | undefined>;
  /** Resolves it; a second resolution fails with a 409 `TerminalError`. */
  resolve(value?: T): Promise<void>;
  /** Rejects it; a second resolution fails with a 409 `TerminalError`. */
  reject(reason: string): Promise<void>;
}

/** Context of a workflow's shared handlers. */
export interface WorkflowSharedContext extends ObjectSharedContext {
  /** The workflow's durable promise `name`. */
  promise<T = unknown>(name: string): WorkflowPromise<T>;
}

/** Context of a workflow's `run` handler. */
export interface WorkflowContext extends WorkflowSharedContext, ObjectContext {}

/** A call by name (Restate's `genericCall`). */
export interface GenericCall {
  service: string;
  method: string;
  /** The input: a JSON value, or JSON text as bytes. */
  parameter?: unknown;
  key?: string;
  headers?: Record<string, string>;
  idempotencyKey?: string;
}

/** What a send returns. */
export interface InvocationHandle {
  /** The id of the started invocation. */
  readonly invocationId: Promise<string>;
}

/** A reference to another invocation. */
export interface InvocationReference<T> {
  /** Waits for its result (journaled). */
  attach(): DurablePromise<T>;
  /** Requests its cancellation (journaled). */
  cancel(): void;
  /** Its named signal, to resolve or reject (journaled; the first resolution wins). */
  signal<V = unknown>(name: string): SignalReference<V>;
}

/** Another invocation's named signal (Restate's `ctx.invocation(id).signal(name)`). */
export interface SignalReference<V> {
  /** Completes the signal with a value; the invocation awaiting `ctx.signal(name)` gets it. */
  resolve(value?: V): void;
  /** Fails the signal: the awaiting invocation gets a `TerminalError` with `reason`. */
  reject(reason: string): void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (...args: any[]) => any;
type FnOf<H> = H extends HandlerWrapper<infer F> ? F : H;
type InputOf<F> = F extends AnyFn
  ? Parameters<F> extends [unknown, infer I, ...unknown[]]
    ? I
    : undefined
  : never;
type OutputOf<F> = F extends AnyFn ? Awaited<ReturnType<F>> : never;
type Args<I, O> = [I] extends [undefined] ? [input?: undefined, opts?: O] : [input: I, opts?: O];

/** Typed request-response client of a definition. */
export type Client<D> =
  D extends Definition<ServiceKind, string, infer H>
    ? {
        [K in keyof H]: (
          ...args: Args<InputOf<FnOf<H[K]>>, Opts>
        ) => DurablePromise<OutputOf<FnOf<H[K]>>>;
      }
    : never;

/** Typed one-way client of a definition. */
export type SendClient<D> =
  D extends Definition<ServiceKind, string, infer H>
    ? { [K in keyof H]: (...args: Args<InputOf<FnOf<H[K]>>, SendOpts>) => InvocationHandle }
    : never;
