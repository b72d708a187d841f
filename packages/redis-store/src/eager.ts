/**
 * Eager completion: a handler that only reads and writes state runs before its invocation is
 * accepted, against the key's state as this process last committed it, and the accept script
 * stores the invocation completed (journal, state ops, outcome) when the key is free and its
 * fence epoch shows that nobody wrote since. One script per invocation instead of two (accept,
 * complete). Anything else the handler does (a step, timer, call, send...) stops the attempt
 * before it runs, and so does not finishing within the event-loop turn it started in: the
 * invocation is then accepted the ordinary way. See `Attempt.eager` and ARCHITECTURE.md.
 */
import {
  DurableError,
  ErrorCode,
  type Attempt,
  type CommitResult,
  type Effect,
  type Executor,
  type NewEntry,
  type Outcome,
  type SerializedError,
  type StartedInvocation,
  type StateOp,
  type StopSignal,
} from '@latchkey/core';
import { Stopper, isStateKind } from '@latchkey/core/internal';
import { batchArgs } from './wire.js';

/** What an eager attempt produced. */
export interface EagerResult {
  entries: NewEntry[];
  ops: StateOp[];
  outcome: Outcome;
}

/** A key's state as this process committed it, and the fence epoch the key had then. */
export interface CommittedState {
  state: Map<string, string>;
  ep: string;
}

/**
 * The key states this process committed last, most recently used last, at most `max`. An entry is
 * only a guess: the accept script compares its epoch with the key's fence before using it.
 */
export class StateCache {
  private readonly entries = new Map<string, CommittedState>();
  private readonly max: number;

  /** `max`: how many keys' states to remember (the least recently used go first). */
  constructor(max = 10_000) {
    this.max = max;
  }

  /** Removes and returns a key's entry. */
  take(key: string): CommittedState | undefined {
    const v = this.entries.get(key);
    if (v) this.entries.delete(key);
    return v;
  }

  /** Records a key's committed state. */
  put(key: string, value: CommittedState): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Forgets a key (an ordinary attempt runs on it). */
  drop(key: string): void {
    this.entries.delete(key);
  }
}

function declined(id: string): DurableError {
  return new DurableError(
    `eager attempt of ${id} declined: the invocation is accepted the ordinary way`,
    ErrorCode.FENCED,
  );
}

/**
 * The attempt an eager run uses (see `Attempt.eager`). It produces an {@link EagerResult} or
 * declines; the store then `confirm()`s it (the accept script stored it completed) or `refuse()`s
 * it (accepted the ordinary way), which settles the handler's `complete()`.
 */
export class EagerAttempt implements Attempt {
  readonly eager = true;
  /** An eager attempt reads and writes state only. */
  readonly admits = isStateKind;
  readonly invocation: StartedInvocation;
  private readonly stopper = new Stopper();
  private settle!: (r: EagerResult | undefined) => void;
  private commitment: { resolve(): void; reject(e: unknown): void } | undefined;
  /** The attempt's result once the handler completed, or undefined once it declined. */
  readonly result: Promise<EagerResult | undefined>;

  constructor(invocation: StartedInvocation) {
    this.invocation = invocation;
    this.result = new Promise((r) => (this.settle = r));
  }

  get signal(): StopSignal {
    return this.stopper;
  }

  storeNow(): number {
    return Date.now();
  }

  listen(): void {
    // An eager attempt takes no completions: it waits for nothing.
  }

  childId(): string {
    throw declined(this.invocation.id);
  }

  /** Stops the attempt, unless it completed already; its invocation takes the ordinary path. */
  decline(): void {
    if (this.stopper.aborted || this.commitment) return;
    this.stopper.abort(declined(this.invocation.id));
    this.settle(undefined);
  }

  private refused(): Promise<never> {
    this.decline();
    return Promise.reject(declined(this.invocation.id));
  }

  commit(): Promise<CommitResult> {
    return this.refused();
  }

  suspend(): Promise<never> {
    return this.refused();
  }

  retry(_failure: SerializedError): Promise<void> {
    return this.refused();
  }

  pause(_failure: SerializedError): Promise<void> {
    return this.refused();
  }

  complete(
    _from: number,
    entries: NewEntry[],
    ops: StateOp[],
    effects: Effect[],
    outcome: Outcome,
  ): Promise<void> {
    if (effects.length > 0 || this.stopper.aborted) return this.refused();
    return new Promise((resolve, reject) => {
      this.commitment = { resolve, reject };
      this.settle({ entries, ops, outcome });
    });
  }

  /** The accept script stored the invocation completed: the handler's `complete()` resolves. */
  confirm(): void {
    this.commitment?.resolve();
  }

  /** The invocation was accepted the ordinary way: the handler's `complete()` rejects (fenced). */
  refuse(): void {
    this.commitment?.reject(declined(this.invocation.id));
  }
}

/**
 * Keeps accepts and lookups in the order they reach the store although an eager run issues its
 * accept only after its handler ran: a frame that follows a call on one WebSocket (another call,
 * a subscription by workflow key...) must not reach Redis before that call's accept. While an
 * operation is held back (an eager run, or one waiting behind it), later ones wait their turn;
 * with none held back, operations go at once, as before.
 */
export class ArrivalOrder {
  private tail: Promise<void> = Promise.resolve();
  private held = 0;

  /**
   * Takes a turn for an operation that will be held back (`hold`: an eager run) or must wait for
   * earlier held ones. Returns undefined when it may go at once; else `ready`, which settles
   * when every earlier held operation has been issued, and `issued`, to call once this one
   * has been (its command handed to the connection) or has given up.
   */
  turn(hold: boolean): { ready: Promise<void>; issued: () => void } | undefined {
    if (!hold && this.held === 0) return undefined;
    this.held++;
    const ready = this.tail;
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    this.tail = ready.then(() => mine);
    let called = false;
    return {
      ready,
      issued: () => {
        if (called) return;
        called = true;
        this.held--;
        done();
      },
    };
  }
}

/** An eager run about to start: its attempt, the key state it runs against (objects), its handler. */
export interface PreparedEager {
  attempt: EagerAttempt;
  committed: CommittedState | undefined;
  executor: Executor;
  /** `service/handler`. */
  handlerKey: string;
}

/** An eager run waiting for its accept script (see `EagerAttempt`). */
export interface EagerRun {
  attempt: EagerAttempt;
  result: EagerResult;
  /** The key's committed state it ran against (objects), taken out of the cache. */
  committed: CommittedState | undefined;
}

/** The state cache's key of an object key. */
export function stateKey(service: string, key: string): string {
  return `${service}\u0000${key}`;
}

/** The accept script's eager-completion arguments (ARGV 18..) for a run's result. */
export function eagerArgs(run: EagerRun): (string | number)[] {
  const { outcome, entries, ops } = run.result;
  const args: (string | number)[] = [
    run.committed?.ep ?? 'service',
    outcome.ok ? 'ok' : 'err',
    outcome.ok ? (outcome.value ?? '') : JSON.stringify(outcome.error),
  ];
  // A commit's batch: entries, state ops, and no effects (an eager run has none).
  return args.concat(batchArgs(entries, ops));
}
