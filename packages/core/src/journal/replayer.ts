import { DurableError, ErrorCode, ensureError } from '../errors.js';
import { matchEntry, type Completion, type Effect, type Entry } from './entry.js';
import type { Command, Completable, Interrupt, ReplayEvent, SuspendOn } from './replay-types.js';
import { ReplayState, STORE_COMPLETED, waitsOnOthers } from './replay-state.js';

export type { Life } from './replay-state.js';

/**
 * The replay rules of one attempt, as a synchronous state machine with no I/O and no clock: it
 * takes {@link ReplayEvent}s and answers {@link Command}s for a driver to carry out.
 *
 * It hands out journal indices in call order and checks replayed entries against the journal
 * (`matchEntry`), batches new entries and their effects into commits in index order, settles
 * completable entries (steps, timers, calls, awakeables, promises), applies cancellation
 * deterministically (journaled as a `signal` entry where it is observed) and decides when the
 * attempt suspends.
 */
export class Replayer extends ReplayState {
  /** Takes one event; answers what the driver must do, in order. */
  step(e: ReplayEvent): Command[] {
    this.handle(e);
    const out = this.out;
    this.out = [];
    return out;
  }

  private handle(e: ReplayEvent): void {
    switch (e.t) {
      case 'reserve':
        return this.reserve(e.kind, e.name);
      case 'fill':
        this.slots.set(e.index, { entry: e.entry, effects: e.effects });
        return this.pump();
      case 'want':
        return this.want(e.upto);
      case 'register':
        return this.register(e.index, e.kind, e.completion, e.childId);
      case 'await': {
        const c = this.completables.get(e.index);
        if (!c) return;
        c.awaited = true;
        if (c.completion === undefined) this.out.push({ c: 'check' });
        return;
      }
      case 'settle':
        return this.settle(e.index, e.completion);
      case 'completion':
        return this.deliver(e.index, e.completion);
      case 'timer':
        return this.timer(e.index, e.due, e.now);
      case 'combine':
        return this.combine(e.index, e.recorded);
      case 'combSettled':
        return this.combSettled(e.index, e.child);
      case 'combDecided':
        this.combs.delete(e.index);
        return;
      case 'cancel':
        return this.requestCancel();
      case 'step':
        this.inflight += e.running ? 1 : -1;
        return this.check();
      case 'committed':
        return this.committedBatch(e.from, e.count, e.now, e.completions);
      case 'commitFailed':
        this.flushing = false;
        this.wanted = -1;
        this.out.push({ c: 'flushFailed', error: e.error });
        return this.stop({ kind: 'failed', error: e.error });
      case 'idle':
        this.idleArmed = false;
        if (this.lifecycle === 'running' && this.isIdle()) this.suspend(Infinity);
        return;
      case 'check':
        return this.check();
      case 'stepCommitted':
        if (this.suspendAfterSteps && this.lifecycle === 'running' && this.inflight === 0) {
          this.suspend(e.now);
        }
        return;
      case 'hurry':
        this.inactivityMs = 0;
        this.disarmIdle();
        return this.check();
      case 'suspended':
        this.lifecycle = 'ended';
        this.out.push({ c: 'interrupt', interrupt: { kind: 'suspended' } });
        return;
      case 'suspendFailed':
        this.lifecycle = 'ended';
        this.out.push({ c: 'interrupt', interrupt: { kind: 'failed', error: e.error } });
        return;
      case 'resumed':
        return this.resumed(e.from, e.count, e.now, e.completions, e.cancelled);
      case 'fail':
        return this.stop({ kind: 'failed', error: ensureError(e.error) });
      case 'fenced':
        return this.stop({ kind: 'fenced' });
      case 'finish':
        if (this.lifecycle !== 'running') return;
        this.lifecycle = 'ended';
        this.idleArmed = false;
        this.out.push({ c: 'disarmAll' });
        return;
    }
  }

  /** Ends the attempt early (first interrupt wins; while suspending, once the store answered). */
  private stop(i: Interrupt): void {
    if (this.lifecycle === 'suspending') {
      this.deferred ??= i;
      return;
    }
    if (this.lifecycle === 'ended') return;
    this.lifecycle = 'ended';
    this.idleArmed = false;
    this.out.push({ c: 'disarmAll' }, { c: 'interrupt', interrupt: i });
  }

  private reserve(kind: Entry['k'], name: string | undefined): void {
    if (this.admits && !this.admits(kind)) {
      // This attempt may not create such an entry (an eager attempt only reads and writes state):
      // it stops here, before anything of the entry runs, as if it were fenced.
      this.stop({ kind: 'fenced' });
      const msg = `an eager attempt stops at its first '${kind}' entry`;
      this.out.push({ c: 'refused', error: new DurableError(msg, ErrorCode.FENCED) });
      return;
    }
    this.applyRecordedSignals();
    if (this.cancel === 'pending' && !this.replaying) this.applyCancel();
    const index = this.next++;
    const recorded = this.recorded[index];
    if (recorded === undefined) {
      this.out.unshift({ c: 'reserved', index });
      return;
    }
    try {
      matchEntry(index, recorded, kind, name);
    } catch (err) {
      this.stop({ kind: 'failed', error: ensureError(err) });
      this.out.push({ c: 'refused', error: ensureError(err) });
      return;
    }
    this.out.unshift({ c: 'reserved', index, recorded });
  }

  /**
   * A combinator. Replayed, its recorded children decide it: a recorded timer among them has
   * fired (it settles now, whatever the clock says); the others' completions are durable and
   * arrive. Live, the children's settling order is kept until the combinator decides.
   */
  private combine(index: number, recorded: number[] | undefined): void {
    if (recorded === undefined) {
      this.combs.set(index, { order: [] });
      return;
    }
    for (const i of recorded) {
      const child = this.completables.get(i);
      if (child?.kind === 'sleep' && child.completion === undefined) this.settle(i, { ok: true });
    }
    this.combs.set(index, { recorded, order: [] });
    this.decideRecorded(index, recorded);
  }

  private decideRecorded(index: number, recorded: number[]): void {
    if (recorded.some((i) => this.completables.get(i)?.completion === undefined)) return;
    this.combs.delete(index);
    this.out.push({ c: 'combined', index, order: recorded, final: true });
  }

  private combSettled(index: number, child: number): void {
    const comb = this.combs.get(index);
    if (!comb) return;
    if (comb.recorded) return this.decideRecorded(index, comb.recorded);
    if (!comb.order.includes(child)) comb.order.push(child);
    this.out.push({ c: 'combined', index, order: [...comb.order], final: false });
  }

  /** A live cancellation request: one per invocation, journaled where it is observed. */
  private requestCancel(): void {
    if (this.lifecycle !== 'running' || this.cancel !== 'none') return;
    this.cancel = 'pending';
    if (!this.replaying) this.applyCancel();
  }

  private applyCancel(): void {
    this.cancel = 'applied';
    const pending: Completable[] = [];
    for (const c of this.completables.values()) {
      if (c.completion === undefined && waitsOnOthers(c.kind)) pending.push(c);
    }
    const index = this.next++;
    const effects: Effect[] = [];
    for (const c of pending) {
      if (c.childId !== undefined) effects.push({ t: 'cancel', id: c.childId });
    }
    const v = pending.map((c) => c.index);
    this.slots.set(index, { entry: { k: 'signal', n: 'cancel', v }, effects });
    this.rejectWithCancel(v);
    this.want(index);
  }

  private committedBatch(
    from: number,
    count: number,
    now: number,
    done: Map<number, Completion>,
  ): void {
    this.flushing = false;
    this.markCommitted(from, count, now);
    for (const [i, c] of done) this.deliver(i, c);
    this.pump();
    this.out.push({ c: 'check' });
  }

  private isIdle(): boolean {
    if (this.inflight > 0 || this.flushing || this.wanted >= this.committedLen) return false;
    for (const c of this.completables.values()) {
      if (c.awaited && c.completion === undefined && waitsOnOthers(c.kind)) return true;
    }
    return false;
  }

  private disarmIdle(): void {
    if (!this.idleArmed) return;
    this.idleArmed = false;
    this.out.push({ c: 'disarmIdle' });
  }

  /** The attempt only waits on others: cancel, commit what is pending, or arm the idle timer. */
  private check(): void {
    if (this.lifecycle !== 'running') return;
    if (!this.isIdle()) return this.disarmIdle();
    if (this.cancel === 'pending' && !this.replaying) return this.applyCancel();
    // Waiting on others: commit what is pending first, so state writes and the awaited entries
    // are durable (and visible to shared handlers) while we wait. (With no inactivity timeout the
    // suspension right after commits them anyway.)
    const pending = this.inactivityMs > 0 ? this.batch().entries.length : 0;
    if (pending > 0) return this.want(this.committedLen + pending - 1);
    if (this.idleArmed) return;
    this.idleArmed = true;
    this.out.push({ c: 'armIdle', ms: this.inactivityMs });
  }

  /** Suspends until the earliest sleep is due (or `wakeAt`, to be resumed at once). */
  private suspend(wakeAt: number): void {
    const awaiting: number[] = [];
    for (const c of this.completables.values()) {
      if (c.completion !== undefined) continue;
      if (c.kind === 'sleep' && c.due !== undefined) wakeAt = Math.min(wakeAt, c.due);
      else if (waitsOnOthers(c.kind)) awaiting.push(c.index);
    }
    const on: SuspendOn = { wakeAt: Number.isFinite(wakeAt) ? wakeAt : null, awaiting };
    this.lifecycle = 'suspending';
    this.idleArmed = false;
    this.out.push({ c: 'disarmAll' }, { c: 'suspend', on });
  }

  /** The store refused the suspension (committing its entries): carry on in memory. */
  private resumed(
    from: number,
    count: number,
    now: number,
    done: Map<number, Completion>,
    cancelled: boolean,
  ): void {
    this.markCommitted(from, count, now);
    this.lifecycle = 'running';
    const interrupt = this.deferred;
    if (interrupt) return this.stop(interrupt);
    for (const c of this.completables.values()) {
      if (c.kind === 'sleep' && c.completion === undefined && c.due !== undefined) {
        this.timer(c.index, undefined, now);
      }
    }
    for (const [i, c] of done) this.completions.set(i, c);
    for (const c of [...this.completables.values()]) {
      const known = this.completions.get(c.index);
      if (c.completion === undefined && known && STORE_COMPLETED.has(c.kind)) {
        this.settle(c.index, known);
      }
    }
    if (cancelled) this.requestCancel();
    this.pump();
    this.out.push({ c: 'check' });
  }
}
