/**
 * The in-memory store's data and rules: invocation records, keys (state, inbox, workflow
 * promises), dedupe records, completions and the ready queue. One process, no persistence: a
 * test double that keeps the same guarantees as the Redis store where the contract states them
 * (see `storeContract`), written for clarity rather than speed.
 */
import { randomBytes } from 'node:crypto';
import { deriveSecret, parseAwakeableId } from '../../context/secrets.js';
import type { SerializedError } from '../../errors.js';
import type { Completion, Effect, Entry, NewEntry, StateOp } from '../../journal/entry.js';
import type { AttemptListener } from '../../store/attempt.js';
import type {
  Accepted,
  InvocationRequest,
  InvocationStatus,
  Outcome,
  Target,
  TargetMode,
} from '../../store/invocation.js';

/** One invocation. */
export interface Rec {
  id: string;
  target: Target;
  mode: TargetMode;
  input: string;
  headers: Record<string, string>;
  seed: string;
  createdAt: number;
  status: InvocationStatus;
  /** Attempts that failed with a retryable error (or were lost). */
  failures: number;
  /** An attempt has started (a cancel then asks the handler instead of ending it). */
  started: boolean;
  /** Moves on with every attempt and every fencing operation (pause, kill). */
  epoch: number;
  journal: Entry[];
  completions: Map<number, Completion>;
  signals: Map<string, Completion>;
  signalWaiters: Map<string, number[]>;
  cancelRequested: boolean;
  outcome?: Outcome;
  lastFailure?: SerializedError;
  /** Journal entries (`call`, `attach`) of other invocations waiting for this outcome. */
  callers: { id: string; index: number }[];
  /** The running attempt's receiver of completions and cancellations. */
  listener?: AttemptListener;
  /** Stops the running attempt (it has been fenced off). */
  stop?: () => void;
  timer?: NodeJS.Timeout;
  /** Dedupe records naming this invocation (removed by purge). */
  records: string[];
}

/** An object's or workflow's key. */
export interface KeySlot {
  state: Map<string, string>;
  /** Exclusive/workflow invocations of the key in acceptance order; the head holds the key. */
  inbox: string[];
  promises: Map<string, Completion>;
  promiseWaiters: Map<string, { id: string; index: number }[]>;
}

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
const PROMISE_TAKEN: Completion = {
  ok: false,
  e: {
    name: 'TerminalError',
    code: 'TERMINAL',
    message: 'the promise was already completed',
    status: 409,
  },
};

/** The completion an outcome gives to the entries waiting for it. */
export function completionOf(o: Outcome): Completion {
  if (!o.ok) return { ok: false, e: o.error };
  return o.value === undefined ? { ok: true } : { ok: true, v: o.value };
}

/** A copy as the store keeps it: through JSON, as a real store would. */
function stored<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function isKeyed(mode: TargetMode): boolean {
  return mode === 'exclusive' || mode === 'workflow';
}

export class Engine {
  readonly recs = new Map<string, Rec>();
  private readonly slots = new Map<string, KeySlot>();
  /** Idempotency and workflow records: name → invocation id. */
  readonly records = new Map<string, string>();
  readonly waiters = new Map<string, Set<(o: Outcome) => void>>();
  private readonly ready: string[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
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
    t.unref();
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
    const rec: Rec = {
      id,
      target: { ...t },
      mode: req.mode,
      input: req.input,
      headers: { ...req.headers },
      seed,
      createdAt: Date.now(),
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
    };
    for (const name of [idem, wf]) {
      if (name === undefined) continue;
      this.records.set(name, id);
      rec.records.push(name);
    }
    this.recs.set(id, rec);
    const delay = Math.max(0, req.delayMs ?? 0);
    if (delay > 0) {
      rec.status = 'delayed';
      rec.timer = this.at(delay, () => {
        delete rec.timer;
        if (rec.status === 'delayed') this.enqueue(rec);
      });
    } else {
      this.enqueue(rec);
    }
    return { invocationId: id, status: 'Accepted', fresh: true };
  }

  /** Registers a caller on an invocation; a completed one completes it at once. */
  private latch(id: string, caller: { id: string; index: number } | undefined): void {
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
    else rec.status = 'queued';
  }

  makeReady(rec: Rec): void {
    this.clearTimer(rec);
    rec.status = 'ready';
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
   * Appends a batch at `from` and applies its state ops and effects; returns the store clock and
   * the completions the effects produced at once. Effects on other invocations are performed
   * after the commit, as an outbox would.
   */
  commit(rec: Rec, from: number, entries: NewEntry[], ops: StateOp[], effects: Effect[]) {
    const now = Date.now();
    for (const e of entries) {
      rec.journal.push(
        e.k === 'sleep'
          ? { k: 'sleep', ...(e.n !== undefined ? { n: e.n } : {}), due: now + Math.max(0, e.ms) }
          : stored(e),
      );
    }
    if (rec.target.key !== undefined && ops.length > 0) {
      const state = this.slot(rec.target.service, rec.target.key).state;
      for (const op of ops) {
        if (op.op === 'set') state.set(op.n, op.v);
        else if (op.op === 'clear') state.delete(op.n);
        else state.clear();
      }
    }
    void from;
    const completions = new Map<number, Completion>();
    const produce = (index: number, c: Completion): void => {
      rec.completions.set(index, c);
      completions.set(index, c);
    };
    const slot = (): KeySlot => this.slot(rec.target.service, rec.target.key ?? '');
    for (const e of effects) {
      switch (e.t) {
        case 'pget': {
          const v = slot().promises.get(e.name);
          if (v) produce(e.index, v);
          else waitersOf(slot().promiseWaiters, e.name).push({ id: rec.id, index: e.index });
          break;
        }
        case 'ppeek':
          produce(e.index, slot().promises.get(e.name) ?? { ok: true });
          break;
        case 'sget': {
          const v = rec.signals.get(e.name);
          if (v) produce(e.index, v);
          else waitersOf(rec.signalWaiters, e.name).push(e.index);
          break;
        }
        case 'presolve': {
          const s = slot();
          if (s.promises.has(e.name)) {
            produce(e.index, PROMISE_TAKEN);
            break;
          }
          const c = stored(e.completion);
          s.promises.set(e.name, c);
          const ws = s.promiseWaiters.get(e.name) ?? [];
          s.promiseWaiters.delete(e.name);
          for (const w of ws) {
            if (w.id !== rec.id) this.deliver(w.id, w.index, c, 'pget');
            else if (!rec.completions.has(w.index)) produce(w.index, c);
          }
          produce(e.index, { ok: true });
          break;
        }
        default:
          setImmediate(() => this.perform(rec.id, stored(e)));
      }
    }
    return { now, completions };
  }

  /** Performs an effect on another invocation (after its commit). */
  private perform(issuer: string, e: Effect): void {
    switch (e.t) {
      case 'accept':
        this.accept(e.req, e.req.id, this.newSeed());
        break;
      case 'awakeable': {
        const a = parseAwakeableId(e.id);
        if (a) this.deliver(a.invocationId, a.index, e.completion, e.id);
        break;
      }
      case 'cancel':
        this.terminate(e.id, 'cancel');
        break;
      case 'signal':
        this.resolveSignal(e.id, e.name, e.completion);
        break;
      case 'attach': {
        const target = this.recs.get(e.id);
        if (!target) {
          const message = `invocation ${e.id} not found`;
          const err = { name: 'TerminalError', code: 'NOT_FOUND', message, status: 404 };
          this.deliver(issuer, e.index, { ok: false, e: err }, 'result');
        } else {
          this.latch(e.id, { id: issuer, index: e.index });
        }
        break;
      }
      default:
        break;
    }
  }

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
    rec.status = 'completed';
    rec.outcome = stored(outcome);
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

function waitersOf<K, V>(m: Map<K, V[]>, k: K): V[] {
  let a = m.get(k);
  if (!a) m.set(k, (a = []));
  return a;
}
