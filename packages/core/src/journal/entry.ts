import { NonDeterminismError, type JournalEntryDescription, type SerializedError } from '../errors.js';

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
  | { k: 'keys'; v: string[] };

/** An entry not yet committed. A sleep carries its length; the store fixes `due` from its clock. */
export type NewEntry = Exclude<Entry, { k: 'sleep' }> | { k: 'sleep'; n?: string; ms: number };

/** The kinds of entries. */
export type EntryKind = Entry['k'];

/** A state mutation derived from an entry, applied atomically with it. */
export type StateOp = { op: 'set'; n: string; v: string } | { op: 'clear'; n: string } | { op: 'clearAll' };

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
export function matchEntry(index: number, recorded: Entry, kind: EntryKind, name: string | undefined): void {
  const recordedName = 'n' in recorded ? recorded.n : undefined;
  if (recorded.k !== kind || recordedName !== name) {
    throw new NonDeterminismError(index, describe(recorded), describe({ k: kind, n: name }));
  }
}
