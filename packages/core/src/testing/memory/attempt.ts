/**
 * An attempt of the in-memory store: every write is fenced by the record's epoch and status, as
 * the Redis store's scripts fence them.
 */
import { DurableError, ErrorCode, type SerializedError } from '../../errors.js';
import type { Effect, NewEntry, StateOp } from '../../journal/entry.js';
import { Stopper, type StopSignal } from '../../runtime/stop-signal.js';
import type {
  Attempt,
  AttemptListener,
  CommitResult,
  StartedInvocation,
  SuspendOn,
} from '../../store/attempt.js';
import type { Outcome, Target } from '../../store/invocation.js';
import type { FailureDetail, FailureRecord } from '../../store/detail.js';
import { commitBatch } from './commit.js';
import type { Engine } from './engine.js';
import { setStatus, stored, type Rec } from './records.js';

export class MemoryStoreAttempt implements Attempt {
  readonly invocation: StartedInvocation;
  private readonly stopper = new Stopper();
  private readonly ownEpoch: number;
  private readonly engine: Engine;
  private readonly rec: Rec;

  constructor(engine: Engine, rec: Rec) {
    this.engine = engine;
    this.rec = rec;
    this.ownEpoch = ++rec.epoch;
    setStatus(rec, 'running');
    rec.started = true;
    rec.seen.firstStartedAt ??= Date.now();
    rec.seen.lastStartedAt = Date.now();
    rec.stop = () => this.stopper.abort(this.fenced('stopped'));
    const t = rec.target;
    const state =
      t.key !== undefined && rec.mode !== 'service'
        ? new Map(engine.slot(t.service, t.key).state)
        : new Map<string, string>();
    this.invocation = {
      id: rec.id,
      target: { ...t },
      mode: rec.mode,
      input: rec.input,
      headers: { ...rec.headers },
      attempt: rec.failures + 1,
      journal: JSON.parse(JSON.stringify(rec.journal)) as StartedInvocation['journal'],
      state,
      now: Date.now(),
      completions: new Map(rec.completions),
      cancelRequested: rec.cancelRequested,
      seed: rec.seed,
      createdAt: rec.createdAt,
      readyAt: rec.modifiedAt,
      ...(rec.trace !== undefined ? { trace: rec.trace } : {}),
    };
  }

  get signal(): StopSignal {
    return this.stopper.signal;
  }

  /** True while this attempt still owns its invocation. */
  get current(): boolean {
    return this.engine.recs.get(this.rec.id) === this.rec && this.rec.epoch === this.ownEpoch;
  }

  private fenced(why: string): DurableError {
    return new DurableError(`attempt of ${this.rec.id} was fenced off (${why})`, ErrorCode.FENCED);
  }

  /** Throws (and stops the attempt) unless it may still write. */
  private check(from: number): void {
    let why: string | undefined;
    if (!this.current || this.rec.status !== 'running') why = 'epoch';
    else if (from !== this.rec.journal.length) why = 'journal index';
    if (why === undefined) return;
    const e = this.fenced(why);
    this.stopper.abort(e);
    throw e;
  }

  storeNow(): number {
    return Date.now();
  }

  listen(listener: AttemptListener): void {
    if (this.current) this.rec.listener = listener;
  }

  childId(index: number, _target: Target): string {
    return this.engine.childId(this.rec.seed, index);
  }

  commit(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
  ): Promise<CommitResult> {
    try {
      this.check(from);
      return Promise.resolve(commitBatch(this.engine, this.rec, entries, ops, effects));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  suspend(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    on: SuspendOn,
  ): Promise<'suspended' | (CommitResult & { cancelled: boolean })> {
    try {
      this.check(from);
      const rec = this.rec;
      const { now } = commitBatch(this.engine, rec, entries, ops, effects);
      const cancelled = rec.cancelRequested && !rec.journal.some((e) => e.k === 'signal');
      if (cancelled || on.awaiting.some((i) => rec.completions.has(i))) {
        return Promise.resolve({ now, completions: new Map(rec.completions), cancelled });
      }
      this.release('suspended');
      if (on.wakeAt !== null) this.engine.wakeLater(rec, on.wakeAt - now, 'suspended');
      return Promise.resolve('suspended');
    } catch (e) {
      return Promise.reject(e);
    }
  }

  complete(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    outcome: Outcome,
  ): Promise<void> {
    try {
      this.check(from);
      commitBatch(this.engine, this.rec, entries, ops, effects);
      delete this.rec.stop;
      this.engine.complete(this.rec, outcome);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  retry(failure: SerializedError, delayMs: number, detail?: FailureDetail): Promise<void> {
    try {
      this.check(this.rec.journal.length);
      this.rec.failures++;
      this.rec.lastFailure = failure;
      this.keepFailure(failure, detail);
      this.rec.seen.nextRetryAt = Date.now() + Math.max(0, delayMs);
      this.release('backing-off');
      this.rec.retryAt = Date.now() + delayMs;
      this.engine.wakeLater(this.rec, delayMs, 'backing-off');
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  pause(failure: SerializedError, detail?: FailureDetail): Promise<void> {
    try {
      this.check(this.rec.journal.length);
      this.rec.lastFailure = failure;
      this.keepFailure(failure, detail);
      this.release('paused');
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The failure as `inspect` reports it (with its detail when the runtime gave one). */
  private keepFailure(failure: SerializedError, detail: FailureDetail | undefined): void {
    const error = stored(failure) as FailureRecord['error'];
    if (detail?.stack !== undefined) error.stack = detail.stack;
    const rec: FailureRecord = {
      attempt: detail?.attempt ?? this.rec.failures,
      at: Date.now(),
      error,
    };
    if (detail?.step) rec.step = { ...detail.step };
    this.rec.seen.failure = rec;
  }

  /** Ends the attempt's hold on the record, leaving it in `status`. */
  private release(status: 'suspended' | 'backing-off' | 'paused'): void {
    setStatus(this.rec, status);
    delete this.rec.listener;
    delete this.rec.stop;
  }
}
