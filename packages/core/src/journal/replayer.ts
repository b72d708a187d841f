import { CancelledError, DurableError, ErrorCode, ensureError, serializeError } from '../errors.js';
import { matchEntry, type Completion, type Effect, type Entry, type NewEntry } from './entry.js';
import type {
  AdmitPolicy,
  Command,
  Completable,
  CompletableKind,
  Interrupt,
  ReplayEvent,
  ReplayerInit,
  SuspendOn,
} from './replay-types.js';

const CANCELLED: Completion = { ok: false, e: serializeError(new CancelledError()) };

/**
 * The completable kinds the store completes (call results, attached outcomes, awakeables, workflow
 * promises): only these take a completion delivered by the store. A step's result, a timer and a
 * combinator are settled by the attempt alone, whatever a store's completions hash holds.
 */
const STORE_COMPLETED: ReadonlySet<CompletableKind> = new Set<CompletableKind>([
  'call',
  'attach',
  'awk',
  'sig',
  'pget',
  'ppeek',
  'presolve',
]);

/** True for entries a cancellation rejects and a suspension waits on (not steps, not combinators). */
function waitsOnOthers(kind: CompletableKind): boolean {
  return kind !== 'run' && kind !== 'comb';
}

/**
 * The lifecycle of an attempt: `running` → `suspending` → `ended` (suspended), or back to
 * `running` when the store refuses the suspension; `running` → `ended` otherwise (completed,
 * failed, fenced). Only `running` takes new entries, settles from the store and arms timers.
 */
export type Life = 'running' | 'suspending' | 'ended';

/** Cancellation: none yet, requested but not journaled, journaled by this attempt, or recorded. */
type CancelState = 'none' | 'pending' | 'applied' | 'recorded';

/**
 * The replay rules of one attempt, as a synchronous state machine with no I/O and no clock: it
 * takes {@link ReplayEvent}s and answers {@link Command}s for a driver to carry out.
 *
 * It hands out journal indices in call order and checks replayed entries against the journal
 * (`matchEntry`), batches new entries and their effects into commits in index order, settles
 * completable entries (steps, timers, calls, awakeables, promises), applies cancellation
 * deterministically (journaled as a `signal` entry where it is observed) and decides when the
 * attempt suspends.
 */
export class Replayer {
  private readonly recorded: readonly Entry[];
  private next = 0;
  private committedLen: number;
  private readonly slots = new Map<number, { entry: NewEntry; effects: Effect[] }>();
  private readonly dues = new Map<number, number>();
  /** The highest index someone waits to be committed (-1: none). */
  private wanted = -1;
  private flushing = false;
  private inflight = 0;
  private readonly completables = new Map<number, Completable>();
  private readonly completions: Map<number, Completion>;
  private idleArmed = false;
  private lifecycle: Life = 'running';
  private cancel: CancelState = 'none';
  /** A recorded cancellation found nothing pending: it rejects the next waiting entry. */
  private rejectNext = false;
  /** An interrupt that arrived while suspending: it ends the attempt if the store refuses. */
  private deferred: Interrupt | undefined;
  private inactivityMs: number;
  private readonly suspendAfterSteps: boolean;
  private readonly admits: AdmitPolicy | undefined;
  /** The highest index of an awakeable entry created by this attempt (-1: none). */
  private lastAwakeable = -1;
  private out: Command[] = [];
  /** Combinators not decided yet: the recorded order (replay) or the order so far (live). */
  private readonly combs = new Map<number, { recorded?: number[]; order: number[] }>();

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

  /** Takes one event; answers what the driver must do, in order. */
  step(e: ReplayEvent): Command[] {
    this.handle(e);
    const out = this.out;
    this.out = [];
    return out;
  }

  private handle(e: ReplayEvent): void {
    switch (e.t) {
      case 'reserve':
        return this.reserve(e.kind, e.name);
      case 'fill':
        this.slots.set(e.index, { entry: e.entry, effects: e.effects });
        return this.pump();
      case 'want':
        return this.want(e.upto);
      case 'register':
        return this.register(e.index, e.kind, e.completion, e.childId);
      case 'await': {
        const c = this.completables.get(e.index);
        if (!c) return;
        c.awaited = true;
        if (c.completion === undefined) this.out.push({ c: 'check' });
        return;
      }
      case 'settle':
        return this.settle(e.index, e.completion);
      case 'completion':
        return this.deliver(e.index, e.completion);
      case 'timer':
        return this.timer(e.index, e.due, e.now);
      case 'combine':
        return this.combine(e.index, e.recorded);
      case 'combSettled':
        return this.combSettled(e.index, e.child);
      case 'combDecided':
        this.combs.delete(e.index);
        return;
      case 'cancel':
        return this.requestCancel();
      case 'step':
        this.inflight += e.running ? 1 : -1;
        return this.check();
      case 'committed':
        return this.committedBatch(e.from, e.count, e.now, e.completions);
      case 'commitFailed':
        this.flushing = false;
        this.wanted = -1;
        this.out.push({ c: 'flushFailed', error: e.error });
        return this.stop({ kind: 'failed', error: e.error });
      case 'idle':
        this.idleArmed = false;
        if (this.lifecycle === 'running' && this.isIdle()) this.suspend(Infinity);
        return;
      case 'check':
        return this.check();
      case 'stepCommitted':
        if (this.suspendAfterSteps && this.lifecycle === 'running' && this.inflight === 0) {
          this.suspend(e.now);
        }
        return;
      case 'hurry':
        this.inactivityMs = 0;
        this.disarmIdle();
        return this.check();
      case 'suspended':
        this.lifecycle = 'ended';
        this.out.push({ c: 'interrupt', interrupt: { kind: 'suspended' } });
        return;
      case 'suspendFailed':
        this.lifecycle = 'ended';
        this.out.push({ c: 'interrupt', interrupt: { kind: 'failed', error: e.error } });
        return;
      case 'resumed':
        return this.resumed(e.from, e.count, e.now, e.completions, e.cancelled);
      case 'fail':
        return this.stop({ kind: 'failed', error: ensureError(e.error) });
      case 'fenced':
        return this.stop({ kind: 'fenced' });
      case 'finish':
        if (this.lifecycle !== 'running') return;
        this.lifecycle = 'ended';
        this.idleArmed = false;
        this.out.push({ c: 'disarmAll' });
        return;
    }
  }

  /** Ends the attempt early (first interrupt wins; while suspending, once the store answered). */
  private stop(i: Interrupt): void {
    if (this.lifecycle === 'suspending') {
      this.deferred ??= i;
      return;
    }
    if (this.lifecycle === 'ended') return;
    this.lifecycle = 'ended';
    this.idleArmed = false;
    this.out.push({ c: 'disarmAll' }, { c: 'interrupt', interrupt: i });
  }

  private reserve(kind: Entry['k'], name: string | undefined): void {
    if (this.admits && !this.admits(kind)) {
      // This attempt may not create such an entry (an eager attempt only reads and writes state):
      // it stops here, before anything of the entry runs, as if it were fenced.
      this.stop({ kind: 'fenced' });
      const msg = `an eager attempt stops at its first '${kind}' entry`;
      this.out.push({ c: 'refused', error: new DurableError(msg, ErrorCode.FENCED) });
      return;
    }
    this.applyRecordedSignals();
    if (this.cancel === 'pending' && !this.replaying) this.applyCancel();
    const index = this.next++;
    const recorded = this.recorded[index];
    if (recorded === undefined) {
      this.out.unshift({ c: 'reserved', index });
      return;
    }
    try {
      matchEntry(index, recorded, kind, name);
    } catch (err) {
      this.stop({ kind: 'failed', error: ensureError(err) });
      this.out.push({ c: 'refused', error: ensureError(err) });
      return;
    }
    this.out.unshift({ c: 'reserved', index, recorded });
  }

  /**
   * A combinator. Replayed, its recorded children decide it: a recorded timer among them has
   * fired (it settles now, whatever the clock says); the others' completions are durable and
   * arrive. Live, the children's settling order is kept until the combinator decides.
   */
  private combine(index: number, recorded: number[] | undefined): void {
    if (recorded === undefined) {
      this.combs.set(index, { order: [] });
      return;
    }
    for (const i of recorded) {
      const child = this.completables.get(i);
      if (child?.kind === 'sleep' && child.completion === undefined) this.settle(i, { ok: true });
    }
    this.combs.set(index, { recorded, order: [] });
    this.decideRecorded(index, recorded);
  }

  private decideRecorded(index: number, recorded: number[]): void {
    if (recorded.some((i) => this.completables.get(i)?.completion === undefined)) return;
    this.combs.delete(index);
    this.out.push({ c: 'combined', index, order: recorded, final: true });
  }

  private combSettled(index: number, child: number): void {
    const comb = this.combs.get(index);
    if (!comb) return;
    if (comb.recorded) return this.decideRecorded(index, comb.recorded);
    if (!comb.order.includes(child)) comb.order.push(child);
    this.out.push({ c: 'combined', index, order: [...comb.order], final: false });
  }

  /** Replays cancellation signals recorded at the current position. */
  private applyRecordedSignals(): void {
    for (;;) {
      const rec = this.recorded[this.next];
      if (rec?.k !== 'signal') return;
      this.next++;
      this.rejectWithCancel(rec.v);
    }
  }

  private rejectWithCancel(indices: number[]): void {
    if (indices.length === 0) {
      this.rejectNext = true;
      return;
    }
    for (const i of indices) this.settle(i, CANCELLED);
  }

  /** A live cancellation request: one per invocation, journaled where it is observed. */
  private requestCancel(): void {
    if (this.lifecycle !== 'running' || this.cancel !== 'none') return;
    this.cancel = 'pending';
    if (!this.replaying) this.applyCancel();
  }

  private applyCancel(): void {
    this.cancel = 'applied';
    const pending: Completable[] = [];
    for (const c of this.completables.values()) {
      if (c.completion === undefined && waitsOnOthers(c.kind)) pending.push(c);
    }
    const index = this.next++;
    const effects: Effect[] = [];
    for (const c of pending) if (c.childId !== undefined) effects.push({ t: 'cancel', id: c.childId });
    const v = pending.map((c) => c.index);
    this.slots.set(index, { entry: { k: 'signal', n: 'cancel', v }, effects });
    this.rejectWithCancel(v);
    this.want(index);
  }

  private want(upto: number): void {
    if (upto < this.committedLen) return;
    if (upto > this.wanted) this.wanted = upto;
    this.pump();
  }

  private register(index: number, kind: CompletableKind, completion?: Completion, childId?: string): void {
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
  private settle(index: number, completion: Completion): void {
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
  private deliver(index: number, completion: Completion): void {
    if (!this.completions.has(index)) this.completions.set(index, completion);
    if (this.lifecycle !== 'running') return;
    const target = this.completables.get(index);
    if (target && STORE_COMPLETED.has(target.kind)) this.settle(index, completion);
  }

  /** Arms (with `due`) or re-checks (timer fired) the sleep at `index` against the clock `now`. */
  private timer(index: number, due: number | undefined, now: number): void {
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
  private pump(): void {
    if (this.flushing || this.lifecycle !== 'running' || this.wanted < this.committedLen) return;
    const { from, entries, effects } = this.batch();
    if (entries.length === 0) return;
    this.flushing = true;
    this.out.push({ c: 'commit', from, entries, effects });
  }

  /** Marks `count` entries from `from` committed at store time `now`. */
  private markCommitted(from: number, count: number, now: number): void {
    for (let i = from; i < from + count; i++) {
      const e = this.slots.get(i)?.entry;
      if (e?.k === 'sleep') this.dues.set(i, now + e.ms);
      this.slots.delete(i);
    }
    this.committedLen = from + count;
    if (this.wanted < this.committedLen) this.wanted = -1;
    this.out.push({ c: 'flushed', below: this.committedLen });
  }

  private committedBatch(from: number, count: number, now: number, done: Map<number, Completion>): void {
    this.flushing = false;
    this.markCommitted(from, count, now);
    for (const [i, c] of done) this.deliver(i, c);
    this.pump();
    this.out.push({ c: 'check' });
  }

  private isIdle(): boolean {
    if (this.inflight > 0 || this.flushing || this.wanted >= this.committedLen) return false;
    for (const c of this.completables.values()) {
      if (c.awaited && c.completion === undefined && waitsOnOthers(c.kind)) return true;
    }
    return false;
  }

  private disarmIdle(): void {
    if (!this.idleArmed) return;
    this.idleArmed = false;
    this.out.push({ c: 'disarmIdle' });
  }

  /** The attempt only waits on others: cancel, commit what is pending, or arm the idle timer. */
  private check(): void {
    if (this.lifecycle !== 'running') return;
    if (!this.isIdle()) return this.disarmIdle();
    if (this.cancel === 'pending' && !this.replaying) return this.applyCancel();
    // Waiting on others: commit what is pending first, so state writes and the awaited entries
    // are durable (and visible to shared handlers) while we wait. (With no inactivity timeout the
    // suspension right after commits them anyway.)
    const pending = this.inactivityMs > 0 ? this.batch().entries.length : 0;
    if (pending > 0) return this.want(this.committedLen + pending - 1);
    if (this.idleArmed) return;
    this.idleArmed = true;
    this.out.push({ c: 'armIdle', ms: this.inactivityMs });
  }

  /** Suspends until the earliest sleep is due (or `wakeAt`, to be resumed at once). */
  private suspend(wakeAt: number): void {
    const awaiting: number[] = [];
    for (const c of this.completables.values()) {
      if (c.completion !== undefined) continue;
      if (c.kind === 'sleep' && c.due !== undefined) wakeAt = Math.min(wakeAt, c.due);
      else if (waitsOnOthers(c.kind)) awaiting.push(c.index);
    }
    const on: SuspendOn = { wakeAt: Number.isFinite(wakeAt) ? wakeAt : null, awaiting };
    this.lifecycle = 'suspending';
    this.idleArmed = false;
    this.out.push({ c: 'disarmAll' }, { c: 'suspend', on });
  }

  /** The store refused the suspension (committing its entries): carry on in memory. */
  private resumed(from: number, count: number, now: number, done: Map<number, Completion>, cancelled: boolean): void {
    this.markCommitted(from, count, now);
    this.lifecycle = 'running';
    const interrupt = this.deferred;
    if (interrupt) return this.stop(interrupt);
    for (const c of this.completables.values()) {
      if (c.kind === 'sleep' && c.completion === undefined && c.due !== undefined) {
        this.timer(c.index, undefined, now);
      }
    }
    for (const [i, c] of done) this.completions.set(i, c);
    for (const c of [...this.completables.values()]) {
      const known = this.completions.get(c.index);
      if (c.completion === undefined && known && STORE_COMPLETED.has(c.kind)) this.settle(c.index, known);
    }
    if (cancelled) this.requestCancel();
    this.pump();
    this.out.push({ c: 'check' });
  }
}
