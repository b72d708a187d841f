import { TerminalError, serializeError, type SerializedError } from '../errors.js';
import type { Completion } from '../journal/entry.js';
import type { ContextEnv } from './calls.js';
import { DurablePromise, decodeJson } from './durable-promise.js';
import { dead, durable, journaled, record } from './journaled.js';
import { awakeableId } from './secrets.js';
import type { InvocationReference, WorkflowPromise } from './types.js';

/** A completion's value as an entry holds it: `v` (decoded JSON) or `e`. */
function outcomeFields(c: Completion): { v?: unknown } | { e: SerializedError } {
  if (!c.ok) return { e: c.e };
  return c.v === undefined ? {} : { v: JSON.parse(c.v) as unknown };
}

/** A success or a `TerminalError` failure carrying `reason`, as a completion. */
export function resolution(ok: boolean, payload: unknown): Completion {
  if (ok) return { ok: true, v: payload === undefined ? undefined : JSON.stringify(payload) };
  return { ok: false, e: serializeError(new TerminalError(payload as string)) };
}

/** A new awakeable: its id, and the promise its resolution settles. */
export function newAwakeable<T>(env: ContextEnv): { id: string; promise: DurablePromise<T> } {
  const r = env.runner;
  if (r.isEnded) return { id: '', promise: dead<T>(r) };
  let id = '';
  const promise = durable<T>(r, 'awk', undefined, decodeJson, {
    fresh: (index) => {
      id = awakeableId(env.inv.id, index, env.inv.seed);
      return { entry: { k: 'awk', id } };
    },
    then: (c, recorded) => {
      if (recorded?.k === 'awk') id = recorded.id;
      // The store completes an awakeable only once its entry is committed: no step closure
      // (which may hand the id out) starts before it is (see steps.ts).
      if (!recorded) r.noteAwakeable(c.index);
    },
  });
  return { id, promise };
}

/** Resolves or rejects someone's awakeable (journaled with its effect). */
export function completeAwakeable(env: ContextEnv, id: string, completion: Completion): void {
  const r = env.runner;
  if (r.isEnded) return;
  journaled(
    r,
    'awkResolve',
    id,
    () => undefined,
    (index) =>
      record(r, index, {
        entry: { k: 'awkResolve', n: id, ...outcomeFields(completion) },
        effects: [{ t: 'awakeable', id, completion }],
        flush: true,
      }),
  );
}

/** Resolves or rejects the signal `name` of invocation `invocationId`. */
export function completeSignal(
  env: ContextEnv,
  invocationId: string,
  name: string,
  completion: Completion,
): void {
  const r = env.runner;
  if (r.isEnded) return;
  if (typeof invocationId !== 'string' || typeof name !== 'string' || name.length === 0) {
    throw new TypeError('a signal needs an invocation id and a non-empty name');
  }
  journaled(
    r,
    'sigResolve',
    name,
    () => undefined,
    (index) =>
      record(r, index, {
        entry: { k: 'sigResolve', n: name, id: invocationId, ...outcomeFields(completion) },
        effects: [{ t: 'signal', id: invocationId, name, completion }],
        flush: true,
      }),
  );
}

/** Cancels another invocation (journaled with its effect). */
export function cancelInvocation(env: ContextEnv, invocationId: string): void {
  const r = env.runner;
  if (r.isEnded) return;
  journaled(
    r,
    'cancelInv',
    invocationId,
    () => undefined,
    (index) =>
      record(r, index, {
        entry: { k: 'cancelInv', n: invocationId },
        effects: [{ t: 'cancel', id: invocationId }],
        flush: true,
      }),
  );
}

/** Waits for this invocation's signal `name`. */
export function awaitSignal<T>(env: ContextEnv, name: string): DurablePromise<T> {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError('a signal needs a non-empty name');
  }
  return durable<T>(env.runner, 'sig', name, decodeJson, {
    fresh: (index) => ({
      entry: { k: 'sig', n: name },
      effects: [{ t: 'sget', name, index }],
      flush: true,
    }),
  });
}

/** A reference to another invocation: attach to its result, cancel it, signal it. */
export function invocationRef<T>(env: ContextEnv, invocationId: string): InvocationReference<T> {
  return {
    attach: () =>
      durable<T>(env.runner, 'attach', invocationId, decodeJson, {
        fresh: (index) => ({
          entry: { k: 'attach', n: invocationId },
          effects: [{ t: 'attach', id: invocationId, index }],
          flush: true,
        }),
      }),
    cancel: () => cancelInvocation(env, invocationId),
    signal: <V>(name: string) => ({
      resolve: (value?: V) => completeSignal(env, invocationId, name, resolution(true, value)),
      reject: (reason: string) =>
        completeSignal(env, invocationId, name, resolution(false, reason)),
    }),
  };
}

/** A workflow's durable promise `name`: get (wait), peek, resolve, reject. */
export function workflowPromise<T>(env: ContextEnv, name: string): WorkflowPromise<T> {
  const r = env.runner;
  type Kind = 'pget' | 'ppeek' | 'presolve';
  const completable = (kind: Kind, completion?: Completion): DurablePromise<unknown> =>
    durable<unknown>(r, kind, name, decodeJson, {
      fresh: (index) =>
        kind === 'presolve'
          ? {
              entry: { k: 'presolve', n: name, ...outcomeFields(completion!) },
              effects: [{ t: 'presolve', name, index, completion: completion! }],
              flush: true,
            }
          : {
              entry: { k: kind, n: name },
              effects: [{ t: kind, name, index }],
              flush: true,
            },
    });
  // Awaiting the promise itself (or combining it) waits for its value, as `get()` does: the entry
  // is created when it is first awaited, and `get()` on the same object shares it.
  let got: DurablePromise<T> | undefined;
  const get = (): DurablePromise<T> => (got ??= completable('pget') as DurablePromise<T>);
  const methods: Pick<WorkflowPromise<T>, 'get' | 'peek' | 'resolve' | 'reject'> = {
    get,
    peek: async () => (await completable('ppeek')) as T | undefined,
    resolve: async (value?: T) => {
      await completable('presolve', resolution(true, value));
    },
    reject: async (reason: string) => {
      await completable('presolve', resolution(false, reason));
    },
  };
  return Object.assign(new DurablePromise<T>(r, () => get().completable, decodeJson), methods);
}
