/**
 * The in-memory store's rules: accept and dedupe, the keys' inboxes, the ready queue and timers,
 * completions and the ends of invocations. One process, no persistence: a test double that keeps
 * the same guarantees as the Redis store where the contract states them (see `storeContract`),
 * written for clarity rather than speed.
 */
import { randomBytes } from 'node:crypto';
import { deriveSecret } from '../../context/secrets.js';
import type { Completion } from '../../journal/entry.js';
import type {
  Accepted,
  InvocationRequest,
  InvocationStatus,
  Outcome,
} from '../../store/invocation.js';
import {
  CANCELLED,
  KILLED,
  completionOf,
  isKeyed,
  setStatus,
  stored,
  type KeySlot,
  type Rec,
} from './records.js';
import { MemoryEvents } from './events.js';

export class Engine {
  readonly recs = new Map<string, Rec>();
  private readonly slots = new Map<string, KeySlot>();
  /** Idempotency and workflow records: name → invocation id. */
  readonly records = new Map<string, string>();
  readonly waiters = new Map<string, Set<(o: Outcome) => void>>();
  private readonly ready: string[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Live events (status changes, journal commits). */
  readonly events = new MemoryEvents();
  /** Called when an invocation became ready (the workers take it). */
  onReady: () => void = () => undefined;

  newId(): string {
    return `inv_${randomBytes(13).toString('hex')}`;
  }

  newSeed(): string {
    return randomBytes(16).toString('base64url');
  }

  /** A child's id: derived from the parent's secret seed, the same on every replay. */
  childId(seed: string, index: number): string {
    return `inv_${deriveSecret(seed, `child:${index}`).subarray(0, 13).toString('hex')}`;
  }

  slot(service: string, key: string): KeySlot {
    const name = `${service}\u0000${key}`;
    let s = this.slots.get(name);
    if (!s) {
      s = { state: new Map(), inbox: [], promises: new Map(), promiseWaiters: new Map() };
      this.slots.set(name, s);
    }
    return s;
  }

  /** The keys of a service that have a slot, with their slots. */
  slotsOf(service: string): [string, KeySlot][] {
    const prefix = `${service}\u0000`;
    const out: [string, KeySlot][] = [];
    for (const [name, s] of this.slots) {
      if (name.startsWith(prefix)) out.push([name.slice(prefix.length), s]);
    }
    return out;
  }

  dropSlot(service: string, key: string): void {
    this.slots.delete(`${service}\u0000${key}`);
  }

  /** Runs `fn` after `ms` (timers are dropped by {@link close}). */
  at(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        fn();
      },
      Math.min(Math.max(0, ms), 2 ** 31 - 1),
    );
    this.timers.add(t);
    return t;
  }

  clearTimer(rec: Rec): void {
    if (rec.timer === undefined) return;
    clearTimeout(rec.timer);
    this.timers.delete(rec.timer);
    delete rec.timer;
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // ------------------------------------------------------------------ accept and dispatch

  /**
   * Accepts an invocation with a chosen id and seed, deduping by id (a child accepted again),
   * idempotency key and workflow id; registers `req.caller` for the outcome.
   */
  accept(req: InvocationRequest, id: string, seed: string): Accepted & { fresh: boolean } {
    const t = req.target;
    if (this.recs.has(id)) {
      this.latch(id, req.caller);
      return { invocationId: id, status: 'Accepted', fresh: false };
    }
    const idem =
      req.idempotencyKey !== undefined && req.idempotencyKey !== ''
        ? `idem\u0000${t.service}\u0000${t.key ?? ''}\u0000${t.handler}\u0000${req.idempotencyKey}`
        : undefined;
    const prevIdem = idem !== undefined ? this.records.get(idem) : undefined;
    if (prevIdem !== undefined) {
      this.latch(prevIdem, req.caller);
      const r = 'idempotency' as const;
      return { invocationId: prevIdem, status: 'PreviouslyAccepted', reason: r, fresh: false };
    }
    const wf = req.mode === 'workflow' ? `wf\u0000${t.service}\u0000${t.key ?? ''}` : undefined;
    const prevRun = wf !== undefined ? this.records.get(wf) : undefined;
    if (prevRun !== undefined) {
      if (idem !== undefined) this.records.set(idem, prevRun);
      this.latch(prevRun, req.caller);
      const r = 'workflow' as const;
      return { invocationId: prevRun, status: 'PreviouslyAccepted', reason: r, fresh: false };
    }
    const now = Date.now();
    const rec: Rec = {
      id,
      target: { ...t },
      mode: req.mode,
      input: req.input,
      headers: { ...req.headers },
      seed,
      ...(req.trace !== undefined ? { trace: req.trace } : {}),
      createdAt: now,
      modifiedAt: now,
      ...(req.idempotencyKey !== undefined && req.idempotencyKey !== ''
        ? { idempotencyKey: req.idempotencyKey }
        : {}),
      status: 'ready',
      failures: 0,
      started: false,
      epoch: 0,
      journal: [],
      completions: new Map(),
      signals: new Map(),
      signalWaiters: new Map(),
      cancelRequested: false,
      callers: req.caller ? [{ ...req.caller }] : [],
      records: [],
      seen: { times: [] },
    };
    const parent = req.parent ?? req.caller;
    if (parent) rec.seen.invokedBy = { id: parent.id, index: parent.index };
    if (req.idempotencyKey) rec.seen.idempotencyKey = req.idempotencyKey;
    for (const name of [idem, wf]) {
      if (name === undefined) continue;
      this.records.set(name, id);
      rec.records.push(name);
    }
    this.recs.set(id, rec);
    const delay = Math.max(0, req.delayMs ?? 0);
    if (delay > 0) {
      setStatus(rec, 'delayed');
      rec.timer = this.at(delay, () => {
        delete rec.timer;
        if (rec.status === 'delayed') this.enqueue(rec);
      });
    } else {
      this.enqueue(rec);
    }
    this.events.track(rec);
    return { invocationId: id, status: 'Accepted', fresh: true };
  }

  /** Registers a caller on an invocation; a completed one completes it at once. */
  latch(id: string, caller: { id: string; index: number } | undefined): void {
    const rec = this.recs.get(id);
    if (!caller || !rec) return;
    if (rec.outcome) this.deliver(caller.id, caller.index, completionOf(rec.outcome), 'result');
    else rec.callers.push({ ...caller });
  }

  /** An accepted invocation whose delay passed: it queues behind its key, or is ready. */
  private enqueue(rec: Rec): void {
    if (!isKeyed(rec.mode)) return this.makeReady(rec);
    const inbox = this.slot(rec.target.service, rec.target.key ?? '').inbox;
    inbox.push(rec.id);
    if (inbox[0] === rec.id) this.makeReady(rec);
    else setStatus(rec, 'queued');
  }

  makeReady(rec: Rec): void {
    this.clearTimer(rec);
    setStatus(rec, 'ready');
    this.ready.push(rec.id);
    this.onReady();
  }

  /** The next ready invocation for a worker. */
  takeReady(): Rec | undefined {
    for (;;) {
      const id = this.ready.shift();
      if (id === undefined) return undefined;
      const rec = this.recs.get(id);
      if (rec?.status === 'ready' && !this.ready.includes(id)) return rec;
    }
  }

  /** Makes an invocation ready when it is in one of `states`; true if it did. */
  wake(rec: Rec, states: readonly InvocationStatus[]): boolean {
    if (!states.includes(rec.status)) return false;
    this.makeReady(rec);
    return true;
  }

  /** Wakes `rec` after `ms` if it is still in `status`. */
  wakeLater(rec: Rec, ms: number, status: InvocationStatus): void {
    this.clearTimer(rec);
    rec.timer = this.at(ms, () => {
      delete rec.timer;
      this.wake(rec, [status]);
    });
  }

  // ------------------------------------------------------------------ journal and completions

  /**
   * Stores a completion once, only on the entry that waits for it (`want`: 'result' for a call or
   * attach, 'pget', 'signal:<name>' or the awakeable's id), and wakes or tells the invocation.
   */
  deliver(id: string, index: number, c: Completion, want: string): 'ok' | 'dup' | 'done' | 'gone' {
    const rec = this.recs.get(id);
    if (!rec) return 'gone';
    if (rec.status === 'completed') return 'done';
    const e = rec.journal[index];
    if (!e) return 'gone';
    const fits =
      want === 'result'
        ? e.k === 'call' || e.k === 'attach'
        : want === 'pget'
          ? e.k === 'pget'
          : want.startsWith('signal:')
            ? e.k === 'sig' && e.n === want.slice(7)
            : e.k === 'awk' && e.id === want;
    if (!fits) return 'gone';
    if (rec.completions.has(index)) return 'dup';
    const copy = stored(c);
    rec.completions.set(index, copy);
    (rec.seen.times[index] ??= {}).completedAt = Date.now();
    if (!this.wake(rec, ['suspended']) && rec.status === 'running') {
      rec.listener?.completion(index, copy);
    }
    return 'ok';
  }

  resolveSignal(id: string, name: string, c: Completion): 'ok' | 'dup' | 'done' | 'gone' {
    const rec = this.recs.get(id);
    if (!rec) return 'gone';
    if (rec.status === 'completed') return 'done';
    if (rec.signals.has(name)) return 'dup';
    rec.signals.set(name, stored(c));
    const ws = rec.signalWaiters.get(name) ?? [];
    rec.signalWaiters.delete(name);
    for (const index of ws) this.deliver(id, index, c, `signal:${name}`);
    return 'ok';
  }

  // ------------------------------------------------------------------ ends

  /** Completes an invocation: frees its key, readies the next one, tells who waits. */
  complete(rec: Rec, outcome: Outcome): void {
    this.clearTimer(rec);
    rec.epoch++;
    setStatus(rec, 'completed');
    rec.outcome = stored(outcome);
    rec.seen.completedAt = Date.now();
    delete rec.listener;
    rec.stop?.();
    delete rec.stop;
    if (isKeyed(rec.mode)) {
      const inbox = this.slot(rec.target.service, rec.target.key ?? '').inbox;
      const at = inbox.indexOf(rec.id);
      if (at >= 0) inbox.splice(at, 1);
      const next = at === 0 ? this.recs.get(inbox[0] ?? '') : undefined;
      if (next?.status === 'queued') this.makeReady(next);
    }
    const c = completionOf(rec.outcome);
    for (const w of rec.callers.splice(0)) this.deliver(w.id, w.index, c, 'result');
    const ws = this.waiters.get(rec.id);
    this.waiters.delete(rec.id);
    for (const w of ws ?? []) w(rec.outcome);
  }

  /**
   * Kill, or cancel. Cancel of a started invocation asks its handler (which journals the
   * cancellation and runs its compensations); else it ends the invocation with a 409 failure,
   * and kill also kills the calls it still waits for.
   */
  terminate(id: string, kind: 'kill' | 'cancel'): boolean {
    const rec = this.recs.get(id);
    if (!rec || rec.status === 'completed') return false;
    if (kind === 'cancel' && rec.started) {
      if (rec.cancelRequested) return true;
      rec.cancelRequested = true;
      if (rec.status === 'running') rec.listener?.cancel();
      else this.wake(rec, ['suspended', 'backing-off', 'paused']);
      return true;
    }
    this.complete(rec, { ok: false, error: kind === 'kill' ? KILLED : CANCELLED });
    if (kind === 'kill') {
      rec.journal.forEach((e, i) => {
        if (e.k === 'call' && !rec.completions.has(i)) this.terminate(e.id, 'kill');
      });
    }
    return true;
  }
}
