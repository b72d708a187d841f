/**
 * A commit on the in-memory store: entries appended, state ops applied, effects on the same key
 * applied at once and effects on other invocations performed after it (as an outbox would).
 */
import { parseAwakeableId } from '../../context/secrets.js';
import { ErrorCode, type SerializedError } from '../../errors.js';
import type { Completion, Effect, NewEntry, StateOp } from '../../journal/entry.js';
import { stepMsOf } from '../../journal/entry-meta.js';
import type { Engine } from './engine.js';
import { PROMISE_TAKEN, stored, waitersOf, type KeySlot, type Rec } from './records.js';

/**
 * Appends a batch (the attempt checked its index) and applies its state ops and effects; returns
 * the store clock and the completions the effects produced at once. Effects on other
 * invocations are performed after the commit, as an outbox would.
 */
export function commitBatch(
  engine: Engine,
  rec: Rec,
  entries: NewEntry[],
  ops: StateOp[],
  effects: Effect[],
): { now: number; completions: Map<number, Completion> } {
  const now = Date.now();
  entries.forEach((e, i) => {
    // When each entry was recorded and how long a step ran, for operators (`inspect`).
    const ms = stepMsOf(e);
    rec.seen.times[rec.journal.length + i] = {
      recordedAt: now,
      ...(ms !== undefined ? { stepMs: ms } : {}),
    };
  });
  for (const e of entries) {
    rec.journal.push(
      e.k === 'sleep'
        ? { k: 'sleep', ...(e.n !== undefined ? { n: e.n } : {}), due: now + Math.max(0, e.ms) }
        : stored(e),
    );
  }
  if (entries.length > 0) engine.events.journal(rec);
  if (rec.target.key !== undefined && ops.length > 0) {
    const state = engine.slot(rec.target.service, rec.target.key).state;
    for (const op of ops) {
      if (op.op === 'set') state.set(op.n, op.v);
      else if (op.op === 'clear') state.delete(op.n);
      else state.clear();
    }
  }
  const completions = new Map<number, Completion>();
  const produce = (index: number, c: Completion): void => {
    rec.completions.set(index, c);
    completions.set(index, c);
  };
  const slot = (): KeySlot => engine.slot(rec.target.service, rec.target.key ?? '');
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
          if (w.id !== rec.id) engine.deliver(w.id, w.index, c, 'pget');
          else if (!rec.completions.has(w.index)) produce(w.index, c);
        }
        produce(e.index, { ok: true });
        break;
      }
      default:
        setImmediate(() => perform(engine, rec.id, stored(e)));
    }
  }
  return { now, completions };
}

/** Performs an effect on another invocation (after its commit). */
function perform(engine: Engine, issuer: string, e: Effect): void {
  switch (e.t) {
    case 'accept':
      engine.accept(e.req, e.req.id, engine.newSeed());
      break;
    case 'awakeable': {
      const a = parseAwakeableId(e.id);
      if (a) engine.deliver(a.invocationId, a.index, e.completion, e.id);
      break;
    }
    case 'cancel':
      engine.terminate(e.id, 'cancel');
      break;
    case 'signal':
      engine.resolveSignal(e.id, e.name, e.completion);
      break;
    case 'attach': {
      const target = engine.recs.get(e.id);
      if (!target) {
        const message = `invocation ${e.id} not found`;
        const err: SerializedError = {
          name: 'TerminalError',
          code: ErrorCode.NOT_FOUND,
          message,
          status: 404,
        };
        engine.deliver(issuer, e.index, { ok: false, e: err }, 'result');
      } else {
        engine.latch(e.id, { id: issuer, index: e.index });
      }
      break;
    }
    default:
      break;
  }
}
