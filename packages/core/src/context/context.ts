import type { Definition, ServiceKind } from '../define/definitions.js';
import { durationMs, timerMs, type Duration } from '../define/duration.js';
import type { WorkflowOptions } from '../define/options.js';
import { bytesOf, encodeStored, isJson, type Serde } from '../define/serde.js';
import { optionsOf, type SendOptions } from '../define/rpc.js';
import {
  DurableError,
  ErrorCode,
  TerminalError,
  deserializeTerminalError,
  ensureError,
  isTerminalError,
  serializeError,
} from '../errors.js';
import type { Completion } from '../journal/entry.js';
import { never, type JournalRunner } from '../runtime/journal-runner.js';
import type { ChildInvocationRequest, StartedInvocation, Target, TargetMode } from '../store.js';
import { DurablePromise, decodeJson, sleepPromise } from './durable-promise.js';
import { createRand } from './rand.js';
import { awakeableId } from './secrets.js';
import type {
  Client,
  ContextDate,
  GenericCall,
  InvocationHandle,
  InvocationReference,
  ObjectContext,
  Rand,
  Request,
  RunOptions,
  SendClient,
  WorkflowContext,
  WorkflowPromise,
} from './types.js';

const DAY = 86_400_000;

/** How a target handler runs, as far as this process knows its definition. */
export interface TargetInfo {
  mode: TargetMode;
  options: WorkflowOptions;
  /** The target handler's input and output serdes, when this process serves it. */
  input?: Serde<unknown> | undefined;
  output?: Serde<unknown> | undefined;
}

/** Resolves a target's mode and options (from local definitions, else by convention). */
export type TargetResolver = (service: string, handler: string, kind: ServiceKind) => TargetInfo;

/** What a context needs from its runtime. */
export interface ContextDeps {
  /** Deterministic id of the invocation started by entry `index`. */
  childId(index: number, target: Target, idempotencyKey?: string): string;
  resolveTarget: TargetResolver;
  /** The kind of a service by name, when this process knows it. */
  kindOf(service: string): ServiceKind | undefined;
  /** The kind of the service this handler belongs to. */
  serviceKind: ServiceKind;
  /** This handler's input serde (how `ctx.request().body`'s bytes are kept); JSON when absent. */
  inputSerde?: Serde<unknown> | undefined;
}

function roundTrip<T>(v: T): T {
  if (v === undefined) return v;
  return JSON.parse(JSON.stringify(v)) as T;
}

function runDelay(opts: RunOptions, retry: number): number {
  const initial = opts.initialRetryInterval !== undefined ? durationMs(opts.initialRetryInterval) : 50;
  const factor = opts.retryIntervalFactor ?? 2;
  const cap = opts.maxRetryInterval !== undefined ? durationMs(opts.maxRetryInterval) : 10_000;
  return Math.min(cap, initial * factor ** retry);
}

/** A call's or send's input as it is kept, encoded by the target's input serde (JSON unless it says otherwise). */
function encodeCallInput(serde: Serde<unknown> | undefined, v: unknown): string {
  if (!isJson(serde)) return encodeStored(serde, v)!;
  if (v === undefined) return '';
  // JSON given as bytes (Restate's genericCall takes the parameter as bytes) is kept as its text.
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  return JSON.stringify(v);
}

/** A completion decoded by a serde that is not JSON (a failure becomes a `TerminalError`). */
function decodeBytes(serde: Serde<unknown>, c: Completion): unknown {
  if (!c.ok) throw deserializeTerminalError(c.e);
  return serde.deserialize(bytesOf(serde, c.v ?? ''));
}

const deadHandle: InvocationHandle = { invocationId: never() };

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
  /** The console `ctx.console` writes to, or a function that makes it (on first use). */
  private readonly logger: Console | (() => Console);
  // Built on first use: most handlers use none of them, and every invocation builds a context.
  private randValue: Rand | undefined;
  private dateValue: ContextDate | undefined;
  private consoleValue: Console | undefined;
  private requestValue: Request | undefined;

  constructor(runner: JournalRunner, inv: StartedInvocation, writable: boolean, logger: Console | (() => Console), deps: ContextDeps) {
    this.runner = runner;
    this.inv = inv;
    this.writable = writable;
    this.deps = deps;
    this.logger = logger;
    this.state = new Map(inv.state);
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
    return (this.consoleValue ??= quietConsole(base, () => this.runner.replaying, `[${inv.target.service}/${inv.target.handler}][${inv.id}]`));
  }

  get key(): string {
    const k = this.inv.target.key;
    if (k === undefined) throw new TerminalError('this handler has no key (it is a service handler)');
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
      typeof a === 'string' ? [a, b as () => T | Promise<T>, c] : ['', a, b as RunOptions | undefined];
    if (typeof action !== 'function') throw new TypeError('ctx.run needs a function');
    const r = this.runner;
    if (r.isEnded) return new DurablePromise<T>(r, undefined, () => undefined as T);
    const { index, recorded } = r.reserve('run', name);
    if (recorded?.k === 'run') {
      const done: Completion = recorded.e ? { ok: false, e: recorded.e } : { ok: true, v: recorded.v === undefined ? undefined : JSON.stringify(recorded.v) };
      return new DurablePromise<T>(r, r.register(index, 'run', { completion: done }), decodeJson);
    }
    const comp = r.register(index, 'run');
    void this.runStep(index, name, action, options);
    return new DurablePromise<T>(r, comp, decodeJson);
  }

  private async runStep<T>(index: number, name: string, action: () => T | Promise<T>, options: RunOptions | undefined): Promise<void> {
    const r = this.runner;
    // A closure may send an awakeable's id out: the awakeable must be completable by then.
    const awakeables = r.awakeablesCommitted();
    if (awakeables) {
      try {
        await awakeables;
      } catch {
        return; // lease lost: the attempt is over
      }
      if (r.isEnded) return;
    }
    r.beginStep();
    let done: Completion;
    let value: unknown;
    try {
      value = roundTrip(await this.execute(action, options));
      done = { ok: true, v: value === undefined ? undefined : JSON.stringify(value) };
    } catch (e) {
      if (!isTerminalError(e)) {
        // No result is recorded: the attempt fails and the step runs again on retry.
        r.endStep();
        r.fail(e);
        return;
      }
      done = { ok: false, e: serializeError(e) };
    }
    r.endStep();
    if (r.isEnded) return;
    r.fill(index, done.ok ? { k: 'run', n: name, ...(value === undefined ? {} : { v: value }) } : { k: 'run', n: name, e: done.e });
    try {
      await r.flushThrough(index);
      // Always-suspend mode: the step's result is replayed from the journal by the next attempt.
      if (await r.suspendAfterStep()) return;
    } catch {
      return; // lease lost: the attempt is over
    }
    r.settle(index, done);
  }

  private async execute<T>(action: () => T | Promise<T>, options: RunOptions | undefined): Promise<T> {
    if (!options || (options.maxRetryAttempts === undefined && options.maxRetryDuration === undefined)) {
      return await action();
    }
    const started = Date.now();
    const maxDuration = options.maxRetryDuration !== undefined ? durationMs(options.maxRetryDuration) : Infinity;
    const maxAttempts = options.maxRetryAttempts ?? Infinity;
    for (let attempt = 1; ; attempt++) {
      try {
        return await action();
      } catch (e) {
        if (isTerminalError(e)) throw e;
        const delay = runDelay(options, attempt - 1);
        if (attempt >= maxAttempts || Date.now() - started + delay > maxDuration) {
          throw new TerminalError(`ctx.run retries exhausted after ${attempt} attempts: ${ensureError(e).message}`);
        }
        await new Promise((res) => setTimeout(res, delay));
        if (this.runner.isEnded) return never();
      }
    }
  }

  sleep(duration: Duration, name?: string): DurablePromise<void> {
    return sleepPromise(this.runner, timerMs(duration, 'sleep'), name);
  }

  // ------------------------------------------------------------------ state

  get<T = unknown>(name: string): Promise<T | null> {
    const r = this.runner;
    if (r.isEnded) return never();
    checkStateName(name);
    const { index, recorded } = r.reserve('get', name);
    if (recorded?.k === 'get') return Promise.resolve(recorded.v as T | null);
    const raw = this.state.get(name);
    const v = raw === undefined ? null : (JSON.parse(raw) as T);
    r.fill(index, { k: 'get', n: name, v });
    return Promise.resolve(v);
  }

  stateKeys(): Promise<string[]> {
    const r = this.runner;
    if (r.isEnded) return never();
    const { index, recorded } = r.reserve('keys', undefined);
    if (recorded?.k === 'keys') return Promise.resolve(recorded.v);
    const keys = [...this.state.keys()].sort();
    r.fill(index, { k: 'keys', v: keys });
    return Promise.resolve(keys);
  }

  set<T>(name: string, value: T): void {
    this.checkWritable('set');
    checkStateName(name);
    if (this.runner.isEnded) return;
    const { index, recorded } = this.runner.reserve('set', name);
    if (recorded) return;
    const json = JSON.stringify(value === undefined ? null : value);
    this.state.set(name, json);
    this.runner.fill(index, { k: 'set', n: name, v: JSON.parse(json) as unknown });
  }

  clear(name: string): void {
    this.checkWritable('clear');
    checkStateName(name);
    if (this.runner.isEnded) return;
    const { index, recorded } = this.runner.reserve('clear', name);
    if (recorded) return;
    this.state.delete(name);
    this.runner.fill(index, { k: 'clear', n: name });
  }

  clearAll(): void {
    this.checkWritable('clearAll');
    if (this.runner.isEnded) return;
    const { index, recorded } = this.runner.reserve('clearAll', undefined);
    if (recorded) return;
    this.state.clear();
    this.runner.fill(index, { k: 'clearAll' });
  }

  private checkWritable(op: string): void {
    if (!this.writable) {
      throw new DurableError(`ctx.${op}() is not allowed in a shared handler: its state is read-only`, ErrorCode.STATE_READ_ONLY);
    }
  }

  // ------------------------------------------------------------------ calls and sends

  private outgoing(kind: ServiceKind, service: string, handler: string, key: string | undefined, input: unknown, opts: SendOptions | undefined, index: number, childId: string): ChildInvocationRequest {
    const info = this.deps.resolveTarget(service, handler, kind);
    const o = info.options;
    const req: ChildInvocationRequest = {
      id: childId,
      target: { service, handler, ...(key !== undefined ? { key } : {}) },
      mode: info.mode,
      input: encodeCallInput(opts?.input ?? info.input, input),
      journalRetentionMs: o.journalRetention !== undefined ? durationMs(o.journalRetention) : DAY,
      idempotencyRetentionMs: o.idempotencyRetention !== undefined ? durationMs(o.idempotencyRetention) : DAY,
      workflowRetentionMs: o.workflowRetention !== undefined ? durationMs(o.workflowRetention) : DAY,
    };
    void index;
    if (opts?.headers) req.headers = opts.headers;
    if (opts?.idempotencyKey !== undefined) req.idempotencyKey = opts.idempotencyKey;
    return req;
  }

  private call<T>(kind: ServiceKind, service: string, handler: string, key: string | undefined, input: unknown, opts: SendOptions | undefined): DurablePromise<T> {
    const r = this.runner;
    if (r.isEnded) return new DurablePromise<T>(r, undefined, () => undefined as T);
    const name = `${service}/${handler}`;
    checkNames(key, opts?.idempotencyKey);
    const { index, recorded } = r.reserve('call', name);
    const target: Target = { service, handler, ...(key !== undefined ? { key } : {}) };
    const childId = recorded?.k === 'call' ? recorded.id : this.deps.childId(index, target, opts?.idempotencyKey);
    const c = r.register(index, 'call', { childId });
    if (!recorded) {
      const req = this.outgoing(kind, service, handler, key, input, opts, index, childId);
      req.caller = { id: this.inv.id, index };
      r.fill(index, { k: 'call', n: name, id: childId }, [{ t: 'accept', index, req }]);
      r.flushThrough(index).catch(() => undefined);
    }
    const output = opts?.output ?? this.deps.resolveTarget(service, handler, kind).output;
    return new DurablePromise<T>(r, c, isJson(output) ? decodeJson : (done) => decodeBytes(output!, done) as T);
  }

  private send(kind: ServiceKind, service: string, handler: string, key: string | undefined, input: unknown, opts: SendOptions | undefined): InvocationHandle {
    const r = this.runner;
    if (r.isEnded) return deadHandle;
    const name = `${service}/${handler}`;
    // Checked before the entry is reserved: a bad key or delay throws and journals nothing.
    checkNames(key, opts?.idempotencyKey);
    const delayMs = opts?.delay !== undefined ? timerMs(opts.delay, 'send delay') : undefined;
    const { index, recorded } = r.reserve('send', name);
    if (recorded?.k === 'send') return { invocationId: Promise.resolve(recorded.id) };
    const target: Target = { service, handler, ...(key !== undefined ? { key } : {}) };
    const childId = this.deps.childId(index, target, opts?.idempotencyKey);
    const req = this.outgoing(kind, service, handler, key, input, opts, index, childId);
    if (delayMs !== undefined) req.delayMs = delayMs;
    r.fill(index, { k: 'send', n: name, id: childId }, [{ t: 'accept', index, req }]);
    const committed = r.flushThrough(index).then(() => childId);
    committed.catch(() => undefined);
    return { invocationId: committed };
  }

  private client<D>(kind: ServiceKind, def: { name: string }, key: string | undefined, oneWay: boolean): unknown {
    if (kind !== 'service') checkTargetKey(key);
    return new Proxy(
      {},
      {
        get: (_t, handler) => {
          if (typeof handler !== 'string' || handler === 'then') return undefined;
          return (input?: unknown, opts?: unknown) =>
            oneWay
              ? this.send(kind, def.name, handler, key, input, optionsOf(opts))
              : this.call<D>(kind, def.name, handler, key, input, optionsOf(opts));
        },
      },
    );
  }

  serviceClient<D extends Definition<'service', string, unknown>>(def: D | { name: D['name'] }): Client<D> {
    return this.client('service', def, undefined, false) as Client<D>;
  }
  objectClient<D extends Definition<'object', string, unknown>>(def: D | { name: D['name'] }, key: string): Client<D> {
    return this.client('object', def, key, false) as Client<D>;
  }
  workflowClient<D extends Definition<'workflow', string, unknown>>(def: D | { name: D['name'] }, key: string): Client<D> {
    return this.client('workflow', def, key, false) as Client<D>;
  }
  serviceSendClient<D extends Definition<'service', string, unknown>>(def: D | { name: D['name'] }): SendClient<D> {
    return this.client('service', def, undefined, true) as SendClient<D>;
  }
  objectSendClient<D extends Definition<'object', string, unknown>>(def: D | { name: D['name'] }, key: string): SendClient<D> {
    return this.client('object', def, key, true) as SendClient<D>;
  }
  workflowSendClient<D extends Definition<'workflow', string, unknown>>(def: D | { name: D['name'] }, key: string): SendClient<D> {
    return this.client('workflow', def, key, true) as SendClient<D>;
  }

  private kindOf(service: string, key: string | undefined): ServiceKind {
    return this.deps.kindOf(service) ?? (key === undefined ? 'service' : 'object');
  }

  genericCall<O = unknown>(call: GenericCall): DurablePromise<O> {
    return this.call<O>(this.kindOf(call.service, call.key), call.service, call.method, call.key, call.parameter, call);
  }

  genericSend(send: GenericCall & { delay?: Duration }): InvocationHandle {
    return this.send(this.kindOf(send.service, send.key), send.service, send.method, send.key, send.parameter, send);
  }

  // ------------------------------------------------------------------ awakeables, promises, handles

  awakeable<T = unknown>(): { id: string; promise: DurablePromise<T> } {
    const r = this.runner;
    if (r.isEnded) return { id: '', promise: new DurablePromise<T>(r, undefined, () => undefined as T) };
    const { index, recorded } = r.reserve('awk', undefined);
    const id = recorded?.k === 'awk' ? recorded.id : awakeableId(this.inv.id, index, this.inv.seed);
    const c = r.register(index, 'awk');
    if (!recorded) {
      r.fill(index, { k: 'awk', id });
      // The store completes an awakeable only once its entry is committed: no step closure
      // (which may hand the id out) starts before it is (see runStep).
      r.noteAwakeable(index);
    }
    return { id, promise: new DurablePromise<T>(r, c, decodeJson) };
  }

  private completeAwakeable(id: string, completion: Completion): void {
    const r = this.runner;
    if (r.isEnded) return;
    const { index, recorded } = r.reserve('awkResolve', id);
    if (recorded) return;
    const entry = completion.ok
      ? { k: 'awkResolve' as const, n: id, ...(completion.v === undefined ? {} : { v: JSON.parse(completion.v) as unknown }) }
      : { k: 'awkResolve' as const, n: id, e: completion.e };
    r.fill(index, entry, [{ t: 'awakeable', id, completion }]);
    r.flushThrough(index).catch(() => undefined);
  }

  resolveAwakeable<T>(id: string, payload?: T): void {
    this.completeAwakeable(id, { ok: true, v: payload === undefined ? undefined : JSON.stringify(payload) });
  }

  rejectAwakeable(id: string, reason: string): void {
    this.completeAwakeable(id, { ok: false, e: serializeError(new TerminalError(reason)) });
  }

  invocation<T = unknown>(invocationId: string): InvocationReference<T> {
    return {
      attach: () => {
        const r = this.runner;
        if (r.isEnded) return new DurablePromise<T>(r, undefined, () => undefined as T);
        const { index, recorded } = r.reserve('attach', invocationId);
        const c = r.register(index, 'attach');
        if (!recorded) {
          r.fill(index, { k: 'attach', n: invocationId }, [{ t: 'attach', id: invocationId, index }]);
          r.flushThrough(index).catch(() => undefined);
        }
        return new DurablePromise<T>(r, c, decodeJson);
      },
      cancel: () => this.cancel(invocationId),
      signal: <V>(name: string) => ({
        resolve: (value?: V) => this.completeSignal(invocationId, name, { ok: true, v: value === undefined ? undefined : JSON.stringify(value) }),
        reject: (reason: string) => this.completeSignal(invocationId, name, { ok: false, e: serializeError(new TerminalError(reason)) }),
      }),
    };
  }

  signal<T = unknown>(name: string): DurablePromise<T> {
    const r = this.runner;
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('a signal needs a non-empty name');
    if (r.isEnded) return new DurablePromise<T>(r, undefined, () => undefined as T);
    const { index, recorded } = r.reserve('sig', name);
    const c = r.register(index, 'sig');
    if (!recorded) {
      r.fill(index, { k: 'sig', n: name }, [{ t: 'sget', name, index }]);
      r.flushThrough(index).catch(() => undefined);
    }
    return new DurablePromise<T>(r, c, decodeJson);
  }

  private completeSignal(invocationId: string, name: string, completion: Completion): void {
    const r = this.runner;
    if (r.isEnded) return;
    if (typeof invocationId !== 'string' || typeof name !== 'string' || name.length === 0) {
      throw new TypeError('a signal needs an invocation id and a non-empty name');
    }
    const { index, recorded } = r.reserve('sigResolve', name);
    if (recorded) return;
    const entry = completion.ok
      ? { k: 'sigResolve' as const, n: name, id: invocationId, ...(completion.v === undefined ? {} : { v: JSON.parse(completion.v) as unknown }) }
      : { k: 'sigResolve' as const, n: name, id: invocationId, e: completion.e };
    r.fill(index, entry, [{ t: 'signal', id: invocationId, name, completion }]);
    r.flushThrough(index).catch(() => undefined);
  }

  cancel(invocationId: string): void {
    const r = this.runner;
    if (r.isEnded) return;
    const { index, recorded } = r.reserve('cancelInv', invocationId);
    if (recorded) return;
    r.fill(index, { k: 'cancelInv', n: invocationId }, [{ t: 'cancel', id: invocationId }]);
    r.flushThrough(index).catch(() => undefined);
  }

  promise<T = unknown>(name: string): WorkflowPromise<T> {
    if (this.deps.serviceKind !== 'workflow') {
      throw new TerminalError('ctx.promise() is only available in workflow handlers');
    }
    const r = this.runner;
    const completable = (kind: 'pget' | 'ppeek' | 'presolve', completion?: Completion): DurablePromise<unknown> => {
      if (r.isEnded) return new DurablePromise<unknown>(r, undefined, () => undefined);
      const { index, recorded } = r.reserve(kind, name);
      const c = r.register(index, kind);
      if (!recorded) {
        if (kind === 'presolve') {
          const entry = completion!.ok
            ? { k: 'presolve' as const, n: name, ...(completion!.v === undefined ? {} : { v: JSON.parse(completion!.v) as unknown }) }
            : { k: 'presolve' as const, n: name, e: (completion as Extract<Completion, { ok: false }>).e };
          r.fill(index, entry, [{ t: 'presolve', name, index, completion: completion! }]);
        } else {
          r.fill(index, { k: kind, n: name }, [{ t: kind === 'pget' ? 'pget' : 'ppeek', name, index }]);
        }
        r.flushThrough(index).catch(() => undefined);
      }
      return new DurablePromise<unknown>(r, c, decodeJson);
    };
    // Awaiting the promise itself (or combining it) waits for its value, as `get()` does: the entry
    // is created when it is first awaited, and `get()` on the same object shares it.
    let got: DurablePromise<T> | undefined;
    const get = (): DurablePromise<T> => (got ??= completable('pget') as DurablePromise<T>);
    const methods: Pick<WorkflowPromise<T>, 'get' | 'peek' | 'resolve' | 'reject'> = {
      get,
      peek: async () => {
        const p = completable('ppeek');
        return (await p) as T | undefined;
      },
      resolve: async (value?: T) => {
        await completable('presolve', { ok: true, v: value === undefined ? undefined : JSON.stringify(value) });
      },
      reject: async (reason: string) => {
        await completable('presolve', { ok: false, e: serializeError(new TerminalError(reason)) });
      },
    };
    return Object.assign(new DurablePromise<T>(r, () => get().completable, decodeJson), methods);
  }
}

function checkStateName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('state key must be a non-empty string');
}

/** A lone surrogate: no UTF-8 encoding (and so no store key) can hold it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A call's or send's key and idempotency key must be well-formed Unicode (a `TerminalError`, 400, otherwise). */
function checkNames(key: string | undefined, idempotencyKey: string | undefined): void {
  for (const [what, v] of [['key', key], ['idempotency key', idempotencyKey]] as const) {
    if (v !== undefined && (typeof v !== 'string' || LONE_SURROGATE.test(v))) {
      throw new TerminalError(`the ${what} of a call or send must be a well-formed Unicode string`, { errorCode: 400 });
    }
  }
}

function checkTargetKey(key: string | undefined): void {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('object and workflow clients need a non-empty key');
}

/** A console that stays quiet while the handler replays (delegates everything else to `base`). */
function quietConsole(base: Console, replaying: () => boolean, prefix: string): Console {
  const c = Object.create(base) as Console;
  for (const m of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    const fn = base[m];
    c[m] = (...args: unknown[]): void => {
      if (!replaying()) fn.call(base, prefix, ...args);
    };
  }
  return c;
}
