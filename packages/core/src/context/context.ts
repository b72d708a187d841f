import type { Definition, ServiceKind } from '../define/definitions.js';
import { timerMs, type Duration } from '../define/duration.js';
import { bytesOf } from '../define/serde.js';
import { optionsOf } from '../define/rpc.js';
import { DurableError, ErrorCode, TerminalError } from '../errors.js';
import { never, type JournalRunner } from '../runtime/journal-runner.js';
import type { StartedInvocation } from '../store.js';
import {
  callTarget,
  checkTargetKey,
  sendTarget,
  type ContextDeps,
  type ContextEnv,
} from './calls.js';
import { type DurablePromise, sleepPromise } from './durable-promise.js';
import { journaled } from './journaled.js';
import {
  awaitSignal,
  completeAwakeable,
  invocationRef,
  newAwakeable,
  resolution,
  workflowPromise,
} from './promises.js';
import { createRand } from './rand.js';
import { runStep } from './steps.js';
import type {
  Client,
  ContextDate,
  GenericCall,
  InvocationHandle,
  InvocationReference,
  Rand,
  Request,
  RunOptions,
  SendClient,
  WorkflowContext,
  WorkflowPromise,
} from './types.js';

export type { ContextDeps, TargetInfo, TargetResolver } from './calls.js';

/**
 * The object user handlers receive. Implements every context flavour; the
 * handler's declared type decides which methods the user sees, and writes from
 * shared handlers are refused at run time too.
 */
export class HandlerContext implements WorkflowContext {
  private readonly state: Map<string, string>;
  private readonly runner: JournalRunner;
  private readonly inv: StartedInvocation;
  private readonly writable: boolean;
  private readonly deps: ContextDeps;
  private readonly env: ContextEnv;
  /** The console `ctx.console` writes to, or a function that makes it (on first use). */
  private readonly logger: Console | (() => Console);
  // Built on first use: most handlers use none of them, and every invocation builds a context.
  private randValue: Rand | undefined;
  private dateValue: ContextDate | undefined;
  private consoleValue: Console | undefined;
  /** State values the key has that `state` lacks (`StartedInvocation.lazyState`), until written here. */
  private lazy: Set<string> | undefined;
  private requestValue: Request | undefined;

  constructor(
    runner: JournalRunner,
    inv: StartedInvocation,
    writable: boolean,
    logger: Console | (() => Console),
    deps: ContextDeps,
  ) {
    this.runner = runner;
    this.inv = inv;
    this.writable = writable;
    this.deps = deps;
    this.env = { runner, inv, deps };
    this.logger = logger;
    this.state = new Map(inv.state);
    if (inv.lazyState && inv.lazyState.length > 0) this.lazy = new Set(inv.lazyState);
  }

  get rand(): Rand {
    return (this.randValue ??= createRand(this.inv.seed));
  }

  get date(): ContextDate {
    return (this.dateValue ??= {
      now: async () => await this.run('Date.now', () => Date.now()),
      toJSON: async () => new Date(await this.date.now()).toISOString(),
    });
  }

  get console(): Console {
    const inv = this.inv;
    const base = typeof this.logger === 'function' ? this.logger() : this.logger;
    const prefix = `[${inv.target.service}/${inv.target.handler}][${inv.id}]`;
    return (this.consoleValue ??= quietConsole(base, () => this.runner.replaying, prefix));
  }

  get key(): string {
    const k = this.inv.target.key;
    if (k === undefined)
      throw new TerminalError('this handler has no key (it is a service handler)');
    return k;
  }

  request(): Request {
    const inv = this.inv;
    return (this.requestValue ??= {
      id: inv.id,
      headers: new Map(Object.entries(inv.headers)),
      attemptHeaders: new Map(Object.entries(inv.headers)),
      body: bytesOf(this.deps.inputSerde, inv.input),
      attempt: inv.attempt,
    });
  }

  // ------------------------------------------------------------------ steps and timers

  run<T>(name: string, action: () => T | Promise<T>, options?: RunOptions): DurablePromise<T>;
  run<T>(action: () => T | Promise<T>, options?: RunOptions): DurablePromise<T>;
  run<T>(
    a: string | (() => T | Promise<T>),
    b?: (() => T | Promise<T>) | RunOptions,
    c?: RunOptions,
  ): DurablePromise<T> {
    const [name, action, options] =
      typeof a === 'string'
        ? [a, b as () => T | Promise<T>, c]
        : ['', a, b as RunOptions | undefined];
    if (typeof action !== 'function') throw new TypeError('ctx.run needs a function');
    return runStep(this.runner, name, action, options);
  }

  sleep(duration: Duration, name?: string): DurablePromise<void> {
    return sleepPromise(this.runner, timerMs(duration, 'sleep'), name);
  }

  // ------------------------------------------------------------------ state

  get<T = unknown>(name: string): Promise<T | null> {
    const r = this.runner;
    if (r.isEnded) return never();
    checkStateName(name);
    return journaled(
      r,
      'get',
      name,
      (rec) => Promise.resolve((rec.k === 'get' ? rec.v : null) as T | null),
      (index) => {
        const raw = this.state.get(name);
        if (raw === undefined && this.lazy?.has(name) && this.deps.needState) {
          // Not sent with the request: this attempt ends, and runs again with the value.
          this.deps.needState([name]);
          return never();
        }
        if (raw === undefined) {
          r.fill(index, { k: 'get', n: name, v: null });
          return Promise.resolve(null);
        }
        // The entry keeps its own copy: the handler may change the value it gets before the
        // entry is committed, and the journal must hold what was read.
        r.fill(index, { k: 'get', n: name, v: JSON.parse(raw) as unknown });
        return Promise.resolve(JSON.parse(raw) as T);
      },
    );
  }

  stateKeys(): Promise<string[]> {
    const r = this.runner;
    if (r.isEnded) return never();
    return journaled(
      r,
      'keys',
      undefined,
      (rec) => Promise.resolve(rec.k === 'keys' ? rec.v : []),
      (index) => {
        const keys = [...new Set([...this.state.keys(), ...(this.lazy ?? [])])].sort();
        r.fill(index, { k: 'keys', v: keys });
        return Promise.resolve(keys);
      },
    );
  }

  set<T>(name: string, value: T): void {
    this.checkWritable('set');
    checkStateName(name);
    this.write('set', name, () => {
      const json = JSON.stringify(value === undefined ? null : value);
      this.state.set(name, json);
      this.lazy?.delete(name);
      return { k: 'set', n: name, v: JSON.parse(json) as unknown };
    });
  }

  clear(name: string): void {
    this.checkWritable('clear');
    checkStateName(name);
    this.write('clear', name, () => {
      this.state.delete(name);
      this.lazy?.delete(name);
      return { k: 'clear', n: name };
    });
  }

  clearAll(): void {
    this.checkWritable('clearAll');
    this.write('clearAll', undefined, () => {
      this.state.clear();
      this.lazy = undefined;
      return { k: 'clearAll' };
    });
  }

  /** A state write: journaled (and applied to the local state) unless replayed. */
  private write(
    kind: 'set' | 'clear' | 'clearAll',
    name: string | undefined,
    apply: () => Parameters<JournalRunner['fill']>[1],
  ): void {
    const r = this.runner;
    if (r.isEnded) return;
    journaled(
      r,
      kind,
      name,
      () => undefined,
      (index) => r.fill(index, apply()),
    );
  }

  private checkWritable(op: string): void {
    if (!this.writable) {
      const msg = `ctx.${op}() is not allowed in a shared handler: its state is read-only`;
      throw new DurableError(msg, ErrorCode.STATE_READ_ONLY);
    }
  }

  // ------------------------------------------------------------------ calls and sends

  private client<D>(
    kind: ServiceKind,
    def: { name: string },
    key: string | undefined,
    oneWay: boolean,
  ): unknown {
    if (kind !== 'service') checkTargetKey(key);
    return new Proxy(
      {},
      {
        get: (_t, handler) => {
          if (typeof handler !== 'string' || handler === 'then') return undefined;
          const t = { kind, service: def.name, handler, key };
          return (input?: unknown, opts?: unknown) =>
            oneWay
              ? sendTarget(this.env, t, input, optionsOf(opts))
              : callTarget<D>(this.env, t, input, optionsOf(opts));
        },
      },
    );
  }

  serviceClient<D extends Definition<'service', string, unknown>>(
    def: D | { name: D['name'] },
  ): Client<D> {
    return this.client('service', def, undefined, false) as Client<D>;
  }
  objectClient<D extends Definition<'object', string, unknown>>(
    def: D | { name: D['name'] },
    key: string,
  ): Client<D> {
    return this.client('object', def, key, false) as Client<D>;
  }
  workflowClient<D extends Definition<'workflow', string, unknown>>(
    def: D | { name: D['name'] },
    key: string,
  ): Client<D> {
    return this.client('workflow', def, key, false) as Client<D>;
  }
  serviceSendClient<D extends Definition<'service', string, unknown>>(
    def: D | { name: D['name'] },
  ): SendClient<D> {
    return this.client('service', def, undefined, true) as SendClient<D>;
  }
  objectSendClient<D extends Definition<'object', string, unknown>>(
    def: D | { name: D['name'] },
    key: string,
  ): SendClient<D> {
    return this.client('object', def, key, true) as SendClient<D>;
  }
  workflowSendClient<D extends Definition<'workflow', string, unknown>>(
    def: D | { name: D['name'] },
    key: string,
  ): SendClient<D> {
    return this.client('workflow', def, key, true) as SendClient<D>;
  }

  private generic(call: GenericCall): {
    kind: ServiceKind;
    service: string;
    handler: string;
    key: string | undefined;
  } {
    const kind = this.deps.kindOf(call.service) ?? (call.key === undefined ? 'service' : 'object');
    return { kind, service: call.service, handler: call.method, key: call.key };
  }

  genericCall<O = unknown>(call: GenericCall): DurablePromise<O> {
    return callTarget<O>(this.env, this.generic(call), call.parameter, call);
  }

  genericSend(send: GenericCall & { delay?: Duration }): InvocationHandle {
    return sendTarget(this.env, this.generic(send), send.parameter, send);
  }

  // ------------------------------------------------------------------ awakeables, promises, handles

  awakeable<T = unknown>(): { id: string; promise: DurablePromise<T> } {
    return newAwakeable<T>(this.env);
  }

  resolveAwakeable<T>(id: string, payload?: T): void {
    completeAwakeable(this.env, id, resolution(true, payload));
  }

  rejectAwakeable(id: string, reason: string): void {
    completeAwakeable(this.env, id, resolution(false, reason));
  }

  invocation<T = unknown>(invocationId: string): InvocationReference<T> {
    return invocationRef<T>(this.env, invocationId);
  }

  signal<T = unknown>(name: string): DurablePromise<T> {
    return awaitSignal<T>(this.env, name);
  }

  cancel(invocationId: string): void {
    invocationRef(this.env, invocationId).cancel();
  }

  promise<T = unknown>(name: string): WorkflowPromise<T> {
    if (this.deps.serviceKind !== 'workflow') {
      throw new TerminalError('ctx.promise() is only available in workflow handlers');
    }
    return workflowPromise<T>(this.env, name);
  }
}

function checkStateName(name: string): void {
  if (typeof name !== 'string' || name.length === 0)
    throw new TypeError('state key must be a non-empty string');
}

/** A console that stays quiet while the handler replays (delegates everything else to `base`). */
function quietConsole(base: Console, replaying: () => boolean, prefix: string): Console {
  const c = Object.create(base) as Console;
  for (const m of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    c[m] = (...args: unknown[]): void => {
      if (!replaying()) base[m](prefix, ...args);
    };
  }
  return c;
}
