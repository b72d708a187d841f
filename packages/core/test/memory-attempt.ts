import { DurableError, ErrorCode } from '@latchkey/core';
import { isStateKind } from '@latchkey/core/internal';
import type {
  Attempt,
  AttemptListener,
  CommitResult,
  Completion,
  Effect,
  Entry,
  EntryKind,
  FailureDetail,
  NewEntry,
  Outcome,
  SerializedError,
  StartedInvocation,
  StateOp,
  SuspendOn,
  Target,
} from '@latchkey/core';

/** What an in-memory attempt was asked to do, in order. */
export type Call =
  | { kind: 'commit'; from: number; entries: NewEntry[]; ops: StateOp[]; effects: Effect[] }
  | {
      kind: 'suspend';
      from: number;
      entries: NewEntry[];
      wakeAt: number | null;
      awaiting: number[];
    }
  | { kind: 'complete'; from: number; entries: NewEntry[]; outcome: Outcome }
  | { kind: 'retry'; failure: SerializedError; delayMs: number }
  | { kind: 'pause'; failure: SerializedError };

/**
 * An in-memory {@link Attempt} for pure journal/replay tests: a store clock that
 * only moves when the test says so, and a log of every call.
 */
export class MemoryAttempt implements Attempt {
  readonly calls: Call[] = [];
  readonly journal: Entry[];
  readonly state: Map<string, string>;
  readonly invocation: StartedInvocation;
  private readonly ac = new AbortController();
  clock = 1_000_000;
  private endResolve!: () => void;
  /** Settles when the attempt completed, suspended, retried or paused. */
  readonly ended = new Promise<void>((r) => (this.endResolve = r));

  /** An eager attempt (see `Attempt.eager`). */
  readonly eager: boolean;
  /** An eager attempt admits state entries only (see `Attempt.admits`). */
  readonly admits: ((kind: EntryKind) => boolean) | undefined;
  /** When set, `complete()` rejects as fenced (a store that accepted the invocation the ordinary way). */
  refuseCompletion = false;

  constructor(
    init: Partial<StartedInvocation> & { target: StartedInvocation['target']; eager?: boolean },
  ) {
    this.eager = init.eager ?? false;
    this.admits = this.eager ? isStateKind : undefined;
    this.journal = [...(init.journal ?? [])];
    this.state = new Map(init.state ?? []);
    this.invocation = {
      id: init.id ?? 'inv_00TESTTESTTESTTESTTEST',
      mode: init.mode ?? 'exclusive',
      input: init.input ?? '',
      headers: init.headers ?? {},
      attempt: init.attempt ?? 1,
      journal: [...this.journal],
      state: new Map(this.state),
      now: this.clock,
      target: init.target,
      completions: new Map(init.completions ?? []),
      cancelRequested: init.cancelRequested ?? false,
      seed: init.seed ?? 'test-seed',
    };
  }

  /** The listener the runner registered, to deliver completions and cancellations. */
  listener: AttemptListener | undefined;

  listen(l: AttemptListener): void {
    this.listener = l;
  }

  childId(index: number, target: Target): string {
    return `inv_00child${index}${target.service}`;
  }

  /** Completions produced by the next commits (as a store would for promise effects). */
  readonly commitCompletions = new Map<number, Completion>();

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  storeNow(): number {
    return this.clock;
  }

  private apply(from: number, entries: NewEntry[], ops: StateOp[]): void {
    if (from !== this.journal.length)
      throw new Error(`commit at ${from} but journal has ${this.journal.length}`);
    for (const e of entries)
      this.journal.push(
        e.k === 'sleep' ? { k: 'sleep', ...(e.n ? { n: e.n } : {}), due: this.clock + e.ms } : e,
      );
    for (const op of ops) {
      if (op.op === 'set') this.state.set(op.n, op.v);
      else if (op.op === 'clear') this.state.delete(op.n);
      else this.state.clear();
    }
  }

  commit(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
  ): Promise<CommitResult> {
    this.calls.push({ kind: 'commit', from, entries, ops, effects });
    this.apply(from, entries, ops);
    const completions = new Map(this.commitCompletions);
    this.commitCompletions.clear();
    return Promise.resolve({ now: this.clock, completions });
  }

  suspend(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    _effects: Effect[],
    on: SuspendOn,
  ): Promise<'suspended'> {
    this.calls.push({ kind: 'suspend', from, entries, wakeAt: on.wakeAt, awaiting: on.awaiting });
    this.apply(from, entries, ops);
    this.endResolve();
    return Promise.resolve('suspended');
  }

  complete(
    from: number,
    entries: NewEntry[],
    ops: StateOp[],
    _effects: Effect[],
    outcome: Outcome,
  ): Promise<void> {
    this.calls.push({ kind: 'complete', from, entries, outcome });
    this.endResolve();
    if (this.refuseCompletion)
      return Promise.reject(new DurableError('accepted the ordinary way', ErrorCode.FENCED));
    this.apply(from, entries, ops);
    return Promise.resolve();
  }

  /** The failure details `retry` and `pause` were given (kept apart from `calls`). */
  readonly failureDetails: (FailureDetail | undefined)[] = [];

  retry(failure: SerializedError, delayMs: number, detail?: FailureDetail): Promise<void> {
    this.failureDetails.push(detail);
    this.calls.push({ kind: 'retry', failure, delayMs });
    this.endResolve();
    return Promise.resolve();
  }

  pause(failure: SerializedError, detail?: FailureDetail): Promise<void> {
    this.failureDetails.push(detail);
    this.calls.push({ kind: 'pause', failure });
    this.endResolve();
    return Promise.resolve();
  }
}
