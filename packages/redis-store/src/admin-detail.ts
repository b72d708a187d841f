/**
 * The admin API's view of one invocation (`inspect`: journal with per-entry times, completions,
 * timestamps, parent, last failure) and `restartAsNew`, a completed invocation started again.
 */
import type { InvocationDetail, RestartOptions, RestartResult } from '@latchkey/core';
import { prefixProblem } from '@latchkey/core/internal';
import { restartInvocation } from './calls-admin.js';
import type { StoreContext } from './context.js';
import { newInvocationId, partitionOfId } from './keys.js';
import type { Mailbox } from './mailbox.js';
import { decodeDetail, readDetailRaw } from './record.js';
import { randomId, seedOf } from './wire.js';

export class AdminDetail {
  private readonly ctx: StoreContext;
  private readonly mailbox: Mailbox;

  constructor(ctx: StoreContext, mailbox: Mailbox) {
    this.ctx = ctx;
    this.mailbox = mailbox;
  }

  async inspect(id: string): Promise<InvocationDetail | undefined> {
    const p = partitionOfId(id, this.ctx.opts.partitions);
    if (p === undefined) return undefined;
    const k = this.ctx.keys;
    const raw = await readDetailRaw(this.ctx.redis, {
      inv: k.inv(p, id),
      journal: k.journal(p, id),
      completions: k.completions(p, id),
    });
    return decodeDetail(id, raw);
  }

  async restartAsNew(id: string, options: RestartOptions = {}): Promise<RestartResult> {
    const p = partitionOfId(id, this.ctx.opts.partitions);
    const old = p === undefined ? undefined : await this.inspect(id);
    if (p === undefined || !old)
      return { ok: false, reason: 'gone', message: `no invocation ${id}` };
    const refused = refusal(old, options.keepPrefix ?? 0);
    if (refused) return refused;
    const n = options.keepPrefix ?? 0;
    const completions: [number, string][] = [];
    for (const [i, c] of old.completions) if (i < n) completions.push([i, JSON.stringify(c)]);
    // A new id in the old one's partition (the script touches both), and a new seed.
    const random = randomId();
    const newId = newInvocationId(p, random.subarray(1, 23));
    const k = this.ctx.keys;
    const r = await restartInvocation(
      this.ctx.redis,
      {
        oldInv: k.inv(p, id),
        inv: k.inv(p, newId),
        journal: k.journal(p, newId),
        completions: k.completions(p, newId),
        due: k.due(p),
      },
      {
        oldId: id,
        id: newId,
        seed: seedOf(random),
        graceMs: this.ctx.opts.graceMs,
        entries: old.journal.slice(0, n).map((e) => JSON.stringify(e)),
        completions,
      },
    );
    switch (r.tag) {
      case 'ok': {
        const t = old.target;
        const data = { i: newId, s: t.service, k: t.key ?? '', m: old.mode };
        await this.mailbox.dispatch(data, r.ds, 0);
        return { ok: true, invocationId: newId };
      }
      case 'running':
        return { ok: false, reason: 'not-completed', message: notCompleted(id, r.status) };
      case 'workflow':
        return { ok: false, reason: 'workflow', message: workflowRun(id) };
      default:
        return { ok: false, reason: 'gone', message: `no invocation ${id}` };
    }
  }
}

/** Why an invocation cannot be restarted with `n` entries kept (shared checks, before the script). */
function refusal(old: InvocationDetail, n: number): RestartResult | undefined {
  if (old.status !== 'completed') {
    return { ok: false, reason: 'not-completed', message: notCompleted(old.id, old.status) };
  }
  if (old.mode === 'workflow')
    return { ok: false, reason: 'workflow', message: workflowRun(old.id) };
  const problem = prefixProblem(old.journal, old.completions, n);
  return problem ? { ok: false, reason: 'prefix', message: problem } : undefined;
}

function notCompleted(id: string, status: string): string {
  return `invocation ${id} is ${status}: only a completed invocation can be restarted`;
}

function workflowRun(id: string): string {
  return `invocation ${id} is a workflow run, which runs once per workflow id: purge it and submit the workflow again`;
}
