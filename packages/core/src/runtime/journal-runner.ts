import { CancelledError, DurableError, ErrorCode, ensureError, serializeError } from '../errors.js';
import { matchEntry, stateOpsOf, type Completion, type Effect, type Entry, type EntryKind, type NewEntry } from '../journal/entry.js';
import type { Attempt } from '../store.js';

/** Why an attempt stopped before its handler returned. */
export type Interrupt = { kind: 'suspended' } | { kind: 'fenced' } | { kind: 'failed'; error: Error };

interface FlushWaiter {
  upto: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Kinds of completable entries: their outcome settles after the entry is created. */
export type CompletableKind = 'run' | 'sleep' | 'call' | 'awk' | 'sig' | 'pget' | 'ppeek' | 'presolve' | 'attach' | 'comb';

/** One entry whose outcome arrives later: a step result, a timer, a call result, an awakeable… */
export interface Completable {
  readonly index: number;
  readonly kind: CompletableKind;
  completion: Completion | undefined;
  /** Due time of a sleep (store clock). */
  due?: number;
  /** Child invocation of a call (cancelled with its parent). */
  childId?: string;
  awaited: boolean;
  listeners: Array<(c: Completion) => void>;
  timer?: NodeJS.Timeout;
}

/** A promise that never settles: what a context call returns once its attempt has ended. */
export function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

const CANCELLED: Completion = { ok: false, e: serializeError(new CancelledError()) };

/**
 * The completable kinds the store completes (call results, attached outcomes, awakeables, workflow
 * promises): only these take a completion delivered by the store. A step's result, a timer and a
 * combinator are settled by this runner alone, whatever a store's completions hash holds.
 */
const STORE_COMPLETED: ReadonlySet<CompletableKind> = new Set<CompletableKind>(['call', 'attach', 'awk', 'sig', 'pget', 'ppeek', 'presolve']);

/** The entry kinds an eager attempt may create: state reads and writes. */
const STATE_KINDS: ReadonlySet<EntryKind> = new Set<EntryKind>(['get', 'set', 'clear', 'clearAll', 'keys']);

/**
 * Drives one attempt's journal: hands out indices in call order, checks replayed
 * entries, batches new entries (and their effects) into fenced commits in index
 * order, settles completable entries (steps, timers, calls, awakeables, promises),
 * applies cancellation signals deterministically, and decides when to suspend.
 *
 * It holds no Redis knowledge; all I/O goes through the {@link Attempt}.
 */
export class JournalRunner {
  private readonly recorded: Entry[];
  private nextIndex = 0;
  private committedLen: number;
  private readonly slots = new Map<number, { entry: NewEntry; effects: Effect[] }>();
  private readonly dues = new Map<number, number>();
  private waiters: FlushWaiter[] = [];
  private flushing = false;
  private inflight = 0;
  private readonly completables = new Map<number, Completable>();
  private readonly completions: Map<number, Completion>;
  private inactivity: NodeJS.Timeout | undefined;
  private ended = false;
  private cancelNext = false;
  private cancelApplied = false;
  private pendingCancel = false;
  private interruptResolve!: (i: Interrupt) => void;
  private readonly attempt: Attempt;
  private inactivityMs: number;
  /** The highest index of an awakeable entry created by this attempt (-1: none). */
  private lastAwakeable = -1;
  /** Settles when the attempt must stop early (suspension, lease loss, fatal failure). */
  readonly interrupted: Promise<Interrupt>;

  /**
   * Suspends after every committed step too (the "always suspend" test mode: every step boundary
   * is then replayed), not only while waiting.
   */
  private readonly suspendAfterSteps: boolean;

  constructor(attempt: Attempt, inactivityMs: number, suspendAfterSteps = false) {
    this.attempt = attempt;
    this.inactivityMs = inactivityMs;
    this.suspendAfterSteps = suspendAfterSteps;
    this.recorded = attempt.invocation.journal;
    this.committedLen = this.recorded.length;
    this.completions = new Map(attempt.invocation.completions);
    this.interrupted = new Promise((r) => (this.interruptResolve = r));
    attempt.signal.addEventListener('abort', () => this.interrupt({ kind: 'fenced' }), { once: true });
    attempt.listen({
      completion: (index, c) => this.deliver(index, c),
      cancel: () => this.cancel(),
    });
    if (attempt.invocation.cancelRequested && !this.recorded.some((e) => e.k === 'signal')) this.pendingCancel = true;
    this.applyRecordedSignals();
  }

  /** True while the handler is re-executing recorded entries. */
  get replaying(): boolean {
    return this.nextIndex < this.recorded.length;
  }

  /** True once the attempt has ended; context calls then park forever. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** The store clock (ms), never ahead of the store. */
  storeNow(): number {
    return this.attempt.storeNow();
  }

  /** Stops the attempt with a failure that no handler code may catch (e.g. non-determinism). */
  fail(error: unknown): void {
    this.interrupt({ kind: 'failed', error: ensureError(error) });
  }

  private interrupt(i: Interrupt): void {
    if (this.ended) return;
    this.ended = true;
    this.clearTimers();
    this.interruptResolve(i);
  }

  private clearTimers(): void {
    for (const c of this.completables.values()) clearTimeout(c.timer);
    clearTimeout(this.inactivity);
    this.inactivity = undefined;
  }

  /**
   * Reserves the next journal index for a `kind`/`name` call. During replay
   * returns the recorded entry after checking it matches; a mismatch fails
   * the attempt with a `NonDeterminismError`.
   */
  reserve(kind: EntryKind, name: string | undefined): { index: number; recorded?: Entry } {
    if (this.attempt.eager === true && !STATE_KINDS.has(kind)) {
      // An eager attempt only reads and writes state (see Attempt.eager): it stops here, before
      // anything of this entry runs, and the invocation takes the ordinary path.
      this.interrupt({ kind: 'fenced' });
      throw new DurableError(`an eager attempt stops at its first '${kind}' entry`, ErrorCode.FENCED);
    }
    this.applyRecordedSignals();
    if (this.pendingCancel && !this.replaying) this.applyCancel();
    const index = this.nextIndex++;
    const recorded = this.recorded[index];
    if (recorded === undefined) return { index };
    try {
      matchEntry(index, recorded, kind, name);
    } catch (e) {
      this.fail(e);
      throw e;
    }
    return { index, recorded };
  }

  /** Replays cancellation signals recorded at the current position. */
  private applyRecordedSignals(): void {
    for (;;) {
      const rec = this.recorded[this.nextIndex];
      if (rec?.k !== 'signal') return;
      this.nextIndex++;
      this.rejectWithCancel(rec.v);
    }
  }

  private rejectWithCancel(indices: number[]): void {
    if (indices.length === 0) {
      this.cancelNext = true;
      return;
    }
    for (const i of indices) this.settle(i, CANCELLED);
  }

  /** A cancellation signal arrived (live). It is journaled where it is observed. */
  cancel(): void {
    // One cancellation per invocation: repeated requests (or a re-delivered message) change nothing.
    if (this.ended || this.cancelApplied || this.pendingCancel) return;
    if (this.recorded.some((e) => e.k === 'signal')) return;
    this.pendingCancel = true;
    if (!this.replaying) this.applyCancel();
  }

  private applyCancel(): void {
    this.pendingCancel = false;
    this.cancelApplied = true;
    const pending = [...this.completables.values()].filter((c) => c.completion === undefined && c.kind !== 'run' && c.kind !== 'comb');
    const index = this.nextIndex++;
    const effects: Effect[] = pending.filter((c) => c.childId !== undefined).map((c) => ({ t: 'cancel', id: c.childId! }));
    this.fill(index, { k: 'signal', n: 'cancel', v: pending.map((c) => c.index) }, effects);
    this.rejectWithCancel(pending.map((c) => c.index));
    this.requestFlush(index);
  }

  /** Provides the new entry (and its effects) for a reserved index. */
  fill(index: number, entry: NewEntry, effects: Effect[] = []): void {
    this.slots.set(index, { entry, effects });
    this.pump();
  }

  /** Resolves once every entry up to `index` is committed. */
  flushThrough(index: number): Promise<void> {
    if (index < this.committedLen) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ upto: index, resolve, reject });
      this.pump();
    });
  }

  private requestFlush(index: number): void {
    this.flushThrough(index).catch(() => undefined);
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
   * completes only committed awakeables). Every durable way the id leaves the handler (a step,
   * a call or send, state, the outcome) commits after the entry; a step closure waits for it.
   */
  noteAwakeable(index: number): void {
    if (index > this.lastAwakeable) this.lastAwakeable = index;
  }

  /**
   * Resolves once every awakeable created so far is committed (undefined when they are): a step
   * closure waits for it before it runs, since it may hand an awakeable's id to someone who
   * resolves it at once.
   */
  awakeablesCommitted(): Promise<void> | undefined {
    return this.lastAwakeable < this.committedLen ? undefined : this.flushThrough(this.lastAwakeable);
  }

  /** Marks a step closure as running (no suspension while one is). */
  beginStep(): void {
    this.inflight++;
    this.checkIdle();
  }

  /** Marks a step closure as finished. */
  endStep(): void {
    this.inflight--;
    this.checkIdle();
  }

  /**
   * Registers a completable entry. Its completion may already be known (journal,
   * store completions); a pending cancellation rejects it at once.
   */
  register(index: number, kind: CompletableKind, init: { completion?: Completion; childId?: string } = {}): Completable {
    const c: Completable = { index, kind, completion: init.completion, awaited: false, listeners: [] };
    if (init.childId !== undefined) c.childId = init.childId;
    this.completables.set(index, c);
    if (c.completion === undefined && STORE_COMPLETED.has(kind)) {
      const known = this.completions.get(index);
      if (known) c.completion = known;
    }
    if (c.completion === undefined && this.cancelNext && kind !== 'run' && kind !== 'comb') {
      this.cancelNext = false;
      c.completion = CANCELLED;
    }
    this.applyRecordedSignals();
    return c;
  }

  /** Arms the timer of a sleep completable. */
  armSleep(c: Completable, due: number): void {
    c.due = due;
    if (c.completion !== undefined) return;
    const arm = (): void => {
      if (this.ended || c.completion !== undefined) return;
      const left = due - this.attempt.storeNow();
      if (left <= 0) {
        this.settle(c.index, { ok: true });
        return;
      }
      c.timer = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
    };
    arm();
    this.checkIdle();
  }

  /** Settles a completable (no-op when already settled). */
  settle(index: number, completion: Completion): void {
    const c = this.completables.get(index);
    if (!c) {
      if (!this.completions.has(index)) this.completions.set(index, completion);
      return;
    }
    if (c.completion !== undefined) return;
    c.completion = completion;
    clearTimeout(c.timer);
    const ls = c.listeners;
    c.listeners = [];
    for (const l of ls) l(completion);
    this.checkIdle();
  }

  /**
   * A completion arrived from the store while running (kept even while a suspension is in flight).
   * It settles only an entry of a kind the store completes (see STORE_COMPLETED); an entry not
   * reached yet by the replay checks its kind when it registers.
   */
  private deliver(index: number, c: Completion): void {
    if (!this.completions.has(index)) this.completions.set(index, c);
    if (this.ended) return;
    const target = this.completables.get(index);
    if (target && STORE_COMPLETED.has(target.kind)) this.settle(index, c);
  }

  /** Calls `fn` when the completable settles (now, if it has). Marks it awaited. */
  onSettled(c: Completable, fn: (c: Completion) => void): void {
    c.awaited = true;
    if (c.completion !== undefined) {
      const done = c.completion;
      queueMicrotask(() => fn(done));
      return;
    }
    c.listeners.push(fn);
    this.checkIdle();
  }

  /** Completable at an index, if registered. */
  completable(index: number): Completable | undefined {
    return this.completables.get(index);
  }

  /** Suspends as soon as the attempt only waits on timers or completions (used on shutdown). */
  hurry(): void {
    this.inactivityMs = 0;
    clearTimeout(this.inactivity);
    this.inactivity = undefined;
    this.checkIdle();
  }

  private readyBatch(): { entries: NewEntry[]; effects: Effect[] } {
    const entries: NewEntry[] = [];
    const effects: Effect[] = [];
    for (let i = this.committedLen; ; i++) {
      const s = this.slots.get(i);
      if (s === undefined) break;
      entries.push(s.entry);
      effects.push(...s.effects);
    }
    return { entries, effects };
  }

  private pump(): void {
    if (this.flushing || this.ended || this.waiters.length === 0) return;
    const { entries, effects } = this.readyBatch();
    if (entries.length === 0) return;
    const from = this.committedLen;
    this.flushing = true;
    this.attempt.commit(from, entries, stateOpsOf(entries), effects).then(
      (res) => {
        this.flushing = false;
        this.settleCommitted(from, entries, res.now);
        for (const [i, c] of res.completions) this.deliver(i, c);
        this.pump();
        this.checkIdle();
      },
      (err: unknown) => {
        this.flushing = false;
        const ws = this.waiters;
        this.waiters = [];
        for (const w of ws) w.reject(err);
        this.fail(err);
      },
    );
  }

  private settleCommitted(from: number, batch: NewEntry[], now: number): void {
    batch.forEach((e, j) => {
      this.slots.delete(from + j);
      if (e.k === 'sleep') this.dues.set(from + j, now + e.ms);
    });
    this.committedLen = from + batch.length;
    const keep: FlushWaiter[] = [];
    for (const w of this.waiters) {
      if (w.upto < this.committedLen) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }

  /** Waits for an in-flight commit, then takes the uncommitted contiguous entries. */
  async drain(): Promise<{ from: number; entries: NewEntry[]; effects: Effect[] }> {
    while (this.flushing) {
      await new Promise<void>((r) => setImmediate(r));
    }
    return { from: this.committedLen, ...this.readyBatch() };
  }

  private awaitedPending(): Completable[] {
    const out: Completable[] = [];
    for (const c of this.completables.values()) if (c.awaited && c.completion === undefined) out.push(c);
    return out;
  }

  private isIdle(): boolean {
    if (this.inflight > 0 || this.flushing || this.waiters.length > 0) return false;
    const pending = this.awaitedPending();
    return pending.some((c) => c.kind !== 'run' && c.kind !== 'comb');
  }

  private checkIdle(): void {
    if (this.ended) return;
    if (!this.isIdle()) {
      clearTimeout(this.inactivity);
      this.inactivity = undefined;
      return;
    }
    if (this.pendingCancel && !this.replaying) {
      this.applyCancel();
      return;
    }
    // Waiting on others: commit what is pending first, so state writes and the awaited
    // entries are durable (and visible to shared handlers) while we wait. (With no
    // inactivity timeout the suspension right after commits them anyway.)
    const pending = this.inactivityMs > 0 ? this.readyBatch().entries.length : 0;
    if (pending > 0) {
      this.requestFlush(this.committedLen + pending - 1);
      return;
    }
    if (this.inactivity !== undefined) return;
    this.inactivity = setTimeout(() => {
      this.inactivity = undefined;
      if (this.isIdle() && !this.ended) void this.suspend();
    }, this.inactivityMs);
  }

  /**
   * In the always-suspend mode, ends the attempt right after a step's result is committed (when no
   * other step is running): the next attempt, dispatched at once, replays up to here. Resolves
   * true when the attempt suspended, false when it carries on (another step runs, or a completion
   * raced the suspension).
   */
  async suspendAfterStep(): Promise<boolean> {
    if (!this.suspendAfterSteps || this.ended || this.inflight > 0 || this.attempt.eager === true) return false;
    return this.suspend(true);
  }

  /** Suspends the attempt (`now`: to be resumed at once); true once it suspended. */
  private async suspend(now = false): Promise<boolean> {
    let wakeAt = now ? this.storeNow() : Infinity;
    const awaiting: number[] = [];
    for (const c of this.completables.values()) {
      if (c.completion !== undefined) continue;
      if (c.kind === 'sleep' && c.due !== undefined) wakeAt = Math.min(wakeAt, c.due);
      else if (c.kind !== 'run' && c.kind !== 'comb') awaiting.push(c.index);
    }
    this.ended = true;
    this.clearTimers();
    try {
      const { from, entries, effects } = await this.drain();
      const r = await this.attempt.suspend(from, entries, stateOpsOf(entries), effects, {
        wakeAt: Number.isFinite(wakeAt) ? wakeAt : null,
        awaiting,
      });
      if (r === 'suspended') {
        this.interruptResolve({ kind: 'suspended' });
        return true;
      }
      // A completion or cancellation raced the suspension: carry on in memory.
      this.committedLen = from + entries.length;
      for (let i = from; i < from + entries.length; i++) {
        const e = this.slots.get(i)?.entry;
        if (e?.k === 'sleep') this.dues.set(i, r.now + e.ms);
        this.slots.delete(i);
      }
      this.ended = false;
      for (const c of this.completables.values()) if (c.kind === 'sleep' && c.completion === undefined && c.due !== undefined) this.armSleep(c, c.due);
      for (const [i, c] of r.completions) this.completions.set(i, c);
      for (const c of [...this.completables.values()]) {
        const known = this.completions.get(c.index);
        if (c.completion === undefined && known && STORE_COMPLETED.has(c.kind)) this.settle(c.index, known);
      }
      if (r.cancelled) this.cancel();
      this.checkIdle();
      return false;
    } catch (e) {
      this.interruptResolve({ kind: 'failed', error: ensureError(e) });
      return true;
    }
  }

  /** Ends the attempt normally (the handler returned or threw); returns what is left to commit. */
  async finish(): Promise<{ from: number; entries: NewEntry[]; effects: Effect[] } | undefined> {
    if (this.ended) return undefined;
    this.ended = true;
    this.clearTimers();
    return this.drain();
  }
}
