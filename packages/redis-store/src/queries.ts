/** Reads for the ingresses and the admin port: describe, progress, lookup, state (listing: `listing.ts`). */
import type { Entry, InvocationInfo, InvocationStatus } from '@latchkey/core';
import type { StoreContext } from './context.js';
import type { ArrivalOrder } from './eager.js';
import { partitionOf, partitionOfId } from './keys.js';
import { decodeProgress, queueProgress, readDescription } from './record.js';

function parseEntries(raw: string[]): Entry[] {
  return raw.map((e) => JSON.parse(e) as Entry);
}

export class Queries {
  private readonly ctx: StoreContext;
  private readonly order: ArrivalOrder;

  constructor(ctx: StoreContext, order: ArrivalOrder) {
    this.ctx = ctx;
    this.order = order;
  }

  async describe(invocationId: string, withJournal = false): Promise<InvocationInfo | undefined> {
    const p = partitionOfId(invocationId, this.ctx.opts.partitions);
    if (p === undefined) return undefined;
    const d = await readDescription(
      this.ctx.redis,
      this.ctx.keys.inv(p, invocationId),
      invocationId,
      withJournal,
    );
    if (!d) return undefined;
    const info = d.info;
    if (withJournal) {
      // A journal written whole at completion is a field of the hash ('jf'), else it is a list.
      const journalKey = this.ctx.keys.journal(p, invocationId);
      info.journal = d.journal ?? parseEntries(await this.ctx.redis.lrange(journalKey, 0, -1));
    }
    return info;
  }

  async progress(
    invocationId: string,
    fromIndex: number,
  ): Promise<{ status: InvocationStatus; entries: Entry[] } | undefined> {
    const p = partitionOfId(invocationId, this.ctx.opts.partitions);
    if (p === undefined) return undefined;
    const k = this.ctx.keys;
    const pipe = this.ctx.redis.pipeline();
    queueProgress(pipe, k.inv(p, invocationId));
    const res = await pipe.lrange(k.journal(p, invocationId), fromIndex, -1).exec();
    const { status, jf } = decodeProgress(res?.[0]?.[1]);
    if (!status) return undefined;
    // A journal written whole at completion is a field of the hash ('jf'), else it is a list.
    const entries = jf
      ? (JSON.parse(jf) as Entry[]).slice(fromIndex)
      : parseEntries((res?.[1]?.[1] as string[]) ?? []);
    return { status, entries };
  }

  async lookup(
    ref:
      | { service: string; handler: string; key?: string; idempotencyKey: string }
      | { workflow: string; key: string },
  ): Promise<string | undefined> {
    const P = this.ctx.opts.partitions;
    const k = this.ctx.keys;
    // After the accepts that reached the store before it (see ArrivalOrder).
    const turn = this.order.turn(false);
    if (turn) await turn.ready;
    let reply: Promise<string | null>;
    if ('workflow' in ref) {
      // A run's record is its key fence's field 'run'; an earlier version wrote a string key.
      const p = partitionOf(P, ref.workflow, ref.key);
      const run = this.ctx.redis.hget(k.fence(p, ref.workflow, ref.key), 'run');
      const earlier = this.ctx.redis.get(k.workflow(p, ref.workflow, ref.key));
      reply = Promise.all([run, earlier]).then(([r, e]) => r ?? e);
    } else {
      const p =
        ref.key !== undefined
          ? partitionOf(P, ref.service, ref.key)
          : partitionOf(P, ref.service, ref.handler, ref.idempotencyKey);
      reply = this.ctx.redis.get(
        k.idempotency(p, ref.service, ref.key ?? '', ref.handler, ref.idempotencyKey),
      );
    }
    turn?.issued();
    return (await reply) ?? undefined;
  }

  async getState(service: string, key: string): Promise<Map<string, string>> {
    const p = partitionOf(this.ctx.opts.partitions, service, key);
    return new Map(
      Object.entries(await this.ctx.redis.hgetall(this.ctx.keys.state(p, service, key))),
    );
  }
}
