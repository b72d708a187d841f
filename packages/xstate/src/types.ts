/** The public types of `@latchkey/xstate`: options, handler inputs and the object's shape. */
import type {
  Duration,
  HandlerOptions,
  HandlerWrapper,
  ObjectContext,
  ObjectSharedContext,
  VirtualObjectDefinition,
} from '@latchkey/core';
import type { AnyStateMachine, ContextFrom, EventFromLogic, InputFrom, OutputFrom } from 'xstate';
import type { ActorSnapshot, Condition, PromiseRequest, PromiseResult } from './actor.js';

/** Options of {@link xstate}. */
export interface XStateOptions {
  /**
   * Earlier versions of the machine, each with its own machine `id`. An
   * instance keeps running on the version it was created with; `create` always
   * uses the latest (`machine`). Keep a version listed while instances of it
   * may still run.
   */
  versions?: AnyStateMachine[];
  /** Clears an instance's state this long after it reached a final state (or failed). */
  finalStateTTL?: Duration;
  /** Options of every handler of the object (retries, inactivity timeout, retention…). */
  handlerOptions?: HandlerOptions;
}

/** The public snapshot of the actor of machine `M`. */
export type XStateSnapshot<M extends AnyStateMachine> = ActorSnapshot<
  ContextFrom<M>,
  OutputFrom<M>
>;

/** Input of `create`. */
export interface CreateRequest<M extends AnyStateMachine> {
  /** The machine's input. */
  input?: InputFrom<M>;
}

/** Input of `send`. */
export interface SendRequest<M extends AnyStateMachine> {
  event: EventFromLogic<M>;
}

/** Input of `waitFor`. */
export interface WaitForRequest {
  /** `'done'`, `'hasTag:<tag>'` or `'state:<dotted.state.path>'`. */
  condition: Condition;
  /** Fails with 408 after this long (a durable timer); default: wait indefinitely. */
  timeout?: Duration;
}

/** Input of the internal `_timer` handler. */
export interface TimerRequest {
  key: string;
  token: string;
}
/** Input of the internal `_promise` handler. */
export type InvokePromiseRequest = PromiseRequest & { version: string; instance: string };
/** Input of the internal `_settle` handler. */
export interface SettleRequest {
  path: string[];
  token: string;
  result: PromiseResult;
}
/** Input of the internal `_subscribe` handler. */
export interface SubscribeRequest {
  awakeableId: string;
  condition: Condition;
}

type Exclusive<I, O = unknown> = HandlerWrapper<(ctx: ObjectContext, req: I) => Promise<O>>;
type Shared<I, O = unknown> = HandlerWrapper<(ctx: ObjectSharedContext, req: I) => Promise<O>>;

/** The handlers of an {@link xstate} object (the `_` ones are internal: not reachable through the ingress). */
export type XStateHandlers<M extends AnyStateMachine> = {
  create: (ctx: ObjectContext, req: CreateRequest<M>) => Promise<XStateSnapshot<M>>;
  send: (ctx: ObjectContext, req: SendRequest<M>) => Promise<XStateSnapshot<M>>;
  snapshot: HandlerWrapper<(ctx: ObjectSharedContext) => Promise<XStateSnapshot<M> | null>>;
  waitFor: Shared<WaitForRequest, XStateSnapshot<M>>;
  _timer: Exclusive<TimerRequest>;
  _promise: Shared<InvokePromiseRequest>;
  _settle: Exclusive<SettleRequest>;
  _subscribe: Exclusive<SubscribeRequest>;
  _unsubscribe: Exclusive<{ awakeableId: string }>;
  _expire: Exclusive<{ instance: string }>;
};

/** The virtual-object definition {@link xstate} returns. */
export type XStateObject<N extends string, M extends AnyStateMachine> = VirtualObjectDefinition<
  N,
  XStateHandlers<M>
>;
