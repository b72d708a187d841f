/**
 * Accepting invocations: ids and partitions, the accept script (with the local fast path's first
 * lease and eager completion), delegated accepts (both sides), duplicates and retried accepts,
 * and child accepts from the outbox.
 */
import type { Accepted, Completion, InvocationRequest, Outcome, StopSignal } from '@latchkey/core';
import { cancelToken } from '@latchkey/core/internal';
import type { Attempts } from './attempts.js';
import { acceptInvocation } from './calls.js';
import type { StoreContext } from './context.js';
import { Delegations, type DelegatedAccept } from './delegate.js';
import { ArrivalOrder, eagerArgs, type EagerRun, type StateCache } from './eager.js';
import { EagerRuns } from './eager-runs.js';
import { StoreError } from './errors.js';
import { startJson } from './handoff.js';
import { partitionFor } from './ids.js';
import { newInvocationId, partitionOfId, scriptKeys } from './keys.js';
import type { Mailbox } from './mailbox.js';
import type { Outcomes } from './outcomes.js';
import {
  DAY_MS,
  applyOps,
  freshInvocation,
  randomId,
  retentionArg,
  seedOf,
  type JobData,
  type WireInvocation,
} from './wire.js';

type Deliver = (
  invocationId: string,
  index: number,
  completion: Completion,
  want: string,
) => Promise<unknown>;

/** How `acceptWithId` runs the accept script beyond the request itself. */
export interface AcceptOptions {
  /** This process waits for the outcome: the script registers its outcome channel. */
  watch?: boolean;
  /** An eager run to complete the invocation with (see `eager.ts`). */
  eager?: EagerRun | undefined;
  /** Called once the script is handed to the connection (see `ArrivalOrder`). */
  issued?: (() => void) | undefined;
  /** The invocation's partition, when the caller knows it. */
  partition?: number;
  /** The invocation's random seed (drawn here when not given). */
  seed?: string;
  /**
   * A delegated accept (see `delegate.ts`): the delegating process's outcome channel, and the
   * note it gets unless the script completes the call (see `AcceptCall.delegated`).
   */
  replyTo?: { channel: string; note: '+' | '=' };
}

export class Acceptor {
  private readonly ctx: StoreContext;
  private readonly mailbox: Mailbox;
  private readonly outcomes: Outcomes;
  private readonly attempts: Attempts;
  private readonly deliver: Deliver;
  private readonly eagerRuns: EagerRuns;
  /** Keeps accepts and lookups in arrival order around eager runs. */
  readonly order = new ArrivalOrder();
  /** This process's delegated accepts (see `delegate.ts`); told of their notes by `Outcomes`. */
  readonly delegations: Delegations;

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
    this.deliver = parts.deliver;
    this.eagerRuns = new EagerRuns(ctx, parts.mailbox, parts.stateCache);
    this.delegations = new Delegations(ctx, parts.mailbox, this.eagerRuns.misses, this.order);
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
    // A call this process cannot run at once: a worker of another process may accept it.
    const delegation = wait ? this.delegations.delegate(out, partition, seed) : undefined;
    const delegated = delegation ? await delegation : 'none';
    const heard = delegated === 'done' || delegated === 'accepted';
    const prepared = heard ? undefined : this.eagerRuns.prepare(out, seed);
    const turn = heard ? undefined : this.order.turn(prepared !== undefined);
    let eager: EagerRun | undefined;
    let accepted: Accepted & { fresh: boolean };
    try {
      if (heard) {
        accepted = { invocationId: id, status: 'Accepted', fresh: true };
      } else {
        if (prepared) eager = await this.eagerRuns.run(prepared);
        if (eager) this.ctx.opts.hooks?.beforeEagerAccept?.({ invocationId: id, service, handler });
        if (turn) await turn.ready;
        accepted = await this.acceptWithId(out, {
          watch: wait !== undefined,
          eager,
          issued: turn?.issued,
          partition,
          seed,
        });
      }
    } catch (e) {
      turn?.issued();
      eager?.attempt.refuse();
      wait?.waiter.drop();
      throw e;
    }
    // After a delegation that timed out, an existing invocation of this id is the worker's accept
    // of this very call (the id is this call's own draw).
    const fresh = accepted.fresh || (delegated === 'lost' && accepted.invocationId === id);
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
    // A retried accept, or one a worker accepted after this process stopped waiting for its
    // note: it may have run already.
    if (!accepted.fresh) this.outcomes.checkNow(id, wait.waiter);
    // Not spread: that would read (and derive) the cancel token.
    result.outcome = wait.promise;
    return result;
  }

  /**
   * Takes a call another process delegated to this worker (see `delegate.ts`): accepted here,
   * after an eager run when a slot is free, telling the delegating process on its outcome
   * channel. A failure leaves the call to the delegating process, which accepts it itself once
   * its wait for the note ends.
   */
  takeDelegated(d: DelegatedAccept): void {
    const { id, service, handler } = d.req;
    const local = this.mailbox.freeLocal() !== undefined;
    this.ctx.opts.hooks?.afterHandoff?.({ invocationId: id, service, local });
    // Without a free slot the handler is not tried: no sign that it would stop short.
    const replyTo = { channel: d.channel, note: local ? '+' : '=' } as const;
    const prepared = this.eagerRuns.prepare(d.req, d.seed);
    void (prepared ? this.eagerRuns.run(prepared) : Promise.resolve(undefined))
      .then(async (eager) => {
        if (eager) this.ctx.opts.hooks?.beforeEagerAccept?.({ invocationId: id, service, handler });
        try {
          await this.acceptWithId(d.req, { eager, seed: d.seed, replyTo });
        } catch (e) {
          // Not accepted here: the handler's complete() fails, as for any refused eager run.
          eager?.attempt.refuse();
          throw e;
        }
      })
      .catch((e: unknown) => {
        if (!this.ctx.life.closed)
          this.ctx.logger.warn(`[latchkey] a delegated accept failed: ${String(e)}`);
      });
  }

  /**
   * Runs the accept script for an invocation with a chosen id (a handler's child: from the
   * outbox); `fresh` when this call created it. With a free local worker slot the same script
   * also starts the attempt when the invocation is ready at once, saving the start script's
   * round trip (see `Mailbox.dispatch` for the fast path).
   */
  async acceptWithId(
    req: WireInvocation,
    o: AcceptOptions = {},
  ): Promise<Accepted & { fresh: boolean }> {
    const { eager, issued, partition, replyTo } = o;
    const seed = o.seed ?? seedOf(randomId());
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
        outcomeChannel: replyTo?.channel ?? (o.watch ? c.outcomeChannel(p) : ''),
        delegated: replyTo?.note,
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
      const inv = freshInvocation(
        {
          ...req,
          key: keyed ? req.key : undefined,
          headers: req.headers ?? {},
          seed,
          trace: req.trace,
        },
        res.now,
        res.state,
      );
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
