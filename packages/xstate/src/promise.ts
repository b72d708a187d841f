/**
 * `fromPromise`: XState's promise actor, made durable. Inside a Latchkey
 * actor the promise does not run in the handler that invoked it: the invoke is
 * journaled as a message to the object's own `_promise` handler, which runs the
 * creator as a durable step (`ctx.run`) and sends its result back as the
 * actor's done/error event. Outside Latchkey (a plain `createActor`, e.g. in a
 * unit test of the machine) it behaves like XState's own `fromPromise`.
 */
import type { ActorSystem, AnyActorRef, NonReducibleUnknown, PromiseActorLogic } from 'xstate';
import type { RunOptions } from '@latchkey/core';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyActorSystem = ActorSystem<any>;

/** Event that completes a durable promise actor (sent by the `_settle` handler). */
export const PROMISE_RESOLVE = 'latchkey.promise.resolve';
/** Event that fails a durable promise actor (sent by the `_settle` handler). */
export const PROMISE_REJECT = 'latchkey.promise.reject';
/** Event that records the token of the journaled invocation of the promise. */
const PROMISE_SENT = 'latchkey.promise.sent';
const XSTATE_STOP = 'xstate.stop';

const LOGIC = Symbol.for('latchkey.xstate.promiseLogic');

/** What a promise creator receives. */
export interface PromiseArgs<TInput> {
  /** The invoke's input. */
  input: TInput;
  /** Aborted when the invoking state is left (outside Latchkey only; a durable step runs to its end). */
  signal: AbortSignal;
  /** The object key of the actor (`''` outside Latchkey). */
  key: string;
  /**
   * The id of the invocation running this promise: the same on every retry, so
   * it makes a good idempotency key for the side effect.
   */
  invocationId: string;
}

/** The function a promise actor runs. */
export type PromiseCreator<TOutput, TInput> = (args: PromiseArgs<TInput>) => PromiseLike<TOutput>;

/** Options of {@link fromPromise}. */
export interface FromPromiseOptions {
  /**
   * Retry bounds of the durable step. By default a failure that is not a
   * `TerminalError` is retried forever (with backoff) and only a `TerminalError`
   * reaches the machine as an error event; with `maxRetryAttempts` or
   * `maxRetryDuration` the exhausted retries become the error event.
   */
  retry?: RunOptions;
}

/** The durable part of a promise actor: what the `_promise` handler runs. */
export interface DurablePromiseLogic {
  creator: PromiseCreator<unknown, unknown>;
  options: FromPromiseOptions;
}

/** The persisted snapshot of a durable promise actor. */
export interface DurablePromiseSnapshot {
  status: 'active' | 'done' | 'error' | 'stopped';
  output: unknown;
  error: unknown;
  input: unknown;
  /** Token of the journaled invocation running it; results carrying another token are stale. */
  token?: string;
}

/** What the Latchkey session offers a promise actor that starts (see actor.ts). */
export interface PromiseHost {
  /** Journals the invocation of the promise; returns its token. */
  invokePromise(self: AnyActorRef, input: unknown): string;
}

const hosts = new WeakMap<AnyActorSystem, PromiseHost>();

/** Binds an actor system to the Latchkey session running it. */
export function bindHost(system: AnyActorSystem, host: PromiseHost): void {
  hosts.set(system, host);
}

/** The durable part of a logic created by {@link fromPromise}, if it is one. */
export function durableLogicOf(logic: unknown): DurablePromiseLogic | undefined {
  if (typeof logic !== 'object' || logic === null) return undefined;
  return (logic as { [LOGIC]?: DurablePromiseLogic })[LOGIC];
}

type Ev = { type: string; token?: string; output?: unknown; error?: unknown };

/**
 * Creates a promise actor logic, as XState's `fromPromise`, whose promise runs
 * as a durable step when the machine runs as a Latchkey object.
 *
 * @example
 * ```ts
 * const machine = setup({
 *   actors: {
 *     charge: fromPromise(async ({ input, invocationId }: PromiseArgs<{ amount: number }>) =>
 *       await payments.charge(input.amount, { idempotencyKey: invocationId })),
 *   },
 * }).createMachine({ ... invoke: { src: 'charge', input: ..., onDone: 'paid', onError: 'failed' } ... });
 * ```
 *
 * @remarks Register promise actors by name in `setup({ actors })` (or inline in
 * `invoke.src`): the `_promise` handler finds the creator again by that name,
 * possibly in another process. The output and error must be JSON values.
 */
export function fromPromise<TOutput, TInput = NonReducibleUnknown>(
  creator: PromiseCreator<TOutput, TInput>,
  options: FromPromiseOptions = {},
): PromiseActorLogic<TOutput, TInput> {
  const controllers = new WeakMap<AnyActorRef, AbortController>();
  const logic = {
    config: creator,
    transition(
      state: DurablePromiseSnapshot,
      event: Ev,
      scope: { self: AnyActorRef },
    ): DurablePromiseSnapshot {
      if (state.status !== 'active') return state;
      switch (event.type) {
        case PROMISE_SENT:
          return { ...state, token: event.token! };
        case PROMISE_RESOLVE:
          if (event.token !== state.token) return state;
          return { ...state, status: 'done', output: event.output, input: undefined };
        case PROMISE_REJECT:
          if (event.token !== state.token) return state;
          return { ...state, status: 'error', error: event.error, input: undefined };
        case XSTATE_STOP:
          controllers.get(scope.self)?.abort(); // only set outside Latchkey
          return { ...state, status: 'stopped', input: undefined };
        default:
          return state;
      }
    },
    start(
      state: DurablePromiseSnapshot,
      scope: { self: AnyActorRef; system: AnyActorSystem },
    ): void {
      const { self, system } = scope;
      if (state.status !== 'active' || state.token !== undefined) return;
      const host = hosts.get(system);
      if (host) {
        // Durable: journal the invocation; the result comes back as an event.
        const token = host.invokePromise(self, state.input);
        (system as unknown as { _relay(s: AnyActorRef, t: AnyActorRef, e: Ev): void })._relay(
          self,
          self,
          { type: PROMISE_SENT, token },
        );
        return;
      }
      // Outside Latchkey: XState's in-process behaviour.
      const controller = new AbortController();
      controllers.set(self, controller);
      const relay = (e: Ev): void => {
        if ((self.getSnapshot() as { status?: string }).status !== 'active') return;
        (system as unknown as { _relay(s: AnyActorRef, t: AnyActorRef, e: Ev): void })._relay(
          self,
          self,
          e,
        );
      };
      Promise.resolve(
        creator({
          input: state.input as TInput,
          signal: controller.signal,
          key: '',
          invocationId: self.sessionId,
        }),
      ).then(
        (output) => relay({ type: PROMISE_RESOLVE, output }),
        (error: unknown) => relay({ type: PROMISE_REJECT, error }),
      );
    },
    getInitialSnapshot(_scope: unknown, input: unknown): DurablePromiseSnapshot {
      return { status: 'active', output: undefined, error: undefined, input };
    },
    getPersistedSnapshot(s: DurablePromiseSnapshot): DurablePromiseSnapshot {
      return s;
    },
    restoreSnapshot(s: DurablePromiseSnapshot): DurablePromiseSnapshot {
      return s;
    },
  };
  const durable: DurablePromiseLogic = {
    creator: creator as PromiseCreator<unknown, unknown>,
    options,
  };
  Object.defineProperty(logic, LOGIC, { value: durable });
  return logic as unknown as PromiseActorLogic<TOutput, TInput>;
}
