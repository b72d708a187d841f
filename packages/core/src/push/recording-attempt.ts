/**
 * A deployment's side of one push request: an {@link Attempt} with no store behind it. The
 * handler replays the request's journal; its first write (a commit, a suspension, the outcome, a
 * retry or a pause) becomes the answer and ends the attempt, for only the engine can make it
 * durable. A commit's promise never settles: the handler goes on only in the next request, after
 * the engine committed (so a step's result is durable before anything after it runs).
 */
import { performance } from 'node:perf_hooks';
import type { SerializedError } from '../errors.js';
import type { Effect, NewEntry, StateOp } from '../journal/entry.js';
import type { SuspendOn } from '../journal/replay-types.js';
import { never } from '../runtime/journal-runner.js';
import { Stopper } from '../runtime/stop-signal.js';
import type { Attempt, CommitResult, StartedInvocation } from '../store/attempt.js';
import type { FailureDetail } from '../store/detail.js';
import { childInvocationId } from '../store/ids.js';
import type { Outcome, Target } from '../store/invocation.js';
import type { PushRequest, PushResponse } from './protocol.js';

/** Why a recording attempt stopped its runner once its answer was taken. */
const ANSWERED = Object.assign(new Error('the push request is answered'), { kind: 'FENCED' });

/** The invocation a request describes, as the runtime sees one. */
export function startedFrom(req: PushRequest): StartedInvocation {
  return {
    id: req.id,
    target: req.target,
    mode: req.mode,
    input: req.input,
    headers: req.headers,
    attempt: req.attempt,
    journal: req.journal,
    state: new Map(req.state),
    ...(req.lazyState && req.lazyState.length > 0 ? { lazyState: req.lazyState } : {}),
    now: req.now,
    completions: new Map(req.completions),
    cancelRequested: req.cancelRequested,
    seed: req.seed,
    ...(req.trace !== undefined ? { trace: req.trace } : {}),
  };
}

export class RecordingAttempt implements Attempt {
  readonly invocation: StartedInvocation;
  private readonly stopper = new Stopper();
  private readonly req: PushRequest;
  private readonly t0 = performance.now();
  private resolveAnswer!: (a: PushResponse) => void;
  /** Settles with the answer: the attempt's first write. */
  readonly answer: Promise<PushResponse>;
  /** The answer, once taken. */
  taken: PushResponse | undefined;

  constructor(req: PushRequest) {
    this.req = req;
    this.invocation = startedFrom(req);
    this.answer = new Promise((r) => (this.resolveAnswer = r));
  }

  get signal(): Stopper {
    return this.stopper;
  }

  storeNow(): number {
    return this.req.now + Math.floor(performance.now() - this.t0);
  }

  commit(
    from: number,
    entries: NewEntry[],
    _ops: StateOp[],
    effects: Effect[],
  ): Promise<CommitResult> {
    this.end({ type: 'commit', from, entries, effects });
    return never();
  }

  suspend(
    from: number,
    entries: NewEntry[],
    _ops: StateOp[],
    effects: Effect[],
    on: SuspendOn,
  ): Promise<'suspended'> {
    this.end({ type: 'suspend', from, entries, effects, on });
    return never();
  }

  complete(
    from: number,
    entries: NewEntry[],
    _ops: StateOp[],
    effects: Effect[],
    outcome: Outcome,
  ): Promise<void> {
    this.end({ type: 'complete', from, entries, effects, outcome });
    return Promise.resolve();
  }

  retry(failure: SerializedError, delayMs: number, detail?: FailureDetail): Promise<void> {
    const from = this.invocation.journal.length;
    this.end({
      type: 'retry',
      from,
      entries: [],
      effects: [],
      failure,
      delayMs,
      ...(detail ? { detail } : {}),
    });
    return Promise.resolve();
  }

  pause(failure: SerializedError, detail?: FailureDetail): Promise<void> {
    const from = this.invocation.journal.length;
    this.end({
      type: 'pause',
      from,
      entries: [],
      effects: [],
      failure,
      ...(detail ? { detail } : {}),
    });
    return Promise.resolve();
  }

  needState(names: string[]): void {
    const from = this.invocation.journal.length;
    this.end({ type: 'state', from, entries: [], effects: [], names });
  }

  listen(): void {
    // Nothing reaches a push request once it is sent: completions come with the next one.
  }

  childId(index: number, target: Target, idempotencyKey?: string): string {
    return childInvocationId(this.req.partitions, this.req.seed, index, target, idempotencyKey);
  }

  private end(a: DistributiveOmit<PushResponse, 'v' | 'fence'>): void {
    if (this.taken) return;
    this.taken = { v: 1, fence: this.req.fence, ...a };
    this.resolveAnswer(this.taken);
    // The answer is taken: the runner stops as if fenced (nothing after it may run here).
    if (a.type === 'commit' || a.type === 'suspend' || a.type === 'state') {
      this.stopper.abort(ANSWERED);
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
