import type { Completion, Effect, Entry, EntryKind, NewEntry } from './entry.js';

/** Why an attempt stopped before its handler returned. */
export type Interrupt =
  { kind: 'suspended' } | { kind: 'fenced' } | { kind: 'failed'; error: Error };

/** Kinds of completable entries: their outcome settles after the entry is created. */
export type CompletableKind =
  'run' | 'sleep' | 'call' | 'awk' | 'sig' | 'pget' | 'ppeek' | 'presolve' | 'attach' | 'comb';

/** One entry whose outcome arrives later: a step result, a timer, a call result, an awakeable… */
export interface Completable {
  readonly index: number;
  readonly kind: CompletableKind;
  completion: Completion | undefined;
  /** Due time of a sleep (store clock). */
  due?: number;
  /** Child invocation of a call (cancelled with its parent). */
  childId?: string;
  /** True once the handler awaits (or combines) it. */
  awaited: boolean;
}

/** What the attempt awaits when it suspends. */
export interface SuspendOn {
  /** Earliest due sleep (store clock), if any. */
  wakeAt: number | null;
  /** Indices of pending completable entries (calls, awakeables, promises…). */
  awaiting: number[];
}

/**
 * Which journal entries an attempt may create (see `Attempt.admits`): an attempt that does not
 * admit a kind stops, as if fenced, before anything of that entry runs.
 */
export type AdmitPolicy = (kind: EntryKind) => boolean;

/** How a replayer is set up for one attempt. */
export interface ReplayerInit {
  /** The journal as recorded by earlier attempts. */
  recorded: readonly Entry[];
  /** Completions the store already holds, by entry index. */
  completions: Iterable<readonly [number, Completion]>;
  /** The store says a cancellation was requested (journaled where it is first observed). */
  cancelRequested: boolean;
  /** Inactivity before suspending while only waiting (ms); 0 suspends at once. */
  inactivityMs: number;
  /** Suspend after every committed step too (the always-suspend test mode). */
  suspendAfterSteps: boolean;
  /** The entry kinds this attempt may create (all when absent). */
  admits?: AdmitPolicy | undefined;
}

/**
 * What happens to the replayer: a handler call, an I/O result, a timer, a signal. Times (`now`)
 * are store-clock milliseconds given by the driver; the replayer reads no clock of its own.
 */
export type ReplayEvent =
  /** The handler makes a journaled call: the next index is handed out (or refused). */
  | { t: 'reserve'; kind: EntryKind; name: string | undefined }
  /** The new entry (and its effects) for a reserved index. */
  | { t: 'fill'; index: number; entry: NewEntry; effects: Effect[] }
  /** Someone waits for every entry up to `upto` to be committed. */
  | { t: 'want'; upto: number }
  /** A completable entry is created at a reserved index. */
  | {
      t: 'register';
      index: number;
      kind: CompletableKind;
      completion?: Completion;
      childId?: string;
    }
  /** The handler awaits the completable at `index`. */
  | { t: 'await'; index: number }
  /** The attempt itself settles an entry (a step's result, a combinator, a recorded winner). */
  | { t: 'settle'; index: number; completion: Completion }
  /** The store delivered a completion. */
  | { t: 'completion'; index: number; completion: Completion }
  /** A sleep's due time is known (`due`), or its timer fired (no `due`). */
  | { t: 'timer'; index: number; due?: number; now: number }
  /**
   * A combinator is created at `index` over the children at `children`; `recorded` is the order
   * its journal entry recorded (replay), absent for a live one.
   */
  | { t: 'combine'; index: number; children: number[]; recorded?: number[] }
  /** A child of the combinator at `index` settled (live: in settling order). */
  | { t: 'combSettled'; index: number; child: number }
  /** The combinator at `index` decided (live): later children no longer count. */
  | { t: 'combDecided'; index: number }
  /** A cancellation request arrived. */
  | { t: 'cancel' }
  /** A step closure starts or ends (no suspension while one runs). */
  | { t: 'step'; running: boolean }
  /** The commit of `count` entries from `from` succeeded (store clock `now`). */
  | {
      t: 'committed';
      from: number;
      count: number;
      now: number;
      completions: Map<number, Completion>;
    }
  /** The commit failed (lease lost, store error). */
  | { t: 'commitFailed'; error: Error }
  /** The inactivity timer fired. */
  | { t: 'idle' }
  /** Look again whether the attempt only waits (suspends, flushes, cancels accordingly). */
  | { t: 'check' }
  /** A step's result is committed: in the always-suspend mode, suspend now. */
  | { t: 'stepCommitted'; now: number }
  /** Suspend as soon as only waiting (graceful shutdown). */
  | { t: 'hurry' }
  /** The suspension was stored. */
  | { t: 'suspended' }
  /** The suspension failed (lease lost, store error): the attempt is over. */
  | { t: 'suspendFailed'; error: Error }
  /** The store refused the suspension: a completion or cancellation raced it; carry on. */
  | {
      t: 'resumed';
      from: number;
      count: number;
      now: number;
      completions: Map<number, Completion>;
      cancelled: boolean;
    }
  /** The attempt fails (a condition no handler code may catch, found by the driver). */
  | { t: 'fail'; error: Error }
  /** The lease is lost. */
  | { t: 'fenced' }
  /** The handler returned: no more entries are taken. */
  | { t: 'finish' };

/** What the driver must do, in order. */
export type Command =
  /** The answer to `reserve`: the index, and the recorded entry when replaying. */
  | { c: 'reserved'; index: number; recorded?: Entry }
  /** The answer to `reserve` when refused: throw `error` to the handler. */
  | { c: 'refused'; error: Error }
  /** Commit these entries (one fenced store operation), then report `committed`/`commitFailed`. */
  | { c: 'commit'; from: number; entries: NewEntry[]; effects: Effect[] }
  /** Every entry below `below` is committed: release those waiting for them. */
  | { c: 'flushed'; below: number }
  /** Commits failed: reject everyone waiting for one. */
  | { c: 'flushFailed'; error: Error }
  /** The completable at `index` settled: tell its listeners (and drop its timer). */
  | { c: 'settled'; index: number; completion: Completion }
  /**
   * Decide the combinator at `index` from the children settled so far, in `order` (`final`: the
   * recorded order, all settled: it must decide now).
   */
  | { c: 'combined'; index: number; order: number[]; final: boolean }
  /** Report `timer` for the sleep at `index` when the store clock reaches `at`. */
  | { c: 'armTimer'; index: number; at: number }
  /** Report `idle` after `ms` unless disarmed. */
  | { c: 'armIdle'; ms: number }
  /** Drop the inactivity timer. */
  | { c: 'disarmIdle' }
  /** Drop every timer (the attempt stops running). */
  | { c: 'disarmAll' }
  /** Report `check` once the commands before this one are done. */
  | { c: 'check' }
  /** Commit what is pending and suspend on `on`; report `suspended`, `resumed` or `fail`. */
  | { c: 'suspend'; on: SuspendOn }
  /** The attempt is over before its handler returned. */
  | { c: 'interrupt'; interrupt: Interrupt };
