/**
 * The typed script layer, hot path: one function per Lua script an invocation's life runs
 * (accept, start, commit, suspend, complete, end, renew). Each takes its keys and arguments as
 * named fields, sends them in the order its script's header documents (`lua/<name>-<n>.lua`),
 * and decodes the reply once, here, into a discriminated union on `tag`. Nothing else reads a
 * script reply by index. The admin and delivery scripts are in `calls-admin.ts`.
 */
import type { Completion, TargetMode } from '@latchkey/core';
import type { ScriptedRedis } from './scripts.js';
import { decodeLease, type Lease } from './calls-lease.js';
import { parseCompletions, type ScriptKeys } from './wire.js';

export type { Lease } from './calls-lease.js';

/** A reply of a fenced write refused: another attempt holds the fence (see `fencedError`). */
export interface Fenced {
  tag: 'fenced';
  why: string;
}

/**
 * Flat wake tuples `{id, ds, svc, key, mode, ...}` a script returns for the invocations it made
 * ready; read only by {@link forEachWake} (no allocation per wake).
 */
export type Wakes = {
  readonly length: number;
  readonly [i: number]: string | number | undefined;
} & { readonly __wakes: true };

/** Calls `fn` for each invocation in a script's wake tuples. */
export function forEachWake(
  wakes: Wakes | undefined,
  fn: (id: string, ds: number, service: string, key: string, mode: TargetMode) => void,
): void {
  if (!wakes) return;
  for (let i = 0; i < wakes.length; i += 5) {
    const key = String(wakes[i + 3] ?? '');
    fn(
      String(wakes[i]),
      Number(wakes[i + 1]),
      String(wakes[i + 2]),
      key,
      wakes[i + 4] as TargetMode,
    );
  }
}

/** An accept (`acceptInvocation-7.lua`; its header documents every field). */
export interface AcceptCall {
  /** The invocation's keys: only those it needs (see the script's header). */
  keys: {
    inv: string;
    due: string;
    fence: string;
    /** Objects and workflows. */
    state: string | undefined;
    /** Exclusive and workflow invocations. */
    inbox: string | undefined;
    /** A workflow run's record as earlier versions wrote it (read only: now the fence's 'run'). */
    workflow: string | undefined;
    /** With an idempotency key, its record. */
    idempotency: string | undefined;
  };
  id: string;
  service: string;
  handler: string;
  key: string;
  mode: TargetMode;
  input: string;
  idempotencyKey: string;
  headersJson: string;
  delayMs: number;
  graceMs: number;
  /** `<journal>,<idempotency>,<workflow>` ms (see wire.ts retentionArg). */
  retention: string;
  part: string;
  /** `<callerId>:<index>` of a waiting caller, or ''. */
  member: string;
  /** The worker to lease a ready invocation to at once, or ''. */
  workerId: string;
  leaseMs: number;
  outcomeChannel: string;
  /**
   * A delegated accept (see `delegate.ts`): the script tells the process listening on
   * `outcomeChannel` the outcome when it completed the call eagerly, else this note (`+`: the
   * eager run stopped short or was not tried; `=`: no free slot to try one).
   */
  delegated?: '+' | '=' | undefined;
  seed: string;
  /** `<id>:<index>` of the handler invocation that called or sent it, or ''. */
  invokedBy: string;
  /** The trace context to keep ('traceparent[;tracestate]'), or ''. */
  trace: string;
  /**
   * The hand-off (see `handoff.ts`): another process's worker to hand the invocation to when it
   * is ready and not leased here; undefined for none.
   */
  handoff?: { channel: string; worker: string; start: string } | undefined;
  /** An eager run's epoch, outcome and batch (see `eagerArgs`), or undefined. */
  eager: (string | number)[] | undefined;
}

export type AcceptReply =
  | { tag: 'dup'; id: string; reason: 'idempotency' | 'workflow'; completion: string }
  | { tag: 'exists'; completion: string }
  | {
      tag: 'ok';
      status: string;
      ds: number;
      delayMs: number;
      /** How many subscribers the hand-off message reached (0: none sent, or nobody heard it). */
      handed: number;
    }
  | { tag: 'run'; epoch: string; now: number; state: string[] }
  | { tag: 'done'; epoch: string; now: number };

/** The key count, KEYS and ARGV of an accept script call, in the order its header documents. */
export function acceptArgs(a: AcceptCall): (string | number)[] {
  const k = a.keys;
  const args: (string | number)[] = [3, k.inv, k.due, k.fence];
  if (k.state !== undefined) args.push(k.state);
  if (k.inbox !== undefined) args.push(k.inbox);
  if (k.workflow !== undefined) args.push(k.workflow);
  if (k.idempotency !== undefined) args.push(k.idempotency);
  args[0] = args.length - 1;
  args.push(
    a.id,
    a.service,
    a.handler,
    a.key,
    a.mode,
    a.input,
    a.idempotencyKey,
    a.headersJson,
    a.delayMs,
    a.graceMs,
    a.retention,
    a.part,
    a.member,
    a.delegated ?? '',
    a.workerId,
    a.leaseMs,
    a.outcomeChannel,
    a.seed,
    a.invokedBy,
    a.trace,
    a.handoff?.channel ?? '',
    a.handoff?.worker ?? '',
    a.handoff?.start ?? '',
  );
  if (a.eager) for (const x of a.eager) args.push(x);
  else args.push('');
  return args;
}

export async function acceptInvocation(redis: ScriptedRedis, a: AcceptCall): Promise<AcceptReply> {
  const r = (await redis.acceptInvocation(...acceptArgs(a))) as unknown[];
  switch (r[0]) {
    case 'dup':
      return {
        tag: 'dup',
        id: r[1] as string,
        reason: r[2] as 'idempotency' | 'workflow',
        completion: r[3] as string,
      };
    case 'exists':
      return { tag: 'exists', completion: r[1] as string };
    case 'run':
      return { tag: 'run', epoch: r[1] as string, now: Number(r[2]), state: r[3] as string[] };
    case 'done':
      return { tag: 'done', epoch: r[1] as string, now: Number(r[2]) };
    default:
      return {
        tag: 'ok',
        status: r[1] as string,
        ds: Number(r[2]),
        delayMs: Number(r[3]),
        handed: Number(r[4] ?? 0),
      };
  }
}

/**
 * The key count and KEYS of an attempt script: invocation hash, journal, fence, the due set
 * (`due`), then the state hash and (`inbox`) the key's inbox when the invocation has them.
 */
function attemptKeys(ks: ScriptKeys, due: boolean, inbox: boolean): (string | number)[] {
  const args: (string | number)[] = [0, ks.inv, ks.journal, ks.fence];
  if (due) args.push(ks.due);
  if (ks.state !== undefined) args.push(ks.state);
  if (inbox && ks.inbox !== undefined) args.push(ks.inbox);
  args[0] = args.length - 1;
  return args;
}

export type StartReply =
  { tag: 'skip'; why: string } | { tag: 'busy' } | { tag: 'early'; ms: number } | Lease;

export async function startAttempt(
  redis: ScriptedRedis,
  ks: ScriptKeys,
  a: { id: string; workerId: string; leaseMs: number; graceMs: number; part: string },
): Promise<StartReply> {
  const args = attemptKeys(ks, true, true);
  args.push(a.id, a.workerId, a.leaseMs, a.graceMs, a.part);
  const r = (await redis.startAttempt(...args)) as unknown[];
  switch (r[0]) {
    case 'run':
      return decodeLease(r);
    case 'early':
      return { tag: 'early', ms: Number(r[1]) };
    case 'busy':
      return { tag: 'busy' };
    default:
      return { tag: 'skip', why: String(r[1]) };
  }
}

/** Hands back a hand-off lease its worker never used (`releaseLease-3.lua`). */
export async function releaseLease(
  redis: ScriptedRedis,
  ks: ScriptKeys,
  a: { id: string; epoch: string; graceMs: number; part: string },
): Promise<{ tag: 'ok'; ds: number } | { tag: 'fenced' }> {
  const r = (await redis.releaseLease(
    ks.inv,
    ks.fence,
    ks.due,
    a.id,
    a.epoch,
    a.graceMs,
    a.part,
  )) as unknown[];
  return r[0] === 'ok' ? { tag: 'ok', ds: Number(r[1]) } : { tag: 'fenced' };
}

/** The arguments every fenced write of an attempt carries. */
export interface FencedWrite {
  id: string;
  epoch: string;
  fromIndex: number;
  part: string;
  graceMs: number;
  completionChannel: string;
  /** The batch: entries, ops and effects as `batchArgs` lays them out. */
  batch: (string | number)[];
}

export type CommitReply =
  { tag: 'ok'; now: number; completions: Map<number, Completion>; wakes: Wakes } | Fenced;

export async function commitEntries(
  redis: ScriptedRedis,
  ks: ScriptKeys,
  a: FencedWrite,
): Promise<CommitReply> {
  const args = attemptKeys(ks, false, false);
  args.push(a.id, a.epoch, a.fromIndex, a.part, a.graceMs, a.completionChannel);
  for (const x of a.batch) args.push(x);
  const r = (await redis.commitEntries(...args)) as unknown[];
  if (r[0] !== 'ok') return { tag: 'fenced', why: String(r[1]) };
  return {
    tag: 'ok',
    now: Number(r[1]),
    completions: parseCompletions(r[2]),
    wakes: r[3] as Wakes,
  };
}

export type SuspendReply =
  | { tag: 'ok'; now: number; ds: number; wakes: Wakes }
  | {
      tag: 'resume';
      now: number;
      completions: Map<number, Completion>;
      wakes: Wakes;
      cancelled: boolean;
    }
  | Fenced;

export async function suspendInvocation(
  redis: ScriptedRedis,
  ks: ScriptKeys,
  a: FencedWrite & { wakeAt: number | null; awaiting: number[] },
): Promise<SuspendReply> {
  const args = attemptKeys(ks, true, false);
  args.push(a.id, a.epoch, a.fromIndex, a.wakeAt === null ? '' : a.wakeAt, a.graceMs);
  args.push(a.part, a.completionChannel, a.awaiting.length);
  for (const x of a.awaiting) args.push(x);
  for (const x of a.batch) args.push(x);
  const r = (await redis.suspendInvocation(...args)) as unknown[];
  switch (r[0]) {
    case 'ok':
      return { tag: 'ok', now: Number(r[1]), ds: Number(r[2]), wakes: r[3] as Wakes };
    case 'resume':
      return {
        tag: 'resume',
        now: Number(r[1]),
        completions: parseCompletions(r[2]),
        wakes: r[3] as Wakes,
        cancelled: Number(r[4]) === 1,
      };
    default:
      return { tag: 'fenced', why: String(r[1]) };
  }
}

export type CompleteReply =
  | {
      tag: 'ok';
      /** The key's next invocation ('' for none) and its dispatch sequence. */
      nextId: string;
      nextDs: number;
      /** True when outcomes await delivery to the notify set. */
      notify: boolean;
      wakes: Wakes;
      /** The lease of the next invocation when the script leased it to this worker. */
      next: Lease | undefined;
    }
  | Fenced;

export async function completeInvocation(
  redis: ScriptedRedis,
  ks: ScriptKeys,
  a: FencedWrite & {
    ok: boolean;
    payload: string;
    ownChannel: string;
    workerId: string;
    leaseMs: number;
  },
): Promise<CompleteReply> {
  const args = attemptKeys(ks, true, true);
  args.push(a.id, a.epoch, a.fromIndex, a.ok ? 'ok' : 'err', a.payload);
  args.push(a.part, a.graceMs, a.ownChannel, a.completionChannel, a.workerId, a.leaseMs);
  for (const x of a.batch) args.push(x);
  const r = (await redis.completeInvocation(...args)) as unknown[];
  if (r[0] !== 'ok') return { tag: 'fenced', why: String(r[1]) };
  return {
    tag: 'ok',
    nextId: String(r[1]),
    nextDs: Number(r[2]),
    notify: Number(r[3]) === 1,
    wakes: r[4] as Wakes,
    next: Array.isArray(r[5]) ? decodeLease(r[5] as unknown[]) : undefined,
  };
}

export type EndReply = { tag: 'ok'; ds: number; delayMs: number } | Fenced;

export async function endAttempt(
  redis: ScriptedRedis,
  ks: ScriptKeys,
  a: {
    id: string;
    epoch: string;
    kind: 'retry' | 'pause';
    failureJson: string;
    delayMs: number;
    graceMs: number;
    /** The failure's detail for operators (`FailureDetail` JSON), or ''. */
    detailJson: string;
  },
): Promise<EndReply> {
  const r = (await redis.endAttempt(
    ks.inv,
    ks.fence,
    ks.due,
    a.id,
    a.epoch,
    a.kind,
    a.failureJson,
    a.delayMs,
    a.graceMs,
    a.detailJson,
  )) as unknown[];
  if (r[0] !== 'ok') return { tag: 'fenced', why: String(r[1]) };
  return { tag: 'ok', ds: Number(r[1]), delayMs: Number(r[2]) };
}

export type RenewReply = { tag: 'ok'; now: number } | Fenced;

export async function renewLease(
  redis: ScriptedRedis,
  ks: ScriptKeys,
  a: { id: string; epoch: string; leaseMs: number },
): Promise<RenewReply> {
  const r = (await redis.renewLease(
    ks.inv,
    ks.fence,
    ks.due,
    a.id,
    a.epoch,
    a.leaseMs,
  )) as unknown[];
  if (r[0] !== 'ok') return { tag: 'fenced', why: typeof r[1] === 'string' ? r[1] : 'fenced' };
  return { tag: 'ok', now: Number(r[1]) };
}
