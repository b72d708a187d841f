/**
 * The store's side of the script protocol: how entries, state ops and effects become script
 * arguments, the completions hash's decoding, and the small records the store passes around
 * (each script's call and reply are in `calls.ts` / `calls-admin.ts`; the Lua side is in `lua/`).
 */
import { randomBytes } from 'node:crypto';
import type {
  ChildInvocationRequest,
  Completion,
  Effect,
  NewEntry,
  Outcome,
  SerializedError,
  StartedInvocation,
  StateOp,
  TargetMode,
} from '@latchkey/core';
import { stepMsOf } from '@latchkey/core/internal';

/**
 * Random bytes for a new invocation, drawn 39 at a time from a pool refilled in large blocks (one
 * RNG call per 256 invocations): the first picks a partition when the target does not, the next 22
 * make the id, the last 16 the invocation's secret seed (see {@link seedOf}).
 */
const ID_BYTES = 39;
let idPool = Buffer.alloc(0);
let idPoolAt = 0;
export function randomId(): Buffer {
  if (idPoolAt + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_BYTES * 256);
    idPoolAt = 0;
  }
  idPoolAt += ID_BYTES;
  return idPool.subarray(idPoolAt - ID_BYTES, idPoolAt);
}

/** The secret seed in a {@link randomId} draw (128 bits, base64url). */
export function seedOf(random: Buffer): string {
  return random.subarray(23, 39).toString('base64url');
}

/** Applies committed state ops to a state map (as the scripts' `apply_ops` does to the hash). */
export function applyOps(state: Map<string, string>, ops: StateOp[]): void {
  for (const op of ops) {
    if (op.op === 'set') state.set(op.n, op.v);
    else if (op.op === 'clear') state.delete(op.n);
    else state.clear();
  }
}

/** A state hash from a flat HGETALL reply. */
export function stateMap(flat: string[]): Map<string, string> {
  const state = new Map<string, string>();
  for (let i = 0; i < flat.length; i += 2) state.set(flat[i]!, flat[i + 1]!);
  return state;
}

/**
 * A fresh invocation's first attempt, as a script that leased it at once (the accept's local
 * lease, a hand-off lease) describes it: everything but the Redis clock and the key's state is
 * what the accepting process sent.
 */
export function freshInvocation(
  f: {
    id: string;
    service: string;
    handler: string;
    /** The object or workflow key; undefined for a service. */
    key: string | undefined;
    mode: TargetMode;
    input: string;
    headers: Record<string, string>;
    seed: string;
    trace: string | undefined;
  },
  now: number,
  state: string[],
): StartedInvocation {
  const inv: StartedInvocation = {
    id: f.id,
    target: {
      service: f.service,
      handler: f.handler,
      ...(f.key !== undefined ? { key: f.key } : {}),
    },
    mode: f.mode,
    input: f.input,
    headers: f.headers,
    attempt: 1,
    journal: [],
    state: stateMap(state),
    now,
    completions: new Map(),
    cancelRequested: false,
    seed: f.seed,
    createdAt: now,
    readyAt: now,
  };
  if (f.trace !== undefined) inv.trace = f.trace;
  return inv;
}

export interface JobData {
  i: string;
  s: string;
  k: string;
  m: TargetMode;
}

/** The KEYS of an invocation's attempt scripts (only those its mode needs). */
export interface ScriptKeys {
  p: number;
  inv: string;
  journal: string;
  /** The fence hash: the key's for exclusive and workflow invocations, else the invocation hash. */
  fence: string;
  due: string;
  /** The state hash of objects and workflows (none for a service). */
  state: string | undefined;
  /** The key's inbox (exclusive and workflow invocations only). */
  inbox: string | undefined;
}

export function toSerializedError(json: string): SerializedError {
  try {
    return JSON.parse(json) as SerializedError;
  } catch {
    return { name: 'Error', code: 'INTERNAL', message: json };
  }
}

/**
 * Serializes a new entry. Every entry is its JSON, except a new sleep: `@<ms>` or
 * `@<ms>|<name as JSON>`, from which the script writes the whole entry with its due time taken
 * from the Redis clock (see `entries_at` in the prelude). The first character tells the forms
 * apart; user data inside an entry's JSON is never searched.
 */
export function encodeEntry(e: NewEntry): string {
  if (e.k === 'sleep') {
    const ms = Math.max(0, Math.round(e.ms));
    return e.n === undefined ? `@${ms}` : `@${ms}|${JSON.stringify(e.n)}`;
  }
  return JSON.stringify(e);
}

export const DAY_MS = 86_400_000;
let lastRetention: [number, number, number, string] | undefined;
/**
 * The retention the accept script stores ('ret'): `<journal>,<idempotency>,<workflow>` in ms (an
 * earlier version stored JSON, still read). The last one is kept (handlers rarely differ).
 */
export function retentionArg(journal: number, idempotency: number, workflow: number): string {
  const l = lastRetention;
  if (l && l[0] === journal && l[1] === idempotency && l[2] === workflow) return l[3];
  const arg = `${journal},${idempotency},${workflow}`;
  lastRetention = [journal, idempotency, workflow, arg];
  return arg;
}

export function batchArgs(
  entries: NewEntry[],
  ops: StateOp[],
  effects: (string | number)[][] = [],
  from = 0,
): (string | number)[] {
  const args: (string | number)[] = [entries.length, ...entries.map(encodeEntry), ops.length];
  for (const op of ops) {
    if (op.op === 'set') args.push('s', op.n, op.v);
    else if (op.op === 'clear') args.push('c', op.n, '');
    else args.push('a', '', '');
  }
  args.push(effects.length);
  for (const e of effects) args.push(...e, ...Array<string>(6 - e.length).fill(''));
  // The batch's step durations, for operators (see `commit_batch`): only when it has steps.
  let steps = '';
  for (let i = 0; i < entries.length; i++) {
    const ms = stepMsOf(entries[i]!);
    if (ms !== undefined) steps += `${steps === '' ? '' : ','}${from + i}:${ms}`;
  }
  if (steps !== '') args.push(steps);
  return args;
}

/**
 * Completions by journal index from a completions hash (flat HGETALL). The hash also holds
 * buffered signals (`s:<name>`) and their waiters (`sw:<name>`), which are not completions.
 */
export function parseCompletions(flat: unknown): Map<number, Completion> {
  const m = new Map<number, Completion>();
  const a = (flat ?? []) as string[];
  for (let i = 0; i < a.length; i += 2) {
    const index = a[i]!;
    if (/^\d+$/.test(index)) m.set(Number(index), JSON.parse(a[i + 1]!) as Completion);
  }
  return m;
}

/**
 * A child invocation as an outbox member stores it (the accept effect's `req`): the target's
 * fields flat, in this order. Outbox members are JSON kept in Redis and removed by their exact
 * text, so this shape and its key order are a data format (see {@link wireInvocation}).
 */
export interface WireInvocation {
  id: string;
  service: string;
  handler: string;
  mode: TargetMode;
  input: string;
  journalRetentionMs?: number;
  idempotencyRetentionMs?: number;
  workflowRetentionMs?: number;
  key?: string;
  headers?: Record<string, string>;
  idempotencyKey?: string;
  caller?: { id: string; index: number };
  delayMs?: number;
  /** The handler invocation and entry that called or sent it (for operators). */
  parent?: { id: string; index: number };
  /** The trace context it starts under (`InvocationRequest.trace`). */
  trace?: string;
}

/** An effect as an outbox member stores it. */
export type WireEffect =
  Exclude<Effect, { t: 'accept' }> | { t: 'accept'; index: number; req: WireInvocation };

/** The stored form of a child invocation request (same JSON, byte for byte, as before the merge). */
export function wireInvocation(req: ChildInvocationRequest): WireInvocation {
  const t = req.target;
  const w: WireInvocation = {
    id: req.id,
    service: t.service,
    handler: t.handler,
    mode: req.mode,
    input: req.input,
    journalRetentionMs: req.journalRetentionMs,
    idempotencyRetentionMs: req.idempotencyRetentionMs,
    workflowRetentionMs: req.workflowRetentionMs,
  };
  if (t.key !== undefined) w.key = t.key;
  if (req.headers !== undefined) w.headers = req.headers;
  if (req.idempotencyKey !== undefined) w.idempotencyKey = req.idempotencyKey;
  if (req.caller !== undefined) w.caller = req.caller;
  if (req.delayMs !== undefined) w.delayMs = req.delayMs;
  if (req.parent !== undefined) w.parent = req.parent;
  if (req.trace !== undefined) w.trace = req.trace;
  return w;
}

/** The stored form of an effect. */
export function wireEffect(e: Effect): WireEffect {
  return e.t === 'accept' ? { t: 'accept', index: e.index, req: wireInvocation(e.req) } : e;
}

/** An outbox member: an effect on another partition, with the invocation that issued it. */
export interface OutboxItem {
  s: string;
  e: WireEffect;
}

export function completionOf(o: Outcome): Completion {
  if (!o.ok) return { ok: false, e: o.error };
  return o.value === undefined ? { ok: true } : { ok: true, v: o.value };
}
