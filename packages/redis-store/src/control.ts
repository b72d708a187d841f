/**
 * Control of invocations from outside: cancel, kill, pause, resume, purge, awakeable
 * resolutions, and admin state patches.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Completion, Entry, SerializedError, TargetMode } from '@latchkey/core';
import { cancelToken, parseAwakeableId } from '@latchkey/core/internal';
import {
  controlInvocation,
  patchState,
  purgeInvocation,
  terminateInvocation,
  type ControlKeys,
} from './calls-admin.js';
import type { StoreContext } from './context.js';
import type { Deliveries } from './deliveries.js';
import { partitionOf, partitionOfId } from './keys.js';
import type { Mailbox } from './mailbox.js';
import { readSeed, readTarget } from './record.js';

const KILLED: SerializedError = {
  name: 'TerminalError',
  code: 'KILLED',
  message: 'the invocation was killed',
  status: 409,
};
const CANCELLED: SerializedError = {
  name: 'CancelledError',
  code: 'CANCELLED',
  message: 'Cancelled',
  status: 409,
};

/** An invocation's control keys and target. */
interface Controlled extends ControlKeys {
  p: number;
  svc: string;
  key: string;
  mode: TargetMode;
}

export class Control {
  private readonly ctx: StoreContext;
  private readonly mailbox: Mailbox;
  private readonly deliveries: Deliveries;

  constructor(ctx: StoreContext, mailbox: Mailbox, deliveries: Deliveries) {
    this.ctx = ctx;
    this.mailbox = mailbox;
    this.deliveries = deliveries;
  }

  async resolveAwakeable(
    awakeableId: string,
    completion: Completion,
  ): Promise<'ok' | 'refused' | 'full'> {
    const a = parseAwakeableId(awakeableId);
    if (!a) return 'refused';
    const r = await this.deliveries.deliver(a.invocationId, a.index, completion, awakeableId);
    return r === 'ok' || r === 'full' ? r : 'refused';
  }

  /** KEYS of the terminate/control scripts for an invocation (reads its target first). */
  private async controlKeys(id: string): Promise<Controlled | undefined> {
    const p = partitionOfId(id, this.ctx.opts.partitions);
    if (p === undefined) return undefined;
    const k = this.ctx.keys;
    const t = await readTarget(this.ctx.redis, k.inv(p, id));
    if (!t) return undefined;
    const exclusive = t.mode === 'exclusive' || t.mode === 'workflow';
    return {
      p,
      inv: k.inv(p, id),
      inbox: exclusive ? k.inbox(p, t.service, t.key) : undefined,
      fence: exclusive ? k.fence(p, t.service, t.key) : k.inv(p, id),
      due: k.due(p),
      svc: t.service,
      key: t.key,
      mode: t.mode,
    };
  }

  private async terminate(id: string, kind: 'kill' | 'cancel'): Promise<boolean> {
    const c = await this.controlKeys(id);
    if (!c) return false;
    const k = this.ctx.keys;
    const r = await terminateInvocation(this.ctx.redis, c, {
      id,
      kind,
      part: k.part(c.p),
      graceMs: this.ctx.opts.graceMs,
      completionChannel: k.completionChannel(c.p),
      failureJson: JSON.stringify(kind === 'kill' ? KILLED : CANCELLED),
      workflowState: c.mode === 'workflow' ? k.state(c.p, c.svc, c.key) : '',
    });
    switch (r.tag) {
      case 'wake':
        await this.mailbox.dispatchWakes(r.wakes);
        return true;
      case 'signalled':
        return true;
      case 'terminated': {
        if (r.nextId !== '')
          await this.mailbox.dispatch({ i: r.nextId, s: c.svc, k: c.key, m: c.mode }, r.nextDs, 0);
        if (r.notify) await this.deliveries.deliverOutcome(id).catch(() => undefined);
        if (kind === 'kill') await this.killChildren(id, c.p);
        return true;
      }
      default:
        return false;
    }
  }

  /** Kills the children an invocation was still waiting for (its call tree). */
  private async killChildren(id: string, p: number): Promise<void> {
    const [journal, comps] = await Promise.all([
      this.ctx.redis.lrange(this.ctx.keys.journal(p, id), 0, -1),
      this.ctx.redis.hgetall(this.ctx.keys.completions(p, id)),
    ]);
    for (const [i, raw] of journal.entries()) {
      const e = JSON.parse(raw) as Entry;
      if (e.k === 'call' && comps[String(i)] === undefined) await this.kill(e.id);
    }
  }

  async cancel(invocationId: string, options: { token?: string } = {}): Promise<boolean> {
    if (options.token !== undefined && !(await this.tokenMatches(invocationId, options.token)))
      return false;
    return this.terminate(invocationId, 'cancel');
  }

  /** Whether `token` is the invocation's cancel token (derived from its seed; see `Accepted.cancelToken`). */
  private async tokenMatches(invocationId: string, token: string): Promise<boolean> {
    const p = partitionOfId(invocationId, this.ctx.opts.partitions);
    if (p === undefined) return false;
    const seed = await readSeed(this.ctx.redis, this.ctx.keys.inv(p, invocationId));
    if (!seed) return false;
    const want = Buffer.from(cancelToken(seed));
    const got = Buffer.from(token);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  kill(invocationId: string): Promise<boolean> {
    return this.terminate(invocationId, 'kill');
  }

  /** Pauses or resumes an invocation. */
  async control(id: string, kind: 'pause' | 'resume'): Promise<boolean> {
    const c = await this.controlKeys(id);
    if (!c) return false;
    const k = this.ctx.keys;
    const r = await controlInvocation(this.ctx.redis, c, {
      id,
      kind,
      graceMs: this.ctx.opts.graceMs,
      part: k.part(c.p),
      completionChannel: k.completionChannel(c.p),
    });
    if (r.tag === 'wake') await this.mailbox.dispatchWakes(r.wakes);
    return r.tag === 'wake' || r.tag === 'paused';
  }

  async purge(invocationId: string): Promise<boolean> {
    const c = await this.controlKeys(invocationId);
    if (!c) return false;
    const k = this.ctx.keys;
    const workflow = c.mode === 'workflow';
    const r = await purgeInvocation(this.ctx.redis, c.inv, {
      id: invocationId,
      part: k.part(c.p),
      workflowState: workflow ? k.state(c.p, c.svc, c.key) : '',
      workflowFence: workflow ? k.fence(c.p, c.svc, c.key) : '',
    });
    return r.tag === 'purged';
  }

  async patchState(service: string, key: string, patch: Record<string, unknown>): Promise<boolean> {
    const p = partitionOf(this.ctx.opts.partitions, service, key);
    const k = this.ctx.keys;
    const r = await patchState(
      this.ctx.redis,
      {
        state: k.state(p, service, key),
        fence: k.fence(p, service, key),
        keyIndex: k.ixKeys(p, service),
      },
      key,
      patch,
    );
    return r.tag === 'ok';
  }
}
