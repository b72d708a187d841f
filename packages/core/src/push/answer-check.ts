/**
 * What the engine checks of a deployment's answer before it applies any of it: that it could be
 * the answer of a handler of this invocation. A deployment answers for its own invocations only;
 * it cannot make them write state their mode may not write, start children under ids or callers
 * other than their own or in another mode than the engine's, or answer without progress. An answer that fails is a failed request
 * (retried with the handler's policy); nothing of it is applied.
 */
import type { Effect, NewEntry } from '../journal/entry.js';
import type { Registry } from '../runtime/registry.js';
import type { Attempt } from '../store/attempt.js';
import type { PushResponse } from './protocol.js';

const STATE_WRITES = new Set(['set', 'clear', 'clearAll']);

/**
 * Why `a` cannot be this attempt's answer, or undefined when it can. The mode of a child it starts
 * is set to the engine's own when the engine knows the target's handler.
 */
export function answerProblem(
  a: PushResponse,
  attempt: Attempt,
  registry: Registry,
): string | undefined {
  const inv = attempt.invocation;
  const entries: NewEntry[] = a.entries;
  if (inv.mode !== 'exclusive' && inv.mode !== 'workflow') {
    const w = entries.find((e) => STATE_WRITES.has(e.k));
    if (w) return `a ${inv.mode} handler cannot write state (entry ${w.k})`;
  }
  if (a.type === 'commit' && entries.length === 0 && a.effects.length === 0) {
    return 'a commit of nothing';
  }
  if (a.type === 'suspend' && a.on.wakeAt === null && a.on.awaiting.length === 0) {
    return 'a suspension that waits for nothing';
  }
  for (const e of a.effects) {
    const p = effectProblem(e, a.from, entries, attempt, registry);
    if (p) return p;
  }
  return undefined;
}

function effectProblem(
  e: Effect,
  from: number,
  entries: NewEntry[],
  attempt: Attempt,
  registry: Registry,
): string | undefined {
  if (e.t !== 'accept') return undefined;
  const inv = attempt.invocation;
  const req = e.req as Partial<typeof e.req> | undefined;
  const entry = Number.isInteger(e.index) ? entries[e.index - from] : undefined;
  if (!req || typeof req !== 'object' || !req.target || typeof req.id !== 'string') {
    return 'an accept effect without its request';
  }
  if (!entry || (entry.k !== 'call' && entry.k !== 'send') || entry.id !== req.id) {
    return `accept effect ${e.index}: no call or send of this answer starts ${req.id}`;
  }
  if (req.id !== attempt.childId(e.index, req.target, req.idempotencyKey)) {
    return `accept effect ${e.index}: ${req.id} is not the id this invocation's entry gives a child`;
  }
  const caller = req.caller;
  if (caller && (caller.id !== inv.id || caller.index !== e.index)) {
    return `accept effect ${e.index}: a call answers this invocation only`;
  }
  if ((entry.k === 'call') !== (caller !== undefined)) {
    return `accept effect ${e.index}: a call has a caller, a send none`;
  }
  // How the child runs is the engine's to say when it knows the handler (a deployment calling a
  // service it does not serve guesses from the reference's kind; it cannot skip a key's lock).
  const spec = registry.handler(req.target.service, req.target.handler);
  if (spec && spec.mode !== req.mode) e.req.mode = spec.mode;
  return undefined;
}
