import type { ServiceKind } from '../define/definitions.js';
import { durationMs, timerMs } from '../define/duration.js';
import type { WorkflowOptions } from '../define/options.js';
import type { SendOptions } from '../define/rpc.js';
import { bytesOf, encodeStored, isJson, type Serde } from '../define/serde.js';
import { TerminalError, deserializeTerminalError } from '../errors.js';
import type { Completion } from '../journal/entry.js';
import { never, type JournalRunner } from '../runtime/journal-runner.js';
import type { ChildInvocationRequest, StartedInvocation, Target, TargetMode } from '../store.js';
import { decodeJson, type DurablePromise } from './durable-promise.js';
import { dead, durable, journaled, record } from './journaled.js';
import type { InvocationHandle } from './types.js';

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
  /** A state value the invocation was started without (`lazyState`) was read: see `Attempt.needState`. */
  needState?: ((names: string[]) => void) | undefined;
}

/** What the context's calls work with: the journal, the invocation, the runtime. */
export interface ContextEnv {
  readonly runner: JournalRunner;
  readonly inv: StartedInvocation;
  readonly deps: ContextDeps;
}

/** A call's or send's target: who, and how it is addressed. */
export interface CallTarget {
  kind: ServiceKind;
  service: string;
  handler: string;
  key: string | undefined;
}

/** A call's or send's input as kept, encoded by the target's input serde (JSON by default). */
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

function outgoing(
  env: ContextEnv,
  t: CallTarget,
  input: unknown,
  opts: SendOptions | undefined,
  childId: string,
): ChildInvocationRequest {
  const info = env.deps.resolveTarget(t.service, t.handler, t.kind);
  const o = info.options;
  const retention = (d: typeof o.journalRetention): number =>
    d !== undefined ? durationMs(d) : DAY;
  const req: ChildInvocationRequest = {
    id: childId,
    target: targetOf(t),
    mode: info.mode,
    input: encodeCallInput(opts?.input ?? info.input, input),
    journalRetentionMs: retention(o.journalRetention),
    idempotencyRetentionMs: retention(o.idempotencyRetention),
    workflowRetentionMs: retention(o.workflowRetention),
  };
  if (opts?.headers) req.headers = opts.headers;
  if (opts?.idempotencyKey !== undefined) req.idempotencyKey = opts.idempotencyKey;
  return req;
}

function targetOf(t: CallTarget): Target {
  return { service: t.service, handler: t.handler, ...(t.key !== undefined ? { key: t.key } : {}) };
}

/** A request-response call: journaled with its child's id, its result a completion. */
export function callTarget<T>(
  env: ContextEnv,
  t: CallTarget,
  input: unknown,
  opts: SendOptions | undefined,
): DurablePromise<T> {
  const r = env.runner;
  if (r.isEnded) return dead<T>(r);
  checkNames(t.key, opts?.idempotencyKey);
  const output = opts?.output ?? env.deps.resolveTarget(t.service, t.handler, t.kind).output;
  const decode = isJson(output)
    ? decodeJson<T>
    : (done: Completion) => decodeBytes(output!, done) as T;
  return durable<T>(r, 'call', `${t.service}/${t.handler}`, decode, {
    childId: (rec, index) =>
      rec?.k === 'call' ? rec.id : env.deps.childId(index, targetOf(t), opts?.idempotencyKey),
    fresh: (index, childId) => {
      const req = outgoing(env, t, input, opts, childId!);
      req.caller = { id: env.inv.id, index };
      req.parent = { id: env.inv.id, index };
      const trace = r.trace?.child('call', req.target, index);
      if (trace !== undefined) req.trace = trace;
      const entry = { k: 'call' as const, n: `${t.service}/${t.handler}`, id: childId! };
      return { entry, effects: [{ t: 'accept', index, req }], flush: true };
    },
  });
}

/** A one-way send (possibly delayed): its handle's id is known once the entry is committed. */
export function sendTarget(
  env: ContextEnv,
  t: CallTarget,
  input: unknown,
  opts: SendOptions | undefined,
): InvocationHandle {
  const r = env.runner;
  if (r.isEnded) return deadHandle;
  // Checked before the entry is reserved: a bad key or delay throws and journals nothing.
  checkNames(t.key, opts?.idempotencyKey);
  const delayMs = opts?.delay !== undefined ? timerMs(opts.delay, 'send delay') : undefined;
  const name = `${t.service}/${t.handler}`;
  return journaled<InvocationHandle>(
    r,
    'send',
    name,
    (rec) => ({ invocationId: Promise.resolve(rec.k === 'send' ? rec.id : '') }),
    (index) => {
      const childId = env.deps.childId(index, targetOf(t), opts?.idempotencyKey);
      const req = outgoing(env, t, input, opts, childId);
      if (delayMs !== undefined) req.delayMs = delayMs;
      req.parent = { id: env.inv.id, index };
      const trace = r.trace?.child('send', req.target, index);
      if (trace !== undefined) req.trace = trace;
      const entry = { k: 'send' as const, n: name, id: childId };
      record(r, index, { entry, effects: [{ t: 'accept', index, req }] });
      const committed = r.flushThrough(index).then(() => childId);
      committed.catch(() => undefined);
      return { invocationId: committed };
    },
  );
}

/** A lone surrogate: no UTF-8 encoding (and so no store key) can hold it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A call's or send's key and idempotency key must be well-formed Unicode (else a 400). */
function checkNames(key: string | undefined, idempotencyKey: string | undefined): void {
  for (const [what, v] of [
    ['key', key],
    ['idempotency key', idempotencyKey],
  ] as const) {
    if (v !== undefined && (typeof v !== 'string' || LONE_SURROGATE.test(v))) {
      const msg = `the ${what} of a call or send must be a well-formed Unicode string`;
      throw new TerminalError(msg, { errorCode: 400 });
    }
  }
}

/** Object and workflow clients need a key. */
export function checkTargetKey(key: string | undefined): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new TypeError('object and workflow clients need a non-empty key');
  }
}
