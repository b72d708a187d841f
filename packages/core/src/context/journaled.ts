import type { Completion, Effect, Entry, EntryKind, NewEntry } from '../journal/entry.js';
import type { Completable, CompletableKind, JournalRunner } from '../runtime/journal-runner.js';
import { DurablePromise, type Decode } from './durable-promise.js';

/** A new entry to journal: its effects, and whether to commit it now (`flush`). */
export interface NewRecord {
  entry: NewEntry;
  effects?: Effect[];
  /** Commit now: the entry has effects someone waits on (a call, a signal…). */
  flush?: boolean;
}

/** Journals a new entry at a reserved index (committing it now when `flush`). */
export function record(r: JournalRunner, index: number, rec: NewRecord): void {
  r.fill(index, rec.entry, rec.effects);
  r.trace?.entry(index, rec.entry, r.storeNow());
  if (rec.flush === true) r.flushThrough(index).catch(() => undefined);
}

/**
 * One journaled call that settles at once (state, sends, resolutions): reserves the next entry;
 * when the journal holds it, `replay` answers from it, else `fresh` records a new one.
 */
export function journaled<R>(
  r: JournalRunner,
  kind: EntryKind,
  name: string | undefined,
  replay: (recorded: Entry) => R,
  fresh: (index: number) => R,
): R {
  const { index, recorded } = r.reserve(kind, name);
  return recorded ? replay(recorded) : fresh(index);
}

/** A promise of a call made after its attempt ended: it never settles. */
export function dead<T>(r: JournalRunner): DurablePromise<T> {
  return new DurablePromise<T>(r, undefined, () => undefined as T);
}

/** How a completable call journals itself (see {@link durable}). */
export interface DurableSpec {
  /** The child invocation id (of a call), from its recorded entry or made for `index`. */
  childId?(recorded: Entry | undefined, index: number): string;
  /** The result a recorded entry already holds (a step's). */
  recordedCompletion?(recorded: Entry): Completion | undefined;
  /** The new entry to journal (none: it is filled later, as a step's result is). */
  fresh?(index: number, childId: string | undefined): NewRecord | undefined;
  /** Runs once the entry is registered (replayed or new). */
  then?(c: Completable, recorded: Entry | undefined): void;
}

/**
 * One journaled call whose outcome arrives later (a step, timer, call, awakeable, promise…):
 * reserves the next entry, registers it as completable (with what the journal or the store
 * already knows), journals it when new, and returns the promise of its outcome.
 */
export function durable<T>(
  r: JournalRunner,
  kind: CompletableKind,
  name: string | undefined,
  decode: Decode<T>,
  spec: DurableSpec = {},
): DurablePromise<T> {
  if (r.isEnded) return dead<T>(r);
  const { index, recorded } = r.reserve(kind, name);
  const childId = spec.childId?.(recorded, index);
  const completion = recorded ? spec.recordedCompletion?.(recorded) : undefined;
  const init: { completion?: Completion; childId?: string } = {};
  if (completion !== undefined) init.completion = completion;
  if (childId !== undefined) init.childId = childId;
  const c = r.register(index, kind, init);
  if (!recorded) {
    const rec = spec.fresh?.(index, childId);
    if (rec) record(r, index, rec);
  }
  spec.then?.(c, recorded);
  return new DurablePromise<T>(r, c, decode);
}
