import { ensureError } from '../errors.js';
import {
  stateOpsOf,
  type Completion,
  type Effect,
  type Entry,
  type EntryKind,
  type NewEntry,
} from '../journal/entry.js';
import { Replayer } from '../journal/replayer.js';
import type {
  Command,
  Completable,
  CompletableKind,
  Interrupt,
  ReplayEvent,
  SuspendOn,
} from '../journal/replay-types.js';
import type { Attempt } from '../store.js';
import type { AttemptTrace } from '../telemetry/tracing.js';
import { MAX_DELAY, realTimers, type Timers } from './timers.js';

export type { Timers } from './timers.js';

export type { Completable, CompletableKind, Interrupt } from '../journal/replay-types.js';

/** A promise that never settles: what a context call returns once its attempt has ended. */
export function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

interface FlushWaiter {
  upto: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** The uncommitted tail of a journal. */
export interface Batch {
  from: number;
  entries: NewEntry[];
  effects: Effect[];
}

/**
 * Drives one attempt's {@link Replayer}: feeds it the handler's calls, the store's answers and the
 * timers, and carries out its commands against the {@link Attempt} (commits, suspension) and the
 * handler (flush waiters, settled entries). The replay rules live in the replayer; this class
 * holds only what is asynchronous: promises, listeners and timers.
 */
export class JournalRunner {
  private readonly r: Replayer;
  /** The attempt's spans, when it is traced (set by the executor). */
  trace: AttemptTrace | undefined;
  private readonly attempt: Attempt;
  private readonly timers: Timers;
  private waiters: FlushWaiter[] = [];
  private readonly listeners = new Map<number, Array<(c: Completion) => void>>();
  private readonly sleepTimers = new Map<number, unknown>();
  private idleTimer: unknown;
  /** How each undecided combinator decides, given its children's settling order. */
  private readonly deciders = new Map<number, (order: number[], final: boolean) => void>();
  private queue: Command[] = [];
  private running = false;
  /** The commit in flight, settled once the replayer has taken its answer. */
  private inflight: Promise<void> | undefined;
  /** The suspension in flight: true once the attempt suspended (or failed). */
  private suspension: Promise<boolean> | undefined;
  private interruptResolve!: (i: Interrupt) => void;
  /** Settles when the attempt must stop early (suspension, lease loss, fatal failure). */
  readonly interrupted: Promise<Interrupt>;

  constructor(
    attempt: Attempt,
    inactivityMs: number,
    suspendAfterSteps = false,
    timers: Timers = realTimers,
  ) {
    this.attempt = attempt;
    this.timers = timers;
    const inv = attempt.invocation;
    this.r = new Replayer({
      recorded: inv.journal,
      completions: inv.completions,
      cancelRequested: inv.cancelRequested,
      inactivityMs,
      suspendAfterSteps,
      admits: attempt.admits?.bind(attempt),
    });
    this.interrupted = new Promise((r) => (this.interruptResolve = r));
    attempt.signal.addEventListener('abort', () => this.feed({ t: 'fenced' }), { once: true });
    attempt.listen({
      completion: (index, c) => this.feed({ t: 'completion', index, completion: c }),
      cancel: () => this.feed({ t: 'cancel' }),
    });
  }

  /** True while the handler is re-executing recorded entries. */
  get replaying(): boolean {
    return this.r.replaying;
  }

  /** True unless the attempt is running; context calls then park forever. */
  get isEnded(): boolean {
    return this.r.life !== 'running';
  }

  /** The store clock (ms), never ahead of the store. */
  storeNow(): number {
    return this.attempt.storeNow();
  }

  /** Stops the attempt with a failure that no handler code may catch (e.g. non-determinism). */
  fail(error: unknown): void {
    this.feed({ t: 'fail', error: ensureError(error) });
  }

  /** Feeds one event to the replayer and carries out its commands (and theirs, in order). */
  private feed(e: ReplayEvent): Command[] {
    const cmds = this.r.step(e);
    this.queue.push(...cmds);
    if (this.running) return cmds;
    this.running = true;
    try {
      for (let c = this.queue.shift(); c !== undefined; c = this.queue.shift()) this.exec(c);
    } finally {
      this.running = false;
    }
    return cmds;
  }

  private exec(c: Command): void {
    switch (c.c) {
      case 'reserved':
      case 'refused':
        return; // answered to the caller of reserve()
      case 'commit':
        return this.commit(c.from, c.entries, c.effects);
      case 'flushed': {
        const keep: FlushWaiter[] = [];
        for (const w of this.waiters) {
          if (w.upto < c.below) w.resolve();
          else keep.push(w);
        }
        this.waiters = keep;
        return;
      }
      case 'flushFailed': {
        const ws = this.waiters;
        this.waiters = [];
        for (const w of ws) w.reject(c.error);
        return;
      }
      case 'settled': {
        this.timers.clear(this.sleepTimers.get(c.index));
        this.sleepTimers.delete(c.index);
        const ls = this.listeners.get(c.index);
        this.listeners.delete(c.index);
        for (const l of ls ?? []) l(c.completion);
        return;
      }
      case 'combined': {
        const decide = this.deciders.get(c.index);
        if (c.final) this.deciders.delete(c.index);
        decide?.(c.order, c.final);
        return;
      }
      case 'armTimer': {
        const left = Math.min(Math.max(c.at - this.attempt.storeNow(), 0), MAX_DELAY);
        const index = c.index;
        const now = (): number => this.attempt.storeNow();
        const fire = (): void => void this.feed({ t: 'timer', index, now: now() });
        this.sleepTimers.set(c.index, this.timers.set(fire, left));
        return;
      }
      case 'armIdle':
        this.idleTimer = this.timers.set(() => {
          this.idleTimer = undefined;
          this.feed({ t: 'idle' });
        }, c.ms);
        return;
      case 'disarmIdle':
        this.timers.clear(this.idleTimer);
        this.idleTimer = undefined;
        return;
      case 'disarmAll':
        for (const t of this.sleepTimers.values()) this.timers.clear(t);
        this.sleepTimers.clear();
        this.timers.clear(this.idleTimer);
        this.idleTimer = undefined;
        return;
      case 'check':
        this.feed({ t: 'check' });
        return;
      case 'suspend':
        this.suspension = this.suspend(c.on);
        return;
      case 'interrupt':
        return this.interruptResolve(c.interrupt);
    }
  }

  private commit(from: number, entries: NewEntry[], effects: Effect[]): void {
    const done = this.attempt.commit(from, entries, stateOpsOf(entries), effects).then(
      (res) => {
        this.inflight = undefined;
        const count = entries.length;
        this.feed({ t: 'committed', from, count, now: res.now, completions: res.completions });
      },
      (err: unknown) => {
        this.inflight = undefined;
        this.feed({ t: 'commitFailed', error: ensureError(err) });
      },
    );
    this.inflight = done;
  }

  /**
   * Reserves the next journal index for a `kind`/`name` call. During replay returns the recorded
   * entry after checking it matches; a mismatch fails the attempt with a `NonDeterminismError`.
   */
  reserve(kind: EntryKind, name: string | undefined): { index: number; recorded?: Entry } {
    const cmds = this.feed({ t: 'reserve', kind, name });
    for (const c of cmds) {
      if (c.c === 'refused') throw c.error;
      if (c.c !== 'reserved') continue;
      const { index, recorded } = c;
      return recorded === undefined ? { index } : { index, recorded };
    }
    throw new Error('the replayer did not answer a reservation');
  }

  /** Provides the new entry (and its effects) for a reserved index. */
  fill(index: number, entry: NewEntry, effects: Effect[] = []): void {
    this.feed({ t: 'fill', index, entry, effects });
  }

  /** Resolves once every entry up to `index` is committed. */
  flushThrough(index: number): Promise<void> {
    if (index < this.r.committed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ upto: index, resolve, reject });
      this.feed({ t: 'want', upto: index });
    });
  }

  /** The store-clock due time of a committed sleep entry at `index`. */
  dueOf(index: number): number {
    return this.r.dueOf(index);
  }

  /**
   * Notes a new awakeable entry: its id is useless until the entry is committed (the store
   * completes only committed awakeables). Every durable way the id leaves the handler (a step,
   * a call or send, state, the outcome) commits after the entry; a step closure waits for it.
   */
  noteAwakeable(index: number): void {
    this.r.noteAwakeable(index);
  }

  /** Resolves once every awakeable created so far is committed (undefined when they are). */
  awakeablesCommitted(): Promise<void> | undefined {
    const upto = this.r.awakeablesUpto();
    return upto < 0 ? undefined : this.flushThrough(upto);
  }

  /** Marks a step closure as running (no suspension while one is). */
  beginStep(): void {
    this.feed({ t: 'step', running: true });
  }

  /** Marks a step closure as finished. */
  endStep(): void {
    this.feed({ t: 'step', running: false });
  }

  /**
   * Registers a completable entry. Its completion may already be known (journal, store
   * completions); a pending cancellation rejects it at once.
   */
  register(
    index: number,
    kind: CompletableKind,
    init: { completion?: Completion; childId?: string } = {},
  ): Completable {
    this.feed({ t: 'register', index, kind, ...init });
    return this.r.completable(index)!;
  }

  /** Arms the timer of a sleep completable. */
  armSleep(c: Completable, due: number): void {
    this.feed({ t: 'timer', index: c.index, due, now: this.attempt.storeNow() });
  }

  /** Settles a completable (no-op when already settled). */
  settle(index: number, completion: Completion): void {
    this.feed({ t: 'settle', index, completion });
  }

  /** Calls `fn` when the completable settles (now, if it has). Marks it awaited. */
  onSettled(c: Completable, fn: (c: Completion) => void): void {
    const done = c.completion;
    if (done !== undefined) {
      this.feed({ t: 'await', index: c.index });
      queueMicrotask(() => fn(done));
      return;
    }
    const ls = this.listeners.get(c.index);
    if (ls) ls.push(fn);
    else this.listeners.set(c.index, [fn]);
    this.feed({ t: 'await', index: c.index });
  }

  /**
   * Follows the combinator at `index` over `children`: `decide` gets the children's settling order
   * (the recorded one when replaying, `final`) until {@link decided} is called.
   */
  combine(
    index: number,
    children: Completable[],
    recorded: number[] | undefined,
    decide: (order: number[], final: boolean) => void,
  ): void {
    this.deciders.set(index, decide);
    const ids = children.map((c) => c.index);
    this.feed(
      recorded
        ? { t: 'combine', index, children: ids, recorded }
        : { t: 'combine', index, children: ids },
    );
    if (!this.deciders.has(index)) return; // decided at once from the journal
    // The children's completions arrive (they are durable, or live): follow them in index order.
    const follow = recorded ? children.filter((c) => recorded.includes(c.index)) : children;
    for (const c of [...follow].sort((a, b) => a.index - b.index)) {
      this.onSettled(c, () => this.feed({ t: 'combSettled', index, child: c.index }));
    }
  }

  /** The live combinator at `index` decided: later settlements of its children do not count. */
  decided(index: number): void {
    this.deciders.delete(index);
    this.feed({ t: 'combDecided', index });
  }

  /** Completable at an index, if registered. */
  completable(index: number): Completable | undefined {
    return this.r.completable(index);
  }

  /** Suspends as soon as the attempt only waits on timers or completions (used on shutdown). */
  hurry(): void {
    this.feed({ t: 'hurry' });
  }

  /** Waits for an in-flight commit, then takes the uncommitted contiguous entries. */
  async drain(): Promise<Batch> {
    while (this.inflight) await this.inflight;
    return this.r.batch();
  }

  /**
   * In the always-suspend mode, ends the attempt right after a step's result is committed (when no
   * other step is running): the next attempt, dispatched at once, replays up to here. Resolves
   * true when the attempt suspended, false when it carries on (another step runs, or a completion
   * raced the suspension).
   */
  async suspendAfterStep(): Promise<boolean> {
    const cmds = this.feed({ t: 'stepCommitted', now: this.attempt.storeNow() });
    if (!cmds.some((c) => c.c === 'suspend')) return false;
    return await this.suspension!;
  }

  /** Commits what is pending and suspends; true once the attempt is over. */
  private async suspend(on: SuspendOn): Promise<boolean> {
    try {
      const { from, entries, effects } = await this.drain();
      const r = await this.attempt.suspend(from, entries, stateOpsOf(entries), effects, on);
      if (r === 'suspended') {
        this.feed({ t: 'suspended' });
        return true;
      }
      // A completion or cancellation raced the suspension: carry on in memory.
      const count = entries.length;
      const { now, completions, cancelled } = r;
      this.feed({ t: 'resumed', from, count, now, completions, cancelled });
      return this.r.life !== 'running';
    } catch (e) {
      this.feed({ t: 'suspendFailed', error: ensureError(e) });
      return true;
    }
  }

  /** Ends the attempt normally (the handler returned or threw); returns what is left to commit. */
  async finish(): Promise<Batch | undefined> {
    if (this.r.life === 'suspending') await this.suspension;
    if (this.r.life !== 'running') return undefined;
    this.feed({ t: 'finish' });
    return this.drain();
  }
}
