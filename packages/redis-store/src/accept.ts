/**
 * Accepting invocations: ids and partitions, the accept script (with the local fast path's first
 * lease and eager completion), duplicates and retried accepts, and child accepts from the outbox.
 */
import type {
  Accepted,
  Completion,
  InvocationRequest,
  Outcome,
  StartedInvocation,
  StopSignal,
} from '@latchkey/core';
import { cancelToken } from '@latchkey/core/internal';
import type { Attempts } from './attempts.js';
import { acceptInvocation } from './calls.js';
import type { StoreContext } from './context.js';
import {
  ArrivalOrder,
  EagerAttempt,
  type StateCache,
  eagerArgs,
  stateKey,
  type CommittedState,
  type EagerRun,
  type PreparedEager,
} from './eager.js';
import { StoreError } from './errors.js';
import { startJson } from './handoff.js';
import { partitionFor } from './ids.js';
import { newInvocationId, partitionOfId, scriptKeys } from './keys.js';
import type { Mailbox } from './mailbox.js';
import type { Outcomes } from './outcomes.js';
import {
  DAY_MS,
  applyOps,
  randomId,
  retentionArg,
  seedOf,
  stateMap,
  type JobData,
  type WireInvocation,
} from './wire.js';

/** After this many eager runs of a handler in a row stopped short, eager runs of it are only probes... */
const EAGER_MISSES = 3;
/** ...one in this many calls (a handler's code may change with its input). */
const EAGER_PROBE = 64;

type Deliver = (
  invocationId: string,
  index: number,
  completion: Completion,
  want: string,
) => Promise<unknown>;

export class Acceptor {
  private readonly ctx: StoreContext;
  private readonly mailbox: Mailbox;
  private readonly outcomes: Outcomes;
  private readonly attempts: Attempts;
  private readonly stateCache: StateCache;
  private readonly deliver: Deliver;
  /** Eager runs in a row that stopped short, by `service/handler`. */
  private readonly eagerMisses = new Map<string, number>();
  /** Keeps accepts and lookups in arrival order around eager runs. */
  readonly order = new ArrivalOrder();

  constructor(
    ctx: StoreContext,
    parts: {
      mailbox: Mailbox;
      outcomes: Outcomes;
      attempts: Attempts;
      stateCache: StateCache;
      deliver: Deliver;
    },
  ) {
    this.ctx = ctx;
    this.mailbox = parts.mailbox;
    this.outcomes = parts.outcomes;
    this.attempts = parts.attempts;
    this.stateCache = parts.stateCache;
    this.deliver = parts.deliver;
  }

  async accept(
    req: InvocationRequest,
    options: { awaitOutcome?: StopSignal } = {},
  ): Promise<Accepted & { outcome?: Promise<Outcome> }> {
    if (this.ctx.life.wiped) {
      throw new StoreError(
        'Redis was wiped or replaced while Latchkey ran; refusing new invocations',
        'REDIS_WIPED',
      );
    }
    const { service, handler, key } = req.target;
    // One draw: the first byte picks a partition when the target does not, the rest is the id.
    const random = randomId();
    const partition = partitionFor(
      this.ctx.opts.partitions,
      req.target,
      req.idempotencyKey,
      random[0]!,
    );
    const id = newInvocationId(partition, random.subarray(1, 23));
    const seed = seedOf(random);
    // A caller that wants the outcome listens before the invocation exists: a fresh one cannot
    // have completed yet, so it needs no read afterwards.
    const wait = options.awaitOutcome ? this.outcomes.waitFor(id, options.awaitOutcome) : undefined;
    const prepared = this.prepareEager(req, id, seed);
    const turn = this.order.turn(prepared !== undefined);
    let eager: EagerRun | undefined;
    let accepted: Accepted & { fresh: boolean };
    try {
      if (prepared) eager = await this.runEager(prepared);
      if (eager) this.ctx.opts.hooks?.beforeEagerAccept?.({ invocationId: id, service, handler });
      if (turn) await turn.ready;
      const out: WireInvocation = {
        id,
        service,
        handler,
        mode: req.mode,
        input: req.input,
        journalRetentionMs: req.journalRetentionMs,
        idempotencyRetentionMs: req.idempotencyRetentionMs,
        workflowRetentionMs: req.workflowRetentionMs,
      };
      if (key !== undefined) out.key = key;
      if (req.headers !== undefined) out.headers = req.headers;
      if (req.idempotencyKey !== undefined) out.idempotencyKey = req.idempotencyKey;
      if (req.delayMs !== undefined) out.delayMs = req.delayMs;
      if (req.trace !== undefined) out.trace = req.trace;
      accepted = await this.acceptWithId(
        out,
        wait !== undefined,
        eager,
        turn?.issued,
        partition,
        seed,
      );
    } catch (e) {
      turn?.issued();
      eager?.attempt.refuse();
      wait?.waiter.drop();
      throw e;
    }
    const fresh = accepted.fresh;
    const result: Accepted & { outcome?: Promise<Outcome> } = {
      invocationId: accepted.invocationId,
      status: accepted.status,
    };
    if (accepted.reason !== undefined) result.reason = accepted.reason;
    // Only the request that created the invocation learns its cancel token: derived (an HMAC) when
    // read, since only the WebSocket ingress sends it on.
    if (fresh) {
      let token: string | undefined;
      const get = (): string => (token ??= cancelToken(seed));
      Object.defineProperty(result, 'cancelToken', { enumerable: true, get });
    }
    if (!wait) return result;
    if (result.invocationId !== id) {
      // An earlier invocation matched (idempotency key or workflow id): latch on to it instead.
      wait.waiter.drop();
      return {
        ...result,
        outcome: this.outcomes.awaitOutcome(result.invocationId, options.awaitOutcome),
      };
    }
    if (!fresh) this.outcomes.checkNow(id, wait.waiter); // a retried accept: it may have run already
    // Not spread: that would read (and derive) the cancel token.
    result.outcome = wait.promise;
    return result;
  }

  /**
   * Prepares an eager run (see `eager.ts`) when the handler may run eagerly: a service handler,
   * or an object's exclusive handler on a key whose committed state this process has (taken out
   * of the cache); no delay; a local worker that takes attempts; not a handler whose eager runs
   * keep stopping short.
   */
  private prepareEager(
    req: InvocationRequest,
    id: string,
    seed: string,
  ): PreparedEager | undefined {
    const o = this.ctx.opts;
    if (!o.eagerCompletion || !o.localDispatch) return undefined;
    if ((req.mode !== 'exclusive' && req.mode !== 'service') || (req.delayMs ?? 0) > 0)
      return undefined;
    const local = this.mailbox.freeLocal();
    if (!local) return undefined;
    const t = req.target;
    const handlerKey = `${t.service}/${t.handler}`;
    const misses = this.eagerMisses.get(handlerKey) ?? 0;
    if (misses >= EAGER_MISSES) {
      this.eagerMisses.set(handlerKey, misses + 1);
      if ((misses - EAGER_MISSES) % EAGER_PROBE !== EAGER_PROBE - 1) return undefined;
    }
    let committed: CommittedState | undefined;
    if (req.mode === 'exclusive') {
      committed = this.stateCache.take(stateKey(t.service, t.key ?? ''));
      if (!committed) return undefined;
    }
    const attempt = new EagerAttempt({
      id,
      target: t,
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
    return { attempt, committed, executor: local.executor, handlerKey, misses };
  }

  /**
   * Runs a prepared eager attempt. Resolves with its result, or undefined when it stopped short
   * (the invocation is then accepted the ordinary way).
   */
  private async runEager(p: PreparedEager): Promise<EagerRun | undefined> {
    const { attempt, committed, executor, handlerKey, misses } = p;
    void executor.run(attempt).catch(() => undefined);
    // A handler that has not completed when this event-loop turn's I/O is done waits for
    // something (I/O outside the journal): it is left to the ordinary path.
    const check = setImmediate(() => attempt.decline());
    const result = await attempt.result;
    clearImmediate(check);
    if (!result) {
      this.eagerMisses.set(handlerKey, misses + 1);
      return undefined;
    }
    this.eagerMisses.delete(handlerKey);
    return { attempt, result, committed };
  }

  /**
   * Runs the accept script for an invocation with a chosen id (a handler's child: from the
   * outbox); `fresh` when this call created it. With a free local worker slot the same script
   * also starts the attempt when the invocation is ready at once, saving the start script's
   * round trip (see `Mailbox.dispatch` for the fast path).
   */
  async acceptWithId(
    req: WireInvocation,
    watch = false,
    eager?: EagerRun,
    issued?: () => void,
    partition?: number,
    seed = seedOf(randomId()),
  ): Promise<Accepted & { fresh: boolean }> {
    const c = this.ctx;
    // The partition is known to a caller that just made the id.
    const p = partition ?? partitionOfId(req.id, c.opts.partitions);
    if (p === undefined) throw new StoreError(`malformed invocation id ${req.id}`, 'INVALID_ID');
    const k = c.keys;
    const keyed = req.key !== undefined;
    const idem = req.idempotencyKey ?? '';
    const data: JobData = { i: req.id, s: req.service, k: req.key ?? '', m: req.mode };
    const ks = scriptKeys(k, p, data);
    // Only a free slot is checked here: the slot is taken when the script leases the invocation
    // to this process (an accept that queues behind a busy key needs none). Accepts in flight can
    // so overshoot the capacity by their number, never more.
    const local = (req.delayMs ?? 0) > 0 ? undefined : this.mailbox.freeLocal();
    // As in Attempts.run: completions published between the script and the attempt listening are kept.
    const ownsEarly = local !== undefined && this.outcomes.hold(req.id);
    const unreserve = (): void => {
      if (ownsEarly) this.outcomes.release(req.id);
    };
    // Without a free slot here, the script itself wakes a worker of another process when the
    // invocation is ready (a fresh invocation's dispatch sequence is 1).
    const handoff =
      local || (req.delayMs ?? 0) > 0
        ? undefined
        : this.mailbox.handoffTarget(p, () => startJson({ ...req, seed }));
    let res;
    try {
      const reply = acceptInvocation(c.redis, {
        keys: {
          inv: ks.inv,
          due: ks.due,
          fence: ks.fence,
          state: ks.state,
          inbox: ks.inbox,
          workflow: req.mode === 'workflow' ? k.workflow(p, req.service, req.key ?? '') : undefined,
          idempotency:
            idem !== ''
              ? k.idempotency(p, req.service, req.key ?? '', req.handler, idem)
              : undefined,
        },
        id: req.id,
        service: req.service,
        handler: req.handler,
        key: req.key ?? '',
        mode: req.mode,
        input: req.input,
        idempotencyKey: idem,
        headersJson: JSON.stringify(req.headers ?? {}),
        delayMs: Math.max(0, Math.round(req.delayMs ?? 0)),
        graceMs: c.opts.graceMs,
        retention: retentionArg(
          req.journalRetentionMs ?? DAY_MS,
          req.idempotencyRetentionMs ?? DAY_MS,
          req.workflowRetentionMs ?? DAY_MS,
        ),
        part: k.part(p),
        member: req.caller ? `${req.caller.id}:${req.caller.index}` : '',
        invokedBy: req.parent ? `${req.parent.id}:${req.parent.index}` : '',
        trace: req.trace ?? '',
        workerId: local ? c.workerId : '',
        leaseMs: c.opts.leaseMs,
        outcomeChannel: watch ? c.outcomeChannel(p) : '',
        seed,
        handoff,
        eager: eager ? eagerArgs(eager) : undefined,
      });
      issued?.();
      res = await reply;
    } catch (e) {
      unreserve();
      throw e;
    }
    if (res.tag === 'done') {
      // Accepted and completed by the script with the eager run's outcome.
      unreserve();
      const { attempt, result, committed } = eager!;
      attempt.confirm();
      if (committed) {
        applyOps(committed.state, result.ops);
        this.attempts.rememberState(req.service, req.key ?? '', committed.state, res.epoch);
      }
      this.outcomes.resolveWaiters(req.id, result.outcome);
      return { invocationId: req.id, status: 'Accepted', fresh: true };
    }
    eager?.attempt.refuse();
    if (res.tag === 'run') {
      // Leased by the accept script: a fresh invocation, so everything but the epoch, the clock and
      // the key's state is known here.
      const inv: StartedInvocation = {
        id: req.id,
        target: { service: req.service, handler: req.handler, ...(keyed ? { key: req.key! } : {}) },
        mode: req.mode,
        input: req.input,
        headers: req.headers ?? {},
        attempt: 1,
        journal: [],
        state: stateMap(res.state),
        now: res.now,
        completions: new Map(),
        cancelRequested: false,
        seed,
        createdAt: res.now,
        readyAt: res.now,
      };
      if (req.trace !== undefined) inv.trace = req.trace;
      const epoch = res.epoch;
      const now = res.now;
      void this.mailbox
        .inSlot(local!, () => this.attempts.runAttempt(data, ks, inv, epoch, now, local!))
        .finally(unreserve);
      return { invocationId: req.id, status: 'Accepted', fresh: true };
    }
    unreserve();
    const deliverNow = async (completionJson: string | undefined): Promise<void> => {
      if (completionJson && req.caller) {
        await this.deliver(
          req.caller.id,
          req.caller.index,
          JSON.parse(completionJson) as Completion,
          'result',
        );
      }
    };
    if (res.tag === 'dup') {
      await deliverNow(res.completion);
      return {
        invocationId: res.id,
        status: 'PreviouslyAccepted',
        reason: res.reason,
        fresh: false,
      };
    }
    if (res.tag === 'exists') {
      await deliverNow(res.completion);
      return { invocationId: req.id, status: 'Accepted', fresh: false };
    }
    if (handoff && res.status === 'ready' && res.handed === 0) this.mailbox.unheard(handoff);
    // A delayed one is a timer: the partition's owner fires it (see duties.ts).
    if (res.status === 'ready' && res.handed === 0) await this.mailbox.dispatch(data, res.ds, 0);
    return { invocationId: req.id, status: 'Accepted', fresh: true };
  }
}
