/**
 * Delegated accepts: a process without a free worker slot of its own (an ingress-only process,
 * above all) that takes a call to a service handler does not accept it itself. It picks a live
 * worker of another process (see `handoff.ts`) and publishes the call to it (`A…` on the worker's
 * hand-off channel of the invocation's partition), with the id and seed it chose. The worker runs
 * the handler eagerly (see `eager.ts`) and sends one accept script that completes it and publishes
 * the outcome to the delegating process's outcome channel; when the run stops short (a step, a
 * call, a sleep...) the script accepts it the ordinary way, leases it to that worker, and tells
 * the delegating process `<id>\n+` (accepted; the outcome follows as a watcher's). A worker
 * without a free slot accepts the call without trying it and says `<id>\n=`: that is no sign
 * that the handler stops short, so it does not count towards `EagerMisses` (a saturated worker
 * tier must not turn delegation off). One script in all instead of two (accept, complete), and
 * no message between them.
 *
 * Nothing is acknowledged before an accept script ran, so crash safety is the eager run's: a
 * worker that dies with the message has accepted nothing. The delegating process waits at most
 * `delegateTimeoutMs` for the note, then accepts the call itself with the same id: whichever
 * accept comes second answers `exists`, and the worker's eager result is then dropped (its
 * handler runs again the ordinary way). So a lost message or a dead worker costs time only.
 */
import type { StoreContext } from './context.js';
import type { ArrivalOrder } from './eager.js';
import type { EagerMisses } from './eager-runs.js';
import type { Mailbox } from './mailbox.js';
import type { WireInvocation } from './wire.js';

/** The most input a call may carry to be delegated (one hand-off message). */
const DELEGATE_MAX_BYTES = 65_536;

/** A call a delegating process asks a worker to accept (see the module's comment). */
export interface DelegatedAccept {
  req: WireInvocation;
  /** The invocation's random seed (`rs`), chosen with its id. */
  seed: string;
  /** The delegating process's outcome channel of the invocation's partition. */
  channel: string;
}

/**
 * What the delegating process heard: `done` (completed eagerly), `accepted` (its eager run stopped
 * short), `busy` (accepted without trying one: no free slot), or nothing.
 */
export type DelegationNote = 'done' | 'accepted' | 'busy' | undefined;

/** The hand-off message of a delegated accept: `A<JSON>\n<input>`. */
export function delegationMessage(d: DelegatedAccept): string {
  const { input, ...rest } = d.req;
  return `A${JSON.stringify({ ...rest, rs: d.seed, oc: d.channel })}\n${input}`;
}

/** Decodes a delegation message (see {@link delegationMessage}), or undefined. */
export function decodeDelegation(msg: string): DelegatedAccept | undefined {
  const nl = msg.indexOf('\n');
  if (msg[0] !== 'A' || nl < 0) return undefined;
  const j = JSON.parse(msg.slice(1, nl)) as Omit<WireInvocation, 'input'> & {
    rs: string;
    oc: string;
  };
  const { rs, oc, ...req } = j;
  if (typeof req.id !== 'string' || typeof rs !== 'string' || typeof oc !== 'string')
    return undefined;
  return { req: { ...req, input: msg.slice(nl + 1) }, seed: rs, channel: oc };
}

/** The delegating side: which calls to delegate, and those waiting for their note. */
export class Delegations {
  private readonly ctx: StoreContext;
  private readonly mailbox: Mailbox;
  private readonly misses: EagerMisses;
  private readonly order: ArrivalOrder;
  /** Delegated accepts waiting for their note, by invocation id. */
  private readonly pending = new Map<string, (note: DelegationNote) => void>();

  constructor(ctx: StoreContext, mailbox: Mailbox, misses: EagerMisses, order: ArrivalOrder) {
    this.ctx = ctx;
    this.mailbox = mailbox;
    this.misses = misses;
    this.order = order;
  }

  /**
   * Delegates the accept of a call (see `delegate.ts`) when this process has no free slot to run
   * it in and a worker of another process may run it eagerly: a service handler not known to stop
   * short, no idempotency key or delay, at most 64 KiB, `durability: 'primary'`. Undefined, at
   * once, when it does not (so the caller's accept keeps its place in `ArrivalOrder`); else `lost`
   * when nothing was heard in time (the caller then accepts it itself, with the same id).
   */
  delegate(
    req: WireInvocation,
    p: number,
    seed: string,
  ): Promise<'lost' | 'done' | 'accepted'> | undefined {
    const o = this.ctx.opts;
    if (
      !o.delegateAccepts ||
      !o.eagerCompletion ||
      this.ctx.replication ||
      req.mode !== 'service' ||
      req.idempotencyKey !== undefined ||
      (req.delayMs ?? 0) > 0 ||
      this.mailbox.freeLocal() ||
      req.input.length > DELEGATE_MAX_BYTES
    )
      return undefined;
    const handlerKey = `${req.service}/${req.handler}`;
    if (!this.misses.tryNow(handlerKey)) return undefined;
    return this.send(req, p, seed, handlerKey);
  }

  /** Sends a delegated accept and waits for its note (see {@link delegate}). */
  private async send(
    req: WireInvocation,
    p: number,
    seed: string,
    handlerKey: string,
  ): Promise<'lost' | 'done' | 'accepted'> {
    // Accepts and lookups issued before stay before it (see ArrivalOrder).
    const turn = this.order.turn(false);
    const note = await this.wait(req.id, async () => {
      try {
        if (turn) await turn.ready;
        // The message is handed to the connection in this call, before its first await.
        return this.mailbox.delegate(p, { req, seed, channel: this.ctx.outcomeChannel(p) });
      } finally {
        turn?.issued();
      }
    });
    if (note === 'done') this.misses.hit(handlerKey);
    else if (note === 'accepted') this.misses.missed(handlerKey);
    return note === undefined ? 'lost' : note === 'busy' ? 'accepted' : note;
  }

  /**
   * Publishes a delegated accept (`publish` answers whether a worker heard it) and waits for its
   * note on this process's outcome channel, at most `delegateTimeoutMs`. Undefined: nobody heard
   * it, publishing failed, or no note came in time.
   */
  private async wait(id: string, publish: () => Promise<boolean>): Promise<DelegationNote> {
    let timer: NodeJS.Timeout | undefined;
    // Listening before the message goes: its note may arrive before the publish's reply.
    const noted = new Promise<DelegationNote>((resolve) => {
      this.pending.set(id, resolve);
      timer = setTimeout(() => resolve(undefined), this.ctx.opts.delegateTimeoutMs);
      // A closing process does not wait for it (its caller's request holds the loop open anyway).
      timer.unref();
    });
    try {
      if (!(await publish().catch(() => false))) return undefined;
      return await noted;
    } finally {
      clearTimeout(timer);
      this.pending.delete(id);
    }
  }

  /**
   * A message on this process's outcome channel about invocation `id`: an outcome (`note` '') or
   * a delegated accept's note (see the module's comment).
   */
  note(id: string, note: string): void {
    this.pending.get(id)?.(note === '' ? 'done' : note === '=' ? 'busy' : 'accepted');
  }
}
