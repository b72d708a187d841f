import {
  NonDeterminismError,
  type JournalEntryDescription,
  type SerializedError,
} from '../errors.js';
import type { ChildInvocationRequest } from '../store/invocation.js';

/**
 * One journal entry, as committed. Entries are addressed by their index in the
 * invocation's journal; replay must produce the same kind and name at every index.
 */
export type Entry =
  /** A `ctx.run` step and its recorded result (`v`) or terminal failure (`e`). */
  | { k: 'run'; n: string; v?: unknown; e?: SerializedError }
  /** A durable sleep; `due` is the store-clock time (ms) it ends. */
  | { k: 'sleep'; n?: string; due: number }
  /** A state read and the value it returned (null when absent). */
  | { k: 'get'; n: string; v: unknown }
  /** A state write. */
  | { k: 'set'; n: string; v: unknown }
  /** A state removal. */
  | { k: 'clear'; n: string }
  /** Removal of every state value. */
  | { k: 'clearAll' }
  /** A read of the state's key names. */
  | { k: 'keys'; v: string[] }
  /** A request-response call; its result arrives as a completion. `id` is the child invocation. */
  | { k: 'call'; n: string; id: string }
  /** A one-way send (possibly delayed); `id` is the child invocation. */
  | { k: 'send'; n: string; id: string }
  /** An awakeable; resolved from outside through its id. */
  | { k: 'awk'; n?: string; id: string }
  /** Resolution or rejection of someone's awakeable (an outgoing effect). */
  | { k: 'awkResolve'; n: string; v?: unknown; e?: SerializedError }
  /** Waiting on a workflow durable promise. */
  | { k: 'pget'; n: string }
  /** Peeking a workflow durable promise: the value seen (`v`), failure (`e`) or neither (pending). */
  | { k: 'ppeek'; n: string; v?: unknown; e?: SerializedError; done?: boolean }
  /** Resolving or rejecting a workflow durable promise; the result (accepted or 409) is a completion. */
  | { k: 'presolve'; n: string; v?: unknown; e?: SerializedError }
  /** Attaching to another invocation's result. */
  | { k: 'attach'; n: string }
  /** Cancelling another invocation (an outgoing effect). */
  | { k: 'cancelInv'; n: string }
  /** A combinator's outcome: the child indices that settled, in settling order, when it resolved. */
  | { k: 'comb'; n: string; v: number[] }
  /** Waiting for the named signal of this invocation (completed by another handler's `signal(name).resolve`). */
  | { k: 'sig'; n: string }
  /** Resolution or rejection of another invocation's named signal (an outgoing effect); `id` is that invocation. */
  | { k: 'sigResolve'; n: string; id: string; v?: unknown; e?: SerializedError }
  /** A signal observed by the invocation (cancellation) and the pending indices it rejected. */
  | { k: 'signal'; n: 'cancel'; v: number[] };

/** An entry not yet committed. A sleep carries its length; the store fixes `due` from its clock. */
export type NewEntry = Exclude<Entry, { k: 'sleep' }> | { k: 'sleep'; n?: string; ms: number };

/** How a completable entry ended: a JSON-encoded value, or a failure. */
export type Completion = { ok: true; v?: string } | { ok: false; e: SerializedError };

/**
 * A side effect a commit carries, applied by the store atomically with the
 * entries (same partition) or through the partition's outbox (other partitions).
 */
export type Effect =
  /** Start another invocation (a call or a send); `req` is the store's accept request. */
  | { t: 'accept'; index: number; req: ChildInvocationRequest }
  /** Resolve or reject an awakeable. */
  | { t: 'awakeable'; id: string; completion: Completion }
  /** Cancel another invocation. */
  | { t: 'cancel'; id: string }
  /** Deliver another invocation's outcome to this one at `index` (attach). */
  | { t: 'attach'; id: string; index: number }
  /** Wait on the workflow promise `name` of this invocation's key; its value completes `index`. */
  | { t: 'pget'; name: string; index: number }
  /** Read the workflow promise `name` now; the value (or pending) completes `index`. */
  | { t: 'ppeek'; name: string; index: number }
  /** Wait for this invocation's signal `name`: its value (now, or when it arrives) completes `index`. */
  | { t: 'sget'; name: string; index: number }
  /** Resolve or reject the signal `name` of invocation `id` (the first resolution wins). */
  | { t: 'signal'; id: string; name: string; completion: Completion }
  /** Resolve the workflow promise `name`; the completion at `index` says if this won. */
  | { t: 'presolve'; name: string; index: number; completion: Completion };

/**
 * An invocation started by a handler (a call or a send).
 * @deprecated Use `ChildInvocationRequest` (an `InvocationRequest` with its `id`).
 */
export type OutgoingInvocation = ChildInvocationRequest;

/** The kinds of entries. */
export type EntryKind = Entry['k'];

/** The entry kinds that only read or write the invocation's state. */
const STATE_KINDS: ReadonlySet<EntryKind> = new Set<EntryKind>([
  'get',
  'set',
  'clear',
  'clearAll',
  'keys',
]);

/** True for an entry kind that only reads or writes state (all an eager attempt admits). */
export function isStateKind(kind: EntryKind): boolean {
  return STATE_KINDS.has(kind);
}

/** A state mutation derived from an entry, applied atomically with it. */
export type StateOp =
  { op: 'set'; n: string; v: string } | { op: 'clear'; n: string } | { op: 'clearAll' };

/** The state mutations a batch of entries implies, in order (values JSON-encoded). */
export function stateOpsOf(entries: readonly NewEntry[]): StateOp[] {
  const ops: StateOp[] = [];
  for (const e of entries) {
    if (e.k === 'set') ops.push({ op: 'set', n: e.n, v: JSON.stringify(e.v) });
    else if (e.k === 'clear') ops.push({ op: 'clear', n: e.n });
    else if (e.k === 'clearAll') ops.push({ op: 'clearAll' });
  }
  return ops;
}

/** Describes an entry (kind and name) for error messages. */
export function describe(e: { k: string; n?: string | undefined }): JournalEntryDescription {
  return e.n === undefined ? { kind: e.k } : { kind: e.k, name: e.n };
}

/**
 * Checks that the recorded entry at `index` matches what the handler asks for
 * now; throws {@link NonDeterminismError} naming both otherwise.
 */
export function matchEntry(
  index: number,
  recorded: Entry,
  kind: EntryKind,
  name: string | undefined,
): void {
  const recordedName = 'n' in recorded ? recorded.n : undefined;
  if (recorded.k !== kind || recordedName !== name) {
    throw new NonDeterminismError(index, describe(recorded), describe({ k: kind, n: name }));
  }
}
