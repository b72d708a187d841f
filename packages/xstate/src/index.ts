/**
 * XState v5 machines as durable Latchkey virtual objects: one actor per key,
 * its snapshot in object state, delayed transitions as durable timers, promise
 * actors as durable steps.
 *
 * @example
 * ```ts
 * import { setup } from 'xstate';
 * import { serve } from '@latchkey/core';
 * import { fromPromise, xstate } from '@latchkey/xstate';
 *
 * const machine = setup({ actors: { charge: fromPromise(async ({ input }) => gateway.charge(input)) } }).createMachine({
 *   id: 'payment', initial: 'charging', context: ({ input }) => ({ amount: input.amount }),
 *   states: {
 *     charging: { invoke: { src: 'charge', input: ({ context }) => context.amount, onDone: 'paid', onError: 'failed' },
 *                 after: { 30_000: 'timedOut' } },
 *     paid: { type: 'final' }, failed: { type: 'final' }, timedOut: { type: 'final' },
 *   },
 * });
 * await serve({ services: [xstate('payment', machine)] });
 * ```
 *
 * @module
 */

export { xstate } from './xstate.js';
export type {
  CreateRequest,
  InvokePromiseRequest,
  SendRequest,
  SettleRequest,
  SubscribeRequest,
  TimerRequest,
  WaitForRequest,
  XStateHandlers,
  XStateObject,
  XStateOptions,
  XStateSnapshot,
} from './types.js';
export { fromPromise } from './promise.js';
export type { FromPromiseOptions, PromiseArgs, PromiseCreator } from './promise.js';
export type {
  ActorSnapshot,
  Condition,
  ErrorJson,
  PromiseRequest,
  PromiseResult,
} from './actor.js';
