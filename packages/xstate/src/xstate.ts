/**
 * `xstate(name, machine)`: an XState v5 machine as a Latchkey virtual object,
 * one actor per object key.
 *
 * State of a key: `snapshot` (the public {@link ActorSnapshot}, read by the
 * shared handlers) and `xstate` (the persisted XState snapshot, the machine
 * version, the durable timer table and the `waitFor` subscriptions). Every
 * exclusive handler restores the actor, applies one thing (an event, a due
 * timer, a promise result), and commits the new state together with the
 * messages it implies, in one journal commit.
 */
import {
  handlers,
  object,
  rpc,
  isTerminalError,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '@latchkey/core';
import type { AnyActorRef, AnyStateMachine } from 'xstate';
import {
  deliverTimer,
  errorJson,
  evaluate,
  isCondition,
  promiseStillWanted,
  resolvePromiseLogic,
  Session,
  settlePromise,
  snapshotOf,
  startActor,
  undurableChildren,
  type ActorSnapshot,
  type Condition,
  type PromiseResult,
  type TimerRecord,
} from './actor.js';
import type {
  CreateRequest,
  InvokePromiseRequest,
  SendRequest,
  SettleRequest,
  SubscribeRequest,
  TimerRequest,
  WaitForRequest,
  XStateObject,
  XStateOptions,
  XStateSnapshot,
} from './types.js';

interface Stored {
  version: string;
  instance: string;
  seq: number;
  persisted: { context?: unknown };
  timers: Record<string, TimerRecord>;
  /** Awakeable id → condition, for `waitFor`. */
  waiters: Record<string, Condition>;
}

const STATE = 'xstate';
const SNAPSHOT = 'snapshot';

function badRequest(message: string): TerminalError {
  return new TerminalError(message, { errorCode: 400 });
}

type Internal = XStateObject<string, AnyStateMachine>;

/**
 * Defines a virtual object that runs `machine`: one actor per key.
 *
 * Handlers (as `@restatedev/xstate`): `create({ input })` starts (or restarts)
 * the actor and `send({ event })` applies one event — both exclusive, both
 * return the {@link ActorSnapshot}; the shared `snapshot()` reads it and
 * `waitFor({ condition, timeout })` waits until it meets a condition.
 *
 * Delayed transitions (`after`, delayed `raise`/`sendTo`) become durable timers;
 * promise actors made with this package's {@link fromPromise} run as durable
 * steps. Machine actions run again whenever a handler is retried or replayed:
 * keep them pure (assign, raise, sendTo) and put side effects in promise actors.
 *
 * @example
 * ```ts
 * const payment = xstate('payment', paymentMachine, { finalStateTTL: { days: 1 } });
 * await serve({ services: [payment] });
 * // POST /payment/order-1/create {"input":{"amount":42}}
 * // POST /payment/order-1/send   {"event":{"type":"CONFIRM"}}
 * // POST /payment/order-1/waitFor {"condition":"done","timeout":30000}
 * ```
 */
export function xstate<N extends string, M extends AnyStateMachine>(
  name: N,
  machine: M,
  options: XStateOptions = {},
): XStateObject<N, M> {
  const machines = new Map<string, AnyStateMachine>();
  for (const m of [...(options.versions ?? []), machine]) {
    if (machines.has(m.id))
      throw new TypeError(`xstate ${name}: two machine versions have the id '${m.id}'`);
    machines.set(m.id, m);
  }
  const machineFor = (version: string): AnyStateMachine => {
    const m = machines.get(version);
    if (!m)
      throw new TerminalError(
        `xstate ${name}: machine version '${version}' is not deployed (list it in options.versions)`,
      );
    return m;
  };
  const self = (ctx: ObjectSharedContext) => ctx.objectSendClient<Internal>({ name }, ctx.key);

  /** Commits the actor's new state and the messages it implies; returns the public snapshot. */
  const commit = (
    ctx: ObjectContext,
    stored: Omit<Stored, 'persisted' | 'seq' | 'timers'>,
    actor: AnyActorRef,
    session: Session,
    wasActive: boolean,
  ): ActorSnapshot => {
    const persisted = actor.getPersistedSnapshot() as Stored['persisted'] & { error?: unknown };
    if (persisted.error !== undefined) persisted.error = errorJson(persisted.error); // an Error is not JSON
    const snapshot = snapshotOf(actor, persisted, stored.version);
    const timers = session.timersToStart();
    const promises = session.promises.filter((p) => promiseStillWanted(actor, p));
    for (const path of undurableChildren(actor)) {
      ctx.console.warn(
        `xstate ${name}: child actor '${path}' is not durable (use fromPromise from @latchkey/xstate); its results will be lost`,
      );
    }
    session.closed = true; // the actor is dropped; nothing it does from now on counts
    const waiters = { ...stored.waiters };
    for (const [awakeableId, condition] of Object.entries(waiters)) {
      const outcome = evaluate(snapshot, condition);
      if (outcome === 'pending') continue;
      if (outcome === 'met') ctx.resolveAwakeable(awakeableId, snapshot);
      else
        ctx.rejectAwakeable(
          awakeableId,
          `the actor ended (${snapshot.status}) without meeting '${condition}'`,
        );
      delete waiters[awakeableId];
    }
    ctx.set<Stored>(STATE, {
      ...stored,
      seq: session.seq,
      persisted,
      timers: session.timers,
      waiters,
    });
    ctx.set(SNAPSHOT, snapshot);
    for (const t of timers)
      self(ctx)._timer({ key: t.key, token: t.token }, rpc.sendOpts({ delay: t.delay }));
    for (const p of promises)
      self(ctx)._promise({ ...p, version: stored.version, instance: stored.instance });
    if (wasActive && snapshot.status !== 'active' && options.finalStateTTL !== undefined) {
      self(ctx)._expire(
        { instance: stored.instance },
        rpc.sendOpts({ delay: options.finalStateTTL }),
      );
    }
    return snapshot;
  };

  /** Restores the actor of this key, applies `step`, commits. Undefined when there is no actor. */
  const apply = async (
    ctx: ObjectContext,
    step: (actor: AnyActorRef, session: Session) => void,
    loaded?: Stored,
  ): Promise<ActorSnapshot | undefined> => {
    const stored = loaded ?? (await ctx.get<Stored>(STATE));
    if (!stored) return undefined;
    const session = new Session(stored.instance, stored.seq, { ...stored.timers });
    const actor = startActor(machineFor(stored.version), { snapshot: stored.persisted }, session);
    const wasActive = (actor.getSnapshot() as { status?: string }).status === 'active';
    step(actor, session);
    return commit(ctx, stored, actor, session, wasActive);
  };

  const noActor = (ctx: ObjectSharedContext): TerminalError =>
    new TerminalError(`xstate ${name}: no actor '${ctx.key}' (call create first)`, {
      errorCode: 404,
    });

  // Internal handlers: not callable through the ingress, only by the object itself.
  const internal = <I>(fn: (ctx: ObjectContext, req: I) => Promise<unknown>) =>
    handlers.handler({ ingressPrivate: true }, fn);
  const internalShared = <I>(fn: (ctx: ObjectSharedContext, req: I) => Promise<unknown>) =>
    handlers.object.shared<(ctx: ObjectSharedContext, req: I) => Promise<unknown>>(
      { ingressPrivate: true },
      fn,
    );

  return object({
    name,
    ...(options.handlerOptions ? { options: options.handlerOptions } : {}),
    handlers: {
      /** Starts the actor with `input`; an existing actor of this key is replaced. */
      create: async (ctx: ObjectContext, req: CreateRequest<M>): Promise<XStateSnapshot<M>> => {
        const previous = await ctx.get<Stored>(STATE);
        const instance = ctx.rand.uuidv4();
        const session = new Session(instance, 0, {});
        const actor = startActor(machine, { input: req?.input }, session);
        const stored = { version: machine.id, instance, waiters: previous?.waiters ?? {} };
        return commit(ctx, stored, actor, session, true) as XStateSnapshot<M>;
      },

      /** Applies one event and returns the new snapshot. */
      send: async (ctx: ObjectContext, req: SendRequest<M>): Promise<XStateSnapshot<M>> => {
        const event = (req as { event?: unknown } | undefined)?.event as
          { type?: unknown } | undefined;
        if (typeof event !== 'object' || event === null || typeof event.type !== 'string') {
          throw badRequest('send needs { event: { type: string, ... } }');
        }
        if (/^(xstate|latchkey)\./.test(event.type))
          throw badRequest(`event type '${event.type}' is reserved`);
        const snapshot = await apply(ctx, (actor) => actor.send(event));
        if (!snapshot) throw noActor(ctx);
        return snapshot as XStateSnapshot<M>;
      },

      /** The current snapshot (null when there is no actor). */
      snapshot: handlers.object.shared(
        async (ctx: ObjectSharedContext): Promise<XStateSnapshot<M> | null> => {
          return await ctx.get<XStateSnapshot<M>>(SNAPSHOT);
        },
      ),

      /**
       * Waits until the snapshot meets `condition` and returns it. Fails with 412
       * when the actor ends without meeting it, 408 after `timeout`.
       */
      waitFor: handlers.object.shared(
        async (ctx: ObjectSharedContext, req: WaitForRequest): Promise<XStateSnapshot<M>> => {
          if (!isCondition(req?.condition))
            throw badRequest(`waitFor needs a condition: 'done', 'hasTag:<tag>' or 'state:<path>'`);
          const current = await ctx.get<XStateSnapshot<M>>(SNAPSHOT);
          if (!current) throw noActor(ctx);
          const now = evaluate(current, req.condition);
          if (now === 'met') return current;
          if (now === 'unreachable')
            throw new TerminalError(
              `the actor ended (${current.status}) without meeting '${req.condition}'`,
              { errorCode: 412 },
            );
          // Subscribe: the exclusive handlers resolve the awakeable once the condition is met.
          const { id, promise } = ctx.awakeable<XStateSnapshot<M>>();
          self(ctx)._subscribe({ awakeableId: id, condition: req.condition });
          try {
            return await (req.timeout !== undefined ? promise.orTimeout(req.timeout) : promise);
          } catch (e) {
            if (!isTerminalError(e)) throw e;
            if (e.errorCode === 408) self(ctx)._unsubscribe({ awakeableId: id }); // timed out
            if (e.errorCode === 500) throw new TerminalError(e.message, { errorCode: 412 }); // rejected: unreachable
            throw e;
          }
        },
      ),

      // ---------------------------------------------------------------- internal

      /** A durable timer fired: delivers its delayed event unless it was cancelled or replaced. */
      _timer: internal(async (ctx: ObjectContext, req: TimerRequest) => {
        const stored = await ctx.get<Stored>(STATE);
        if (!stored?.timers[req.key] || stored.timers[req.key]!.token !== req.token) return null; // stale: nothing to do
        return await apply(
          ctx,
          (actor, session) => void deliverTimer(actor, session, req.key, req.token),
          stored,
        );
      }),

      /** Runs a promise actor's creator as a durable step and sends its result back. */
      _promise: internalShared(async (ctx: ObjectSharedContext, req: InvokePromiseRequest) => {
        let result: PromiseResult;
        try {
          // An unknown src or version fails the invoke (the machine's onError), it does not hang it.
          const { creator, options: popts } = resolvePromiseLogic(
            machineFor(req.version),
            req.srcs,
          );
          const output = await ctx.run(
            `promise ${req.srcs[0]}`,
            async () =>
              await creator({
                input: req.input,
                signal: new AbortController().signal,
                key: ctx.key,
                invocationId: ctx.request().id,
              }),
            popts.retry,
          );
          result = { ok: true, output };
        } catch (e) {
          if (!isTerminalError(e)) throw e; // retried
          result = { ok: false, error: errorJson(e) };
        }
        self(ctx)._settle({ path: req.path, token: req.token, result });
      }),

      /** Delivers a promise result as the promise actor's done/error event. */
      _settle: internal(async (ctx: ObjectContext, req: SettleRequest) => {
        return (
          (await apply(
            ctx,
            (actor) => void settlePromise(actor, req.path, req.token, req.result),
          )) ?? null
        );
      }),

      /** Registers a `waitFor` awakeable, or settles it at once. */
      _subscribe: internal(async (ctx: ObjectContext, req: SubscribeRequest) => {
        const stored = await ctx.get<Stored>(STATE);
        const snapshot = await ctx.get<ActorSnapshot>(SNAPSHOT);
        if (!stored || !snapshot) {
          ctx.rejectAwakeable(req.awakeableId, `no actor '${ctx.key}'`);
          return;
        }
        const outcome = evaluate(snapshot, req.condition);
        if (outcome === 'met') ctx.resolveAwakeable(req.awakeableId, snapshot);
        else if (outcome === 'unreachable')
          ctx.rejectAwakeable(
            req.awakeableId,
            `the actor ended (${snapshot.status}) without meeting '${req.condition}'`,
          );
        else
          ctx.set<Stored>(STATE, {
            ...stored,
            waiters: { ...stored.waiters, [req.awakeableId]: req.condition },
          });
      }),

      /** Forgets a `waitFor` that timed out. */
      _unsubscribe: internal(async (ctx: ObjectContext, req: { awakeableId: string }) => {
        const stored = await ctx.get<Stored>(STATE);
        if (!stored?.waiters[req.awakeableId]) return;
        const waiters = { ...stored.waiters };
        delete waiters[req.awakeableId];
        ctx.set<Stored>(STATE, { ...stored, waiters });
      }),

      /** The final-state TTL ran out: clears the instance (unless it was re-created since). */
      _expire: internal(async (ctx: ObjectContext, req: { instance: string }) => {
        const stored = await ctx.get<Stored>(STATE);
        if (!stored || stored.instance !== req.instance) return;
        for (const awakeableId of Object.keys(stored.waiters))
          ctx.rejectAwakeable(awakeableId, `the actor '${ctx.key}' expired`);
        ctx.clearAll();
      }),
    },
  });
}
