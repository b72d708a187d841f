/**
 * Golden journals: journals recorded from the examples against a real Redis
 * (`node scripts/record-golden.js`, fixtures in ./golden), replayed here with the examples' own
 * handler code against an in-memory attempt. A change that breaks the replay of journals that
 * exist today (a renamed entry, a changed order, a new entry where there was none) fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  TerminalError,
  type Completion,
  type Entry,
  type NewEntry,
  type Outcome,
  type TargetMode,
} from '@latchkey/core';
import { Registry, createExecutor, stateOpsOf } from '@latchkey/core/internal';
import { counter, greeter, signup } from '../../../examples/quickstart/src/services.js';
import { cart, inventory } from '../../../examples/virtual-objects/src/shop.js';
import { userSignup, type SignupDeps } from '../../../examples/signup/src/signup.js';
import { subscriptionSaga, type Billing } from '../../../examples/subscription-saga/src/saga.js';
import { MemoryAttempt } from './memory-attempt.js';

interface Recorded {
  id: string;
  target: { service: string; handler: string; key?: string };
  mode: TargetMode;
  input: string;
  headers: Record<string, string>;
  seed: string;
  state: [string, string][];
  completions: [number, Completion][];
  now: number;
  journal: Entry[];
  outcome: Outcome;
}

const quiet = {
  ...console,
  log: () => undefined,
  warn: () => undefined,
  info: () => undefined,
} as Console;

function load(name: string): Recorded[] {
  const url = new URL(`./golden/${name}.json`, import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { invocations: Recorded[] }).invocations;
}

/** Side effects the examples' handlers perform outside the journal (counted, never real). */
let effects = 0;
const signupDeps: SignupDeps = {
  createUser: async () => void effects++,
  activateUser: async () => void effects++,
  sendEmail: async () => void effects++,
};
const billing: Billing = {
  createRecurringPayment: async () => void effects++,
  removeRecurringPayment: async () => void effects++,
  createSubscription: async (req) => {
    effects++;
    if (req.product === 'broken') throw new TerminalError(`no product ${req.product}`);
  },
  removeSubscription: async () => void effects++,
};

const examples = {
  quickstart: [greeter, counter, signup],
  'virtual-objects': [cart, inventory],
  signup: [userSignup(signupDeps)],
  'subscription-saga': [subscriptionSaga(billing)],
};

/** The state an attempt starts with: the first attempt's, with the given entries' writes applied. */
function stateAfter(initial: [string, string][], entries: Entry[]): Map<string, string> {
  const state = new Map(initial);
  for (const op of stateOpsOf(entries as NewEntry[])) {
    if (op.op === 'set') state.set(op.n, op.v);
    else if (op.op === 'clear') state.delete(op.n);
    else state.clear();
  }
  return state;
}

/** Runs one attempt of a recorded invocation with the first `upto` journal entries recorded. */
async function replay(
  services: ConstructorParameters<typeof Registry>[0],
  rec: Recorded,
  upto: number,
  inactivityTimeoutMs?: number,
): Promise<MemoryAttempt> {
  const a = new MemoryAttempt({
    id: rec.id,
    target: rec.target,
    mode: rec.mode,
    input: rec.input,
    headers: rec.headers,
    seed: rec.seed,
    state: stateAfter(rec.state, rec.journal.slice(0, upto)),
    // A copy: a replayed `ctx.get` hands the handler the recorded value itself.
    journal: structuredClone(rec.journal.slice(0, upto)),
    completions: new Map(rec.completions),
  });
  // The store clock of the recording's last attempt: every recorded timer is due.
  a.clock = rec.now;
  const ex = createExecutor(new Registry(services), {
    logger: quiet,
    ...(inactivityTimeoutMs !== undefined ? { inactivityTimeoutMs } : {}),
  });
  await Promise.race([ex.run(a), a.ended]);
  await a.ended;
  return a;
}

/**
 * Runs a recorded invocation from its first `upto` entries to its end in the always-suspend mode,
 * as a store would: every suspension is followed by a new attempt (the clock moved to its wake
 * time) that replays the journal so far. Answers the last attempt.
 */
async function resume(
  services: ConstructorParameters<typeof Registry>[0],
  rec: Recorded,
  upto: number,
): Promise<MemoryAttempt> {
  let a = await replay(services, rec, upto, 0);
  for (let n = 0; n < rec.journal.length + 2; n++) {
    const last = a.calls.at(-1);
    if (last?.kind !== 'suspend') return a;
    // The next attempt starts from the first one's state and replays every write since.
    const next: Recorded = { ...rec, journal: a.journal, now: Math.max(a.clock, last.wakeAt ?? 0) };
    a = await replay(services, next, a.journal.length, 0);
  }
  return a;
}

/** An entry without what depends on the store (a timer's due time, a child's id). */
function shape(e: Entry | NewEntry): unknown {
  if (e.k === 'sleep') return { k: 'sleep', n: e.n };
  if (e.k === 'call' || e.k === 'send') return { k: e.k, n: e.n };
  return e;
}

describe.each(Object.entries(examples))('golden journals of %s', (name, services) => {
  const recorded = load(name);

  it('holds recorded invocations', () => {
    expect(recorded.length).toBeGreaterThan(0);
  });

  it.each(recorded.map((r) => [`${r.target.service}/${r.target.handler} ${r.id}`, r] as const))(
    'replays %s to its recorded outcome, executing nothing again',
    async (_label, rec) => {
      for (const inactivity of [undefined, 0]) {
        effects = 0;
        const a = await replay(services, rec, rec.journal.length, inactivity);
        // No non-determinism failure (it would retry), no new entry, no commit, no side effect.
        expect(a.calls).toEqual([
          { kind: 'complete', from: rec.journal.length, entries: [], outcome: rec.outcome },
        ]);
        expect(a.journal).toHaveLength(rec.journal.length);
        expect(effects).toBe(0);
      }
    },
  );

  it.each(recorded.map((r) => [`${r.target.service}/${r.target.handler} ${r.id}`, r] as const))(
    'resumes %s from every point of its journal to the same entries and outcome',
    async (_label, rec) => {
      for (let upto = 0; upto < rec.journal.length; upto++) {
        const a = await resume(services, rec, upto);
        const last = a.calls.at(-1);
        expect(last?.kind, `resumed at ${upto}`).toBe('complete');
        expect(last).toMatchObject({ outcome: rec.outcome });
        // The entries it journaled anew are the recorded ones (the first `upto` were given).
        const fresh = a.journal.slice(upto).map(shape);
        expect(fresh, `resumed at ${upto}`).toEqual(rec.journal.slice(upto).map(shape));
      }
    },
    30_000,
  );
});
