/**
 * Deliveries: completions to waiting entries (call results, promise values, awakeables),
 * signals, outcomes owed to a notify set, and the partition outbox's effects on other partitions.
 */
import type { Completion, SerializedError } from '@latchkey/core';
import { parseAwakeableId } from '@latchkey/core/internal';
import {
  ackDeliveries,
  attachInvocation,
  deliverCompletion,
  resolveSignal,
} from './calls-admin.js';
import type { StoreContext } from './context.js';
import { partitionOfId } from './keys.js';
import type { Mailbox } from './mailbox.js';
import type { Outcomes } from './outcomes.js';
import { completionOf, type OutboxItem, type WireInvocation } from './wire.js';

/** What performing outbox effects needs of other rooms: child accepts and cancels. */
export interface OutboxServices {
  acceptChild(req: WireInvocation): Promise<unknown>;
  cancel(id: string): Promise<boolean>;
}

function notFound(id: string): Completion {
  const e: SerializedError = {
    name: 'TerminalError',
    code: 'NOT_FOUND',
    message: `invocation ${id} not found`,
    status: 404,
  };
  return { ok: false, e };
}

export class Deliveries {
  private readonly ctx: StoreContext;
  private readonly mailbox: Mailbox;
  private readonly outcomes: Outcomes;
  private readonly services: OutboxServices;

  constructor(ctx: StoreContext, mailbox: Mailbox, outcomes: Outcomes, services: OutboxServices) {
    this.ctx = ctx;
    this.mailbox = mailbox;
    this.outcomes = outcomes;
    this.services = services;
  }

  /**
   * Delivers a completion to entry `index` of an invocation, waking it when suspended: only to an
   * entry that waits for it (`want`: 'result' for a call's or attach's outcome, 'pget' for a
   * workflow promise, or an awakeable's exact id), see `deliver` in the prelude. An awakeable's
   * completion comes from a client (or a handler given its id), so it counts against the
   * invocation's cap on completions.
   */
  async deliver(
    invocationId: string,
    index: number,
    completion: Completion,
    want: string,
  ): Promise<'ok' | 'dup' | 'done' | 'gone' | 'full'> {
    const c = this.ctx;
    const p = partitionOfId(invocationId, c.opts.partitions);
    if (p === undefined) return 'gone';
    const r = await deliverCompletion(c.redis, c.keys.inv(p, invocationId), {
      id: invocationId,
      index,
      completionJson: JSON.stringify(completion),
      part: c.keys.part(p),
      graceMs: c.opts.graceMs,
      completionChannel: c.keys.completionChannel(p),
      want,
      cap: want === 'result' || want === 'pget' ? '' : c.opts.maxCompletions,
    });
    await this.mailbox.dispatchWakes(r.wakes);
    return r.tag;
  }

  /**
   * Resolves or rejects the named signal of an invocation: stored once (the first resolution
   * wins) and delivered to the entries waiting for it, now or when they come.
   */
  async resolveSignal(
    invocationId: string,
    name: string,
    completion: Completion,
  ): Promise<'ok' | 'dup' | 'done' | 'gone'> {
    const c = this.ctx;
    const p = partitionOfId(invocationId, c.opts.partitions);
    if (p === undefined) return 'gone';
    const r = await resolveSignal(c.redis, c.keys.inv(p, invocationId), {
      id: invocationId,
      name,
      completionJson: JSON.stringify(completion),
      part: c.keys.part(p),
      graceMs: c.opts.graceMs,
      completionChannel: c.keys.completionChannel(p),
    });
    await this.mailbox.dispatchWakes(r.wakes);
    return r.tag;
  }

  /** Performs one outbox effect (idempotently), then acknowledges it. */
  async performOutbox(p: number, member: string): Promise<void> {
    const item = JSON.parse(member) as OutboxItem;
    const e = item.e;
    switch (e.t) {
      case 'accept':
        await this.services.acceptChild(e.req);
        break;
      case 'awakeable': {
        const a = parseAwakeableId(e.id);
        if (a) await this.deliver(a.invocationId, a.index, e.completion, e.id);
        break;
      }
      case 'cancel':
        await this.services.cancel(e.id);
        break;
      case 'signal':
        await this.resolveSignal(e.id, e.name, e.completion);
        break;
      case 'attach': {
        const tp = partitionOfId(e.id, this.ctx.opts.partitions);
        if (tp === undefined) {
          await this.deliver(item.s, e.index, notFound(e.id), 'result');
          break;
        }
        const k = this.ctx.keys;
        const member = `${item.s}:${e.index}`;
        const r = await attachInvocation(this.ctx.redis, k.inv(tp, e.id), {
          id: e.id,
          part: k.part(tp),
          member,
        });
        if (r.tag === 'completed') {
          await this.deliver(item.s, e.index, JSON.parse(r.completion) as Completion, 'result');
        } else if (r.tag === 'gone') await this.deliver(item.s, e.index, notFound(e.id), 'result');
        break;
      }
      default:
        break;
    }
    await this.ctx.redis.zrem(this.ctx.keys.outbox(p), member);
  }

  /** Delivers a completed invocation's outcome to everyone in its notify set. */
  async deliverOutcome(invocationId: string): Promise<void> {
    const p = partitionOfId(invocationId, this.ctx.opts.partitions);
    if (p === undefined) return;
    const k = this.ctx.keys;
    const [members, outcome] = await Promise.all([
      this.ctx.redis.smembers(k.notify(p, invocationId)),
      this.outcomes.readOutcome(invocationId),
    ]);
    if (!outcome) return;
    const c = completionOf(outcome);
    for (const m of members) {
      const sep = m.lastIndexOf(':');
      await this.deliver(m.slice(0, sep), Number(m.slice(sep + 1)), c, 'result');
    }
    if (members.length > 0) {
      await ackDeliveries(
        this.ctx.redis,
        { notify: k.notify(p, invocationId), due: k.due(p) },
        invocationId,
        members,
      );
    }
  }
}
