/**
 * Runs one step of an XState actor inside a handler: restores the actor from
 * its persisted snapshot, lets the caller apply one event, and collects what
 * must become durable — the new persisted snapshot, the delayed events the
 * actor scheduled (durable timers instead of `setTimeout`), and the promise
 * actors it started (journaled invocations instead of in-process promises).
 *
 * The actor system's scheduler is replaced: `schedule`/`cancel`/`cancelAll`
 * only edit a table of timers kept in object state, keyed by the scheduling
 * actor's path and the event's id, each with a fresh token. A timer message
 * that arrives with a token that is no longer in the table was cancelled or
 * replaced, and is ignored.
 */
import {
  createActor,
  matchesState,
  type AnyActorRef,
  type AnyStateMachine,
  type AnyEventObject,
  type StateValue,
} from 'xstate';
import { TerminalError } from '@latchkey/core';
import {
  bindHost,
  durableLogicOf,
  type DurablePromiseLogic,
  type DurablePromiseSnapshot,
  PROMISE_REJECT,
  PROMISE_RESOLVE,
} from './promise.js';

/** A delayed event waiting for its durable timer. */
export interface TimerRecord {
  token: string;
  /** Path (child ids from the root) of the actor that scheduled it. */
  source: string[];
  /** Path of the actor it is for. */
  target: string[];
  event: AnyEventObject;
}

/** A durable timer to start: a delayed message to the object's `_timer` handler. */
export interface NewTimer {
  key: string;
  token: string;
  delay: number;
}

/** A promise actor to run: a message to the object's `_promise` handler. */
export interface PromiseRequest {
  /** `src` of the promise actor, then of each ancestor machine below the root. */
  srcs: string[];
  /** Path of the promise actor. */
  path: string[];
  token: string;
  input: unknown;
}

/** The result of a promise, as the `_settle` handler delivers it. */
export type PromiseResult = { ok: true; output: unknown } | { ok: false; error: unknown };

/** What one handler step collects while the actor runs. */
export class Session {
  readonly newTimers: NewTimer[] = [];
  readonly promises: PromiseRequest[] = [];
  closed = false;
  error: unknown;
  readonly instance: string;
  seq: number;
  readonly timers: Record<string, TimerRecord>;

  constructor(instance: string, seq: number, timers: Record<string, TimerRecord>) {
    this.instance = instance;
    this.seq = seq;
    this.timers = timers;
  }

  nextToken(): string {
    this.seq += 1;
    return `${this.instance}.${this.seq}`;
  }

  /** Timers scheduled in this step and still current (not cancelled meanwhile). */
  timersToStart(): NewTimer[] {
    return this.newTimers.filter((t) => this.timers[t.key]?.token === t.token);
  }
}

/** Child ids from the root actor down to `ref` (empty for the root). */
export function pathOf(ref: AnyActorRef): string[] {
  const path: string[] = [];
  for (let r: AnyActorRef | undefined = ref; r?._parent; r = r._parent) path.unshift(r.id);
  return path;
}

/** The actor at `path` under `root`, if it still exists. */
export function findByPath(root: AnyActorRef, path: string[]): AnyActorRef | undefined {
  let ref: AnyActorRef = root;
  for (const id of path) {
    const snap = ref.getSnapshot() as { children?: Record<string, AnyActorRef> } | undefined;
    const children: Record<string, AnyActorRef> | undefined = snap?.children;
    const next = children?.[id];
    if (!next) return undefined;
    ref = next;
  }
  return ref;
}

function timerKey(source: string[], id: string): string {
  return `${JSON.stringify(source)}#${id}`;
}

function jsonCopy<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** `src` of `ref` and of each ancestor below the root; they locate its logic in the machine. */
function srcsOf(ref: AnyActorRef): string[] {
  const srcs: string[] = [];
  for (let r: AnyActorRef | undefined = ref; r?._parent; r = r._parent) {
    if (typeof r.src !== 'string') {
      throw new TerminalError(
        `actor '${r.id}' has inline logic that cannot be found again after a restart: register it in setup({ actors }) or invoke it by src`,
      );
    }
    srcs.push(r.src);
  }
  return srcs;
}

/** The logic a `src` names in a machine (`setup({ actors })` names, or an inline `invoke.src`). */
function resolveSrc(machine: AnyStateMachine, src: string): unknown {
  const m = /^xstate\.invoke\.(\d+)\.(.*)$/.exec(src);
  if (!m) return (machine.implementations.actors as Record<string, unknown>)[src];
  const invoke = machine.getStateNodeById(m[2]!).config.invoke as unknown;
  const config = (Array.isArray(invoke) ? invoke[Number(m[1])] : invoke) as
    { src?: unknown } | undefined;
  return config?.src;
}

/** Finds the durable promise logic a {@link PromiseRequest} names. */
export function resolvePromiseLogic(machine: AnyStateMachine, srcs: string[]): DurablePromiseLogic {
  let current: AnyStateMachine = machine;
  for (let i = srcs.length - 1; i >= 1; i--) {
    const next = resolveSrc(current, srcs[i]!);
    if (!next || typeof next !== 'object' || !('implementations' in next)) {
      throw new TerminalError(`cannot find the machine actor '${srcs[i]}'`);
    }
    current = next as AnyStateMachine;
  }
  const logic = durableLogicOf(resolveSrc(current, srcs[0]!));
  if (!logic) {
    throw new TerminalError(
      `'${srcs[0]}' is not a promise actor created with fromPromise from @latchkey/xstate`,
    );
  }
  return logic;
}

/**
 * Creates the actor (fresh with `input`, or restored from `snapshot`) with the
 * durable scheduler and promise host of `session`, and starts it.
 */
export function startActor(
  machine: AnyStateMachine,
  from: { snapshot: unknown } | { input: unknown },
  session: Session,
): AnyActorRef {
  const actor = createActor(
    machine,
    'snapshot' in from ? { snapshot: from.snapshot as never } : { input: from.input as never },
  );
  const system = actor.system;
  const scheduler = system.scheduler;
  scheduler.schedule = (source, target, event, delay, id) => {
    if (session.closed) return;
    const token = session.nextToken();
    const src = pathOf(source);
    const key = timerKey(src, id ?? token);
    session.timers[key] = { token, source: src, target: pathOf(target), event: jsonCopy(event) };
    session.newTimers.push({ key, token, delay });
  };
  scheduler.cancel = (source, id) => {
    if (session.closed) return;
    delete session.timers[timerKey(pathOf(source), id)];
  };
  scheduler.cancelAll = (ref) => {
    if (session.closed) return;
    const src = JSON.stringify(pathOf(ref));
    for (const [key, t] of Object.entries(session.timers))
      if (JSON.stringify(t.source) === src) delete session.timers[key];
  };
  bindHost(system, {
    invokePromise: (self, input) => {
      const token = session.nextToken();
      session.promises.push({
        srcs: srcsOf(self),
        path: pathOf(self),
        token,
        input: jsonCopy(input),
      });
      return token;
    },
  });
  // An error observer keeps XState from rethrowing machine errors globally; the
  // error stays in the snapshot (status 'error').
  actor.subscribe({ error: (e: unknown) => (session.error = e) });
  actor.start();
  return actor;
}

/** Delivers a due timer; false when it was cancelled, replaced, or its target is gone. */
export function deliverTimer(
  root: AnyActorRef,
  session: Session,
  key: string,
  token: string,
): boolean {
  const t = session.timers[key];
  if (!t || t.token !== token) return false;
  delete session.timers[key];
  const target = findByPath(root, t.target);
  if (!target) return false;
  target.send(t.event);
  return true;
}

/** Delivers a promise result to its actor; false when the actor is gone or the result stale. */
export function settlePromise(
  root: AnyActorRef,
  path: string[],
  token: string,
  result: PromiseResult,
): boolean {
  const child = findByPath(root, path);
  const snap = child?.getSnapshot() as DurablePromiseSnapshot | undefined;
  if (!child || snap?.status !== 'active' || snap.token !== token) return false;
  child.send(
    result.ok
      ? { type: PROMISE_RESOLVE, token, output: result.output }
      : { type: PROMISE_REJECT, token, error: result.error },
  );
  return true;
}

/** Ids (paths) of active child actors that are neither machines nor durable promise actors. */
export function undurableChildren(root: AnyActorRef): string[] {
  const out: string[] = [];
  const walk = (ref: AnyActorRef): void => {
    const children =
      (ref.getSnapshot() as { children?: Record<string, AnyActorRef> }).children ?? {};
    for (const child of Object.values(children)) {
      const logic = (child as unknown as { logic?: unknown }).logic;
      if (logic && typeof logic === 'object' && 'implementations' in logic) walk(child);
      else if (
        !durableLogicOf(logic) &&
        (child.getSnapshot() as { status?: string }).status === 'active'
      )
        out.push(pathOf(child).join('/'));
    }
  };
  walk(root);
  return out;
}

/** Whether a started promise still belongs to a live actor (else its invocation is not needed). */
export function promiseStillWanted(root: AnyActorRef, p: PromiseRequest): boolean {
  const snap = findByPath(root, p.path)?.getSnapshot() as DurablePromiseSnapshot | undefined;
  return snap?.status === 'active' && snap.token === p.token;
}

// ------------------------------------------------------------------ snapshots and conditions

/** An error as it is stored and returned: JSON only. */
export interface ErrorJson {
  name: string;
  message: string;
  [k: string]: unknown;
}

/** The snapshot of a Latchkey XState actor, as the handlers return it. */
export interface ActorSnapshot<TContext = unknown, TOutput = unknown> {
  /** `active` until the machine reaches a top-level final state (`done`) or fails (`error`). */
  status: 'active' | 'done' | 'error' | 'stopped';
  /** The state value, e.g. `'pending'` or `{ checkout: 'paying' }`. */
  value: StateValue;
  context: TContext;
  /** Tags of the active state nodes, sorted. */
  tags: string[];
  output?: TOutput;
  error?: ErrorJson;
  /** The machine version (its `id`) this instance runs on. */
  version: string;
}

/** Converts any thrown value into a JSON error. */
export function errorJson(e: unknown): ErrorJson | undefined {
  if (e === undefined || e === null) return undefined;
  if (e instanceof Error) {
    const out: ErrorJson = { name: e.name, message: e.message };
    const code = (e as { errorCode?: unknown }).errorCode;
    if (typeof code === 'number') out['errorCode'] = code;
    return out;
  }
  if (typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') {
    return { name: 'Error', ...e, message: (e as { message: string }).message };
  }
  return { name: 'Error', message: typeof e === 'string' ? e : JSON.stringify(e) };
}

/** The public snapshot of a running actor. */
export function snapshotOf(
  actor: AnyActorRef,
  persisted: { context?: unknown },
  version: string,
): ActorSnapshot {
  const s = actor.getSnapshot() as {
    status: ActorSnapshot['status'];
    value: StateValue;
    tags?: Set<string>;
    output?: unknown;
    error?: unknown;
  };
  const out: ActorSnapshot = {
    status: s.status,
    value: s.value,
    context: persisted.context,
    tags: [...(s.tags ?? [])].sort(),
    version,
  };
  if (s.output !== undefined) out.output = jsonCopy(s.output);
  const error = errorJson(s.error);
  if (error) out.error = error;
  return out;
}

/**
 * A `waitFor` condition: `'done'` (a final state), `'hasTag:<tag>'`, or
 * `'state:<value>'` with a dotted state path (`'state:checkout.paying'`).
 */
export type Condition = 'done' | `hasTag:${string}` | `state:${string}`;

/** Checks a condition's syntax. */
export function isCondition(c: unknown): c is Condition {
  return typeof c === 'string' && (c === 'done' || /^hasTag:.+/.test(c) || /^state:.+/.test(c));
}

/** Whether `snap` meets `condition` now (`met`), never can (`unreachable`), or may later (`pending`). */
export function evaluate(
  snap: ActorSnapshot,
  condition: Condition,
): 'met' | 'unreachable' | 'pending' {
  let met: boolean;
  if (condition === 'done') met = snap.status === 'done';
  else if (condition.startsWith('hasTag:'))
    met = snap.tags.includes(condition.slice('hasTag:'.length));
  else met = matchesState(condition.slice('state:'.length), snap.value);
  if (met) return 'met';
  return snap.status === 'active' ? 'pending' : 'unreachable';
}
