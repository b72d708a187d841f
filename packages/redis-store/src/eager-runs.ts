/**
 * Eager runs (see `eager.ts` and ARCHITECTURE.md "Eager completion"): which calls run eagerly,
 * preparing an eager attempt against the key's committed state, and running it until it
 * completes or stops short, for the accept script to complete the invocation with.
 */
import type { StoreContext } from './context.js';
import {
  EagerAttempt,
  stateKey,
  type CommittedState,
  type EagerRun,
  type PreparedEager,
  type StateCache,
} from './eager.js';
import type { Mailbox } from './mailbox.js';
import type { WireInvocation } from './wire.js';

/** After this many eager runs of a handler in a row stopped short, eager runs of it are only probes... */
const EAGER_MISSES = 3;
/** ...one in this many calls (a handler's code may change with its input). */
const EAGER_PROBE = 64;

/**
 * Which handlers to run eagerly: every call, until three eager runs of a handler in a row stopped
 * short (it does more than read and write state); then one call in 64, and every call again once
 * one of those completes.
 */
export class EagerMisses {
  /** Eager runs in a row that stopped short, by `service/handler`. */
  private readonly misses = new Map<string, number>();

  /** Whether to try an eager run of a handler (`service/handler`) for this call. */
  tryNow(handler: string): boolean {
    const m = this.misses.get(handler) ?? 0;
    if (m < EAGER_MISSES) return true;
    this.misses.set(handler, m + 1);
    return (m - EAGER_MISSES) % EAGER_PROBE === EAGER_PROBE - 1;
  }

  /** An eager run of the handler stopped short (a probe's was counted when it was let through). */
  missed(handler: string): void {
    const m = this.misses.get(handler) ?? 0;
    if (m < EAGER_MISSES) this.misses.set(handler, m + 1);
  }

  /** An eager run of the handler completed. */
  hit(handler: string): void {
    this.misses.delete(handler);
  }
}

/** Prepares and runs eager attempts in this process's worker. */
export class EagerRuns {
  private readonly ctx: StoreContext;
  private readonly mailbox: Mailbox;
  private readonly stateCache: StateCache;
  readonly misses = new EagerMisses();

  constructor(ctx: StoreContext, mailbox: Mailbox, stateCache: StateCache) {
    this.ctx = ctx;
    this.mailbox = mailbox;
    this.stateCache = stateCache;
  }

  /**
   * Prepares an eager run (see `eager.ts`) when the handler may run eagerly: a service handler,
   * or an object's exclusive handler on a key whose committed state this process has (taken out
   * of the cache); no delay; a local worker that takes attempts; not a handler whose eager runs
   * keep stopping short.
   */
  prepare(req: WireInvocation, seed: string): PreparedEager | undefined {
    const o = this.ctx.opts;
    if (!o.eagerCompletion || !o.localDispatch) return undefined;
    if ((req.mode !== 'exclusive' && req.mode !== 'service') || (req.delayMs ?? 0) > 0)
      return undefined;
    const local = this.mailbox.freeLocal();
    if (!local) return undefined;
    const handlerKey = `${req.service}/${req.handler}`;
    if (!this.misses.tryNow(handlerKey)) return undefined;
    let committed: CommittedState | undefined;
    if (req.mode === 'exclusive') {
      committed = this.stateCache.take(stateKey(req.service, req.key ?? ''));
      if (!committed) return undefined;
    }
    const attempt = new EagerAttempt({
      id: req.id,
      target: {
        service: req.service,
        handler: req.handler,
        ...(req.key !== undefined ? { key: req.key } : {}),
      },
      mode: req.mode,
      input: req.input,
      headers: req.headers ?? {},
      attempt: 1,
      journal: [],
      // The context works on a copy; this map becomes the key's state after the run's ops.
      state: committed?.state ?? new Map<string, string>(),
      now: Date.now(),
      completions: new Map(),
      cancelRequested: false,
      seed,
      ...(req.trace !== undefined ? { trace: req.trace } : {}),
    });
    return { attempt, committed, executor: local.executor, handlerKey };
  }

  /**
   * Runs a prepared eager attempt. Resolves with its result, or undefined when it stopped short
   * (the invocation is then accepted the ordinary way).
   */
  async run(p: PreparedEager): Promise<EagerRun | undefined> {
    const { attempt, committed, executor, handlerKey } = p;
    void executor.run(attempt).catch(() => undefined);
    // A handler that has not completed when this event-loop turn's I/O is done waits for
    // something (I/O outside the journal): it is left to the ordinary path.
    const check = setImmediate(() => attempt.decline());
    const result = await attempt.result;
    clearImmediate(check);
    if (!result) {
      this.misses.missed(handlerKey);
      return undefined;
    }
    this.misses.hit(handlerKey);
    return { attempt, result, committed };
  }
}
