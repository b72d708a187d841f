import { CancelledError, serializeError } from '../errors.js';
import type { Completion, Effect, Entry, NewEntry } from './entry.js';
import type {
  AdmitPolicy,
  Command,
  Completable,
  CompletableKind,
  Interrupt,
  ReplayerInit,
} from './replay-types.js';

export const CANCELLED: Completion = { ok: false, e: serializeError(new CancelledError()) };

/**
 * The completable kinds the store completes (call results, attached outcomes, awakeables, workflow
 * promises): only these take a completion delivered by the store. A step's result, a timer and a
 * combinator are settled by the attempt alone, whatever a store's completions hash holds.
 */
export const STORE_COMPLETED: ReadonlySet<CompletableKind> = new Set<CompletableKind>([
  'call',
  'attach',
  'awk',
  'sig',
  'pget',
  'ppeek',
  'presolve',
]);

/** True for entries a cancellation rejects and a suspension waits on (not steps, combinators). */
export function waitsOnOthers(kind: CompletableKind): boolean {
  return kind !== 'run' && kind !== 'comb';
}

/**
 * The lifecycle of an attempt: `running` → `suspending` → `ended` (suspended), or back to
 * `running` when the store refuses the suspension; `running` → `ended` otherwise (completed,
 * failed, fenced). Only `running` takes new entries, settles from the store and arms timers.
 */
export type Life = 'running' | 'suspending' | 'ended';

/** Cancellation: none yet, requested but not journaled, journaled by this attempt, or recorded. */
export type CancelState = 'none' | 'pending' | 'applied' | 'recorded';

/**
 * The journal side of a {@link Replayer}: indices, recorded entries, completable entries and
 * their settlement, batches of new entries and their commits. Pure: no I/O, no clock.
 */
export abstract class ReplayState {
  protected readonly recorded: readonly Entry[];
  protected next = 0;
  protected committedLen: number;
  protected readonly slots = new Map<number, { entry: NewEntry; effects: Effect[] }>();
  protected readonly dues = new Map<number, number>();
  /** The highest index someone waits to be committed (-1: none). */
  protected wanted = -1;
  protected flushing = false;
  protected inflight = 0;
  protected readonly completables = new Map<number, Completable>();
  protected readonly completions: Map<number, Completion>;
  protected idleArmed = false;
  protected lifecycle: Life = 'running';
  protected cancel: CancelState = 'none';
  /** A recorded cancellation found nothing pending: it rejects the next waiting entry. */
  protected rejectNext = false;
  /** An interrupt that arrived while suspending: it ends the attempt if the store refuses. */
  protected deferred: Interrupt | undefined;
  protected inactivityMs: number;
  protected readonly suspendAfterSteps: boolean;
  protected readonly admits: AdmitPolicy | undefined;
  /** The highest index of an awakeable entry created by this attempt (-1: none). */
  protected lastAwakeable = -1;
  protected out: Command[] = [];
  /** Combinators not decided yet: the recorded order (replay) or the order so far (live). */
  protected readonly combs = new Map<number, { recorded?: number[]; order: number[] }>();

  constructor(init: ReplayerInit) {
    this.recorded = init.recorded;
    this.committedLen = init.recorded.length;
    this.completions = new Map(init.completions);
    this.inactivityMs = init.inactivityMs;
    this.suspendAfterSteps = init.suspendAfterSteps;
    this.admits = init.admits;
    if (this.recorded.some((e) => e.k === 'signal')) this.cancel = 'recorded';
    else if (init.cancelRequested) this.cancel = 'pending';
    this.applyRecordedSignals();
  }

  /** Where the attempt is in its lifecycle. */
  get life(): Life {
    return this.lifecycle;
  }

  /** True while the handler re-executes recorded entries. */
  get replaying(): boolean {
    return this.next < this.recorded.length;
  }

  /** Entries below this index are committed. */
  get committed(): number {
    return this.committedLen;
  }

  /** The completable at `index`, if registered. */
  completable(index: number): Completable | undefined {
    return this.completables.get(index);
  }

  /** The store-clock due time of a committed sleep entry at `index`. */
  dueOf(index: number): number {
    const rec = this.recorded[index];
    if (rec?.k === 'sleep') return rec.due;
    const due = this.dues.get(index);
    if (due === undefined) throw new Error(`no due time for entry ${index}`);
    return due;
  }

  /**
   * Notes a new awakeable entry: its id is useless until the entry is committed (the store
   * completes only committed awakeables).
   */
  noteAwakeable(index: number): void {
    if (index > this.lastAwakeable) this.lastAwakeable = index;
  }

  /** The index through which entries must be committed before a step closure runs (-1: none). */
  awakeablesUpto(): number {
    return this.lastAwakeable < this.committedLen ? -1 : this.lastAwakeable;
  }

  /** The uncommitted contiguous entries from the committed length (what a final commit takes). */
  batch(): { from: number; entries: NewEntry[]; effects: Effect[] } {
    const entries: NewEntry[] = [];
    const effects: Effect[] = [];
    for (let i = this.committedLen; ; i++) {
      const s = this.slots.get(i);
      if (s === undefined) break;
      entries.push(s.entry);
      effects.push(...s.effects);
    }
    return { from: this.committedLen, entries, effects };
  }

  /** Replays cancellation signals recorded at the current position. */
  protected applyRecordedSignals(): void {
    for (;;) {
      const rec = this.recorded[this.next];
      if (rec?.k !== 'signal') return;
      this.next++;
      this.rejectWithCancel(rec.v);
    }
  }

  protected rejectWithCancel(indices: number[]): void {
    if (indices.length === 0) {
      this.rejectNext = true;
      return;
    }
    for (const i of indices) this.settle(i, CANCELLED);
  }

  protected want(upto: number): void {
    if (upto < this.committedLen) return;
    if (upto > this.wanted) this.wanted = upto;
    this.pump();
  }

  protected register(
    index: number,
    kind: CompletableKind,
    completion?: Completion,
    childId?: string,
  ): void {
    const c: Completable = { index, kind, completion, awaited: false };
    if (childId !== undefined) c.childId = childId;
    this.completables.set(index, c);
    if (c.completion === undefined && STORE_COMPLETED.has(kind)) {
      const known = this.completions.get(index);
      if (known) c.completion = known;
    }
    if (c.completion === undefined && this.rejectNext && waitsOnOthers(kind)) {
      this.rejectNext = false;
      c.completion = CANCELLED;
    }
    this.applyRecordedSignals();
  }

  /** Settles a completable (no-op when already settled; kept for later when not registered). */
  protected settle(index: number, completion: Completion): void {
    const c = this.completables.get(index);
    if (!c) {
      if (!this.completions.has(index)) this.completions.set(index, completion);
      return;
    }
    if (c.completion !== undefined) return;
    c.completion = completion;
    this.out.push({ c: 'settled', index, completion }, { c: 'check' });
  }

  /** A completion from the store: it settles only a kind the store completes (STORE_COMPLETED). */
  protected deliver(index: number, completion: Completion): void {
    if (!this.completions.has(index)) this.completions.set(index, completion);
    if (this.lifecycle !== 'running') return;
    const target = this.completables.get(index);
    if (target && STORE_COMPLETED.has(target.kind)) this.settle(index, completion);
  }

  /** Arms (with `due`) or re-checks (timer fired) the sleep at `index` against the clock `now`. */
  protected timer(index: number, due: number | undefined, now: number): void {
    const c = this.completables.get(index);
    if (!c) return;
    if (due !== undefined) c.due = due;
    if (c.completion !== undefined || c.due === undefined) return;
    if (this.lifecycle === 'running') {
      if (c.due <= now) this.settle(index, { ok: true });
      else this.out.push({ c: 'armTimer', index, at: c.due });
    }
    if (due !== undefined) this.out.push({ c: 'check' });
  }

  /** Starts a commit of the ready entries when someone waits for them and none is in flight. */
  protected pump(): void {
    if (this.flushing || this.lifecycle !== 'running' || this.wanted < this.committedLen) return;
    const { from, entries, effects } = this.batch();
    if (entries.length === 0) return;
    this.flushing = true;
    this.out.push({ c: 'commit', from, entries, effects });
  }

  /** Marks `count` entries from `from` committed at store time `now`. */
  protected markCommitted(from: number, count: number, now: number): void {
    for (let i = from; i < from + count; i++) {
      const e = this.slots.get(i)?.entry;
      if (e?.k === 'sleep') this.dues.set(i, now + e.ms);
      this.slots.delete(i);
    }
    this.committedLen = from + count;
    if (this.wanted < this.committedLen) this.wanted = -1;
    this.out.push({ c: 'flushed', below: this.committedLen });
  }
}
