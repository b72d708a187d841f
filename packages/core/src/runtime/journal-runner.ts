import { NonDeterminismError, ensureError } from '../errors.js';
import { matchEntry, stateOpsOf, type Entry, type EntryKind, type NewEntry } from '../journal/entry.js';
import type { Attempt } from '../store.js';

/** Why an attempt stopped before its handler returned. */
export type Interrupt =
  | { kind: 'suspended' }
  | { kind: 'fenced' }
  | { kind: 'failed'; error: Error };

interface FlushWaiter {
  upto: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface Timer {
  due: number;
  resolve: () => void;
  handle: NodeJS.Timeout | undefined;
}

/** A promise that never settles: what a context call returns once its attempt has ended. */
export function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

/**
 * Drives one attempt's journal: hands out indices in call order, checks replayed
 * entries, batches new entries into fenced commits (in index order), runs
 * durable timers, and decides when to suspend.
 *
 * It holds no Redis knowledge; all I/O goes through the {@link Attempt}.
 */
export class JournalRunner {
  private readonly recorded: Entry[];
  private nextIndex = 0;
  private committedLen: number;
  private readonly slots = new Map<number, NewEntry>();
  private readonly dues = new Map<number, number>();
  private waiters: FlushWaiter[] = [];
  private flushing = false;
  private inflight = 0;
  private readonly timers = new Set<Timer>();
  private inactivity: NodeJS.Timeout | undefined;
  private ended = false;
  private interruptResolve!: (i: Interrupt) => void;
  /** Settles when the attempt must stop early (suspension, lease loss, fatal failure). */
  readonly interrupted: Promise<Interrupt>;

  private readonly attempt: Attempt;
  private inactivityMs: number;

  constructor(attempt: Attempt, inactivityMs: number) {
    this.attempt = attempt;
    this.inactivityMs = inactivityMs;
    this.recorded = attempt.invocation.journal;
    this.committedLen = this.recorded.length;
    this.interrupted = new Promise((r) => (this.interruptResolve = r));
    attempt.signal.addEventListener('abort', () => this.interrupt({ kind: 'fenced' }), { once: true });
  }

  /** True while the handler is re-executing recorded entries. */
  get replaying(): boolean {
    return this.nextIndex < this.recorded.length;
  }

  /** True once the attempt has ended; context calls then park forever. */
  get isEnded(): boolean {
    return this.ended;
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
    for (const t of this.timers) clearTimeout(t.handle);
    this.timers.clear();
    clearTimeout(this.inactivity);
    this.inactivity = undefined;
  }

  /**
   * Reserves the next journal index for a `kind`/`name` call. During replay
   * returns the recorded entry after checking it matches; a mismatch fails
   * the attempt with a {@link NonDeterminismError}.
   */
  reserve(kind: EntryKind, name: string | undefined): { index: number; recorded?: Entry } {
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

  /** Provides the new entry for a reserved index. */
  fill(index: number, entry: NewEntry): void {
    this.slots.set(index, entry);
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

  /** The store-clock due time of a committed sleep entry at `index`. */
  dueOf(index: number): number {
    const rec = this.recorded[index];
    if (rec?.k === 'sleep') return rec.due;
    const due = this.dues.get(index);
    if (due === undefined) throw new Error(`no due time for entry ${index}`);
    return due;
  }

  /** Suspends as soon as the attempt only waits on timers (used on shutdown). */
  hurry(): void {
    this.inactivityMs = 0;
    clearTimeout(this.inactivity);
    this.inactivity = undefined;
    this.checkIdle();
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

  /** Waits until the store clock reaches `due`; may suspend the attempt meanwhile. */
  waitUntil(due: number): Promise<void> {
    if (this.attempt.storeNow() >= due) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer: Timer = { due, resolve, handle: undefined };
      const arm = (): void => {
        const left = due - this.attempt.storeNow();
        if (left <= 0) {
          this.timers.delete(timer);
          resolve();
          this.checkIdle();
          return;
        }
        timer.handle = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
      };
      this.timers.add(timer);
      arm();
      this.checkIdle();
    });
  }

  private readyBatch(): NewEntry[] {
    const batch: NewEntry[] = [];
    for (let i = this.committedLen; ; i++) {
      const e = this.slots.get(i);
      if (e === undefined) break;
      batch.push(e);
    }
    return batch;
  }

  private pump(): void {
    if (this.flushing || this.ended || this.waiters.length === 0) return;
    const batch = this.readyBatch();
    if (batch.length === 0) return;
    const from = this.committedLen;
    this.flushing = true;
    this.attempt.commit(from, batch, stateOpsOf(batch)).then(
      (now) => {
        this.flushing = false;
        this.settleCommitted(from, batch, now);
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
  async drain(): Promise<{ from: number; entries: NewEntry[] }> {
    while (this.flushing) {
      await new Promise<void>((r) => setImmediate(r));
    }
    const entries = this.readyBatch();
    return { from: this.committedLen, entries };
  }

  private checkIdle(): void {
    if (this.ended) return;
    const idle = this.timers.size > 0 && this.inflight === 0 && !this.flushing && this.waiters.length === 0;
    if (!idle) {
      clearTimeout(this.inactivity);
      this.inactivity = undefined;
      return;
    }
    if (this.inactivity !== undefined) return;
    this.inactivity = setTimeout(() => {
      this.inactivity = undefined;
      const stillIdle = this.timers.size > 0 && this.inflight === 0 && !this.flushing && this.waiters.length === 0;
      if (stillIdle && !this.ended) void this.suspend();
    }, this.inactivityMs);
  }

  private async suspend(): Promise<void> {
    let wakeAt = Infinity;
    for (const t of this.timers) wakeAt = Math.min(wakeAt, t.due);
    this.ended = true;
    this.clearTimers();
    try {
      const { from, entries } = await this.drain();
      await this.attempt.suspend(from, entries, stateOpsOf(entries), Number.isFinite(wakeAt) ? wakeAt : null);
      this.interruptResolve({ kind: 'suspended' });
    } catch (e) {
      this.interruptResolve({ kind: 'failed', error: ensureError(e) });
    }
  }

  /** Ends the attempt normally (the handler returned or threw); returns what is left to commit. */
  async finish(): Promise<{ from: number; entries: NewEntry[] } | undefined> {
    if (this.ended) return undefined;
    this.ended = true;
    this.clearTimers();
    return this.drain();
  }
}

export { NonDeterminismError };
