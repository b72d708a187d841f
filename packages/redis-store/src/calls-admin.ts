/**
 * The typed script layer, everything off an attempt's own path: deliveries, signals, control,
 * purge, state patches, attaches, outcome watches, the reconciler's sweep and the hand-off
 * registry. As in `calls.ts`: named fields in, in the order the script's header documents, and
 * the reply decoded once here.
 */
import { decodeLease, type Lease } from './calls-lease.js';
import type { Wakes } from './calls.js';
import type { ScriptedRedis } from './scripts.js';

export type DeliverReply = { tag: 'ok' | 'dup' | 'done' | 'gone' | 'full'; wakes: Wakes };

export async function deliverCompletion(
  redis: ScriptedRedis,
  inv: string,
  a: {
    id: string;
    index: number;
    completionJson: string;
    part: string;
    graceMs: number;
    completionChannel: string;
    /** What it completes: 'result', 'pget' or an awakeable id. */
    want: string;
    /** The most completions the invocation may hold, or '' for no cap. */
    cap: number | '';
  },
): Promise<DeliverReply> {
  const r = (await redis.deliverCompletion(
    inv,
    a.id,
    a.index,
    a.completionJson,
    a.part,
    a.graceMs,
    a.completionChannel,
    a.want,
    a.cap,
  )) as unknown[];
  return { tag: r[0] as DeliverReply['tag'], wakes: r[1] as Wakes };
}

export type SignalReply = { tag: 'ok' | 'dup' | 'done' | 'gone'; wakes: Wakes };

export async function resolveSignal(
  redis: ScriptedRedis,
  inv: string,
  a: {
    id: string;
    name: string;
    completionJson: string;
    part: string;
    graceMs: number;
    completionChannel: string;
  },
): Promise<SignalReply> {
  const r = (await redis.resolveSignal(
    inv,
    a.id,
    a.name,
    a.completionJson,
    a.part,
    a.graceMs,
    a.completionChannel,
  )) as unknown[];
  return { tag: r[0] as SignalReply['tag'], wakes: r[1] as Wakes };
}

/** The KEYS of the control scripts for one invocation. */
export interface ControlKeys {
  inv: string;
  /** The key's inbox (exclusive and workflow invocations only). */
  inbox: string | undefined;
  fence: string;
  due: string;
}

export type TerminateReply =
  | { tag: 'gone' }
  | { tag: 'done' }
  | { tag: 'signalled' }
  | { tag: 'wake'; wakes: Wakes }
  | { tag: 'terminated'; nextId: string; nextDs: number; notify: boolean };

export async function terminateInvocation(
  redis: ScriptedRedis,
  ks: ControlKeys,
  a: {
    id: string;
    kind: 'kill' | 'cancel';
    part: string;
    graceMs: number;
    completionChannel: string;
    failureJson: string;
    /** The workflow's state key, or ''. */
    workflowState: string;
  },
): Promise<TerminateReply> {
  const args: (string | number)[] = [3, ks.inv, ks.fence, ks.due];
  if (ks.inbox !== undefined) {
    args[0] = 4;
    args.push(ks.inbox);
  }
  args.push(
    a.id,
    a.kind,
    a.part,
    a.graceMs,
    '',
    a.completionChannel,
    a.failureJson,
    a.workflowState,
  );
  const r = (await redis.terminateInvocation(...args)) as unknown[];
  switch (r[0]) {
    case 'wake':
      return { tag: 'wake', wakes: r[1] as Wakes };
    case 'terminated':
      return {
        tag: 'terminated',
        nextId: String(r[1]),
        nextDs: Number(r[2]),
        notify: Number(r[3]) === 1,
      };
    case 'signalled':
      return { tag: 'signalled' };
    case 'done':
      return { tag: 'done' };
    default:
      return { tag: 'gone' };
  }
}

export type ControlReply =
  { tag: 'paused' } | { tag: 'wake'; wakes: Wakes } | { tag: 'noop' | 'gone' };

export async function controlInvocation(
  redis: ScriptedRedis,
  ks: ControlKeys,
  a: {
    id: string;
    kind: 'pause' | 'resume';
    graceMs: number;
    part: string;
    completionChannel: string;
  },
): Promise<ControlReply> {
  const r = (await redis.controlInvocation(
    ks.inv,
    ks.fence,
    ks.due,
    a.id,
    a.kind,
    a.graceMs,
    a.part,
    a.completionChannel,
  )) as unknown[];
  if (r[0] === 'wake') return { tag: 'wake', wakes: r[1] as Wakes };
  if (r[0] === 'paused') return { tag: 'paused' };
  return { tag: r[0] === 'gone' ? 'gone' : 'noop' };
}

export async function purgeInvocation(
  redis: ScriptedRedis,
  inv: string,
  a: { id: string; part: string; workflowState: string; workflowFence: string },
): Promise<{ tag: 'purged' | 'running' | 'gone' }> {
  const r = (await redis.purgeInvocation(
    inv,
    a.id,
    a.part,
    a.workflowState,
    a.workflowFence,
  )) as unknown[];
  return { tag: r[0] as 'purged' | 'running' | 'gone' };
}

export async function patchState(
  redis: ScriptedRedis,
  keys: { state: string; fence: string; keyIndex: string },
  key: string,
  patch: Record<string, unknown>,
): Promise<{ tag: 'ok' | 'busy' }> {
  const args: string[] = [];
  for (const [name, v] of Object.entries(patch)) {
    args.push(name, v === null || v === undefined ? '' : JSON.stringify(v));
  }
  const n = args.length / 2;
  const r = (await redis.patchState(
    keys.state,
    keys.fence,
    n,
    ...args,
    keys.keyIndex,
    key,
  )) as unknown[];
  return { tag: r[0] === 'ok' ? 'ok' : 'busy' };
}

export type AttachReply =
  { tag: 'completed'; completion: string } | { tag: 'ok' } | { tag: 'gone' };

export async function attachInvocation(
  redis: ScriptedRedis,
  inv: string,
  a: { id: string; part: string; member: string },
): Promise<AttachReply> {
  const r = (await redis.attachInvocation(inv, a.id, a.part, a.member)) as unknown[];
  if (r[0] === 'completed') return { tag: 'completed', completion: r[1] as string };
  return { tag: r[0] === 'gone' ? 'gone' : 'ok' };
}

export async function ackDeliveries(
  redis: ScriptedRedis,
  keys: { notify: string; due: string },
  id: string,
  members: string[],
): Promise<void> {
  await redis.ackDeliveries(keys.notify, keys.due, id, ...members);
}

export type WatchReply = { tag: 'completed'; ok: boolean; payload: string } | { tag: 'waiting' };

export async function watchOutcome(
  redis: ScriptedRedis,
  inv: string,
  a: { id: string; part: string; channel: string },
): Promise<WatchReply> {
  const r = (await redis.watchOutcome(inv, a.id, a.part, a.channel)) as unknown[];
  if (r[0] !== 'completed') return { tag: 'waiting' };
  return { tag: 'completed', ok: r[1] !== 'err', payload: r[2] as string };
}

/** One partition's sweep (see `reconcilePartition-2.lua`), decoded. */
export interface Sweep {
  /** Overdue invocations to dispatch again (recoveries): flat {id, ds, svc, key, mode} tuples. */
  dispatch: Wakes;
  /** Timers that came due (timed waits less than grace past their wake time), as `dispatch`. */
  fire: Wakes;
  /** Completed invocations whose outcomes are owed to callers. */
  deliver: string[];
  /** Overdue outbox members. */
  outbox: string[];
  /** How far past its deadline the most overdue recovery was (ms); absent when none was. */
  lagMs?: number;
  /** Ms until the earliest deadline left in the partition (0: sweep again now); absent when none is. */
  waitMs?: number;
  /** Due timers left beyond `fireMax` (still due); how late the latest of them is (ms). */
  held: number;
  heldLateMs: number;
  /** Timers that came due and were leased to the sweeping worker (given `workerId`): run them. */
  leased: { id: string; lease: Lease }[];
}

/** Sweeps one partition (one slot: each partition's sweep is its own call). */
export async function reconcilePartition(
  redis: ScriptedRedis,
  keys: { due: string; outbox: string },
  a: {
    part: string;
    max: number;
    graceMs: number;
    fireMax: number;
    /** Lease the suspended and backing-off timers it fires to this worker ('' or absent: none). */
    workerId?: string;
    leaseMs?: number;
  },
): Promise<Sweep> {
  const res = await redis.reconcilePartition(
    keys.due,
    keys.outbox,
    a.part,
    a.max,
    a.graceMs,
    a.fireMax,
    a.workerId ?? '',
    a.leaseMs ?? 0,
  );
  const [dispatch, deliver, outbox, lag, fire, wait, held, heldLate, flat] = res as [
    Wakes,
    string[],
    string[],
    number,
    Wakes,
    number,
    number,
    number,
    unknown[],
  ];
  const leased: Sweep['leased'] = [];
  for (let i = 0; i + 1 < flat.length; i += 2)
    leased.push({ id: flat[i] as string, lease: decodeLease(flat[i + 1] as unknown[]) });
  const sweep: Sweep = { dispatch, fire, deliver, outbox, held, heldLateMs: heldLate, leased };
  if (typeof lag === 'number' && lag >= 0) sweep.lagMs = lag;
  if (typeof wait === 'number' && wait >= 0) sweep.waitMs = wait;
  return sweep;
}

/** Takes or renews (`take`) or gives up (`release`) a partition's duty lease; true when held/released. */
export async function claimPartition(
  redis: ScriptedRedis,
  key: string,
  a: { dutyId: string; op: 'take' | 'release'; leaseMs: number },
): Promise<boolean> {
  return (await redis.claimPartition(key, a.dutyId, a.op, a.leaseMs)) === 1;
}

/** Beats (or leaves) the live-process registry; the duty ids of the live processes, sorted. */
export async function heartbeatProcess(
  redis: ScriptedRedis,
  key: string,
  a: { dutyId: string; op: 'beat' | 'leave'; ttlMs: number },
): Promise<string[]> {
  const ids = (await redis.heartbeatProcess(key, a.dutyId, a.op, a.ttlMs)) as string[];
  return ids.sort();
}

export type RestartReply =
  | { tag: 'ok'; ds: number }
  | { tag: 'gone' }
  | { tag: 'running'; status: string }
  | { tag: 'workflow' }
  | { tag: 'exists' };

/** `restartInvocation-5.lua`: a completed invocation started again as a new one. */
export async function restartInvocation(
  redis: ScriptedRedis,
  keys: { oldInv: string; inv: string; journal: string; completions: string; due: string },
  a: {
    oldId: string;
    id: string;
    seed: string;
    graceMs: number;
    /** The kept entries, as stored (JSON). */
    entries: string[];
    /** The kept entries' completions: index → completion JSON. */
    completions: [number, string][];
  },
): Promise<RestartReply> {
  const args: (string | number)[] = [keys.oldInv, keys.inv, keys.journal, keys.completions];
  args.push(keys.due, a.oldId, a.id, a.seed, a.graceMs, a.entries.length, ...a.entries);
  args.push(a.completions.length);
  for (const [i, c] of a.completions) args.push(i, c);
  const r = (await redis.restartInvocation(...args)) as unknown[];
  switch (r[0]) {
    case 'ok':
      return { tag: 'ok', ds: Number(r[1]) };
    case 'running':
      return { tag: 'running', status: String(r[1]) };
    case 'workflow':
    case 'exists':
    case 'gone':
      return { tag: r[0] };
    default:
      return { tag: 'gone' };
  }
}

/**
 * Announces (`ttlMs` > 0, with its free slots), renews or withdraws (`ttlMs` 0) a worker in the
 * hand-off registry, or only reads it (`worker` ''); resolves with the live workers' free slots.
 */
export async function announceWorker(
  redis: ScriptedRedis,
  registry: string,
  a: { worker: string; ttlMs: number; free: number },
): Promise<Map<string, number>> {
  const r = (await redis.announceWorker(registry, a.worker, a.ttlMs, a.free)) as string[];
  const live = new Map<string, number>();
  for (let i = 0; i + 1 < r.length; i += 2) live.set(r[i]!, Number(r[i + 1]));
  return live;
}
