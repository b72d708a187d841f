/**
 * The delegating side of delegated accepts (`src/delegate.ts`), with a stand-in for the mailbox's
 * publish: which calls are delegated, what each note means, and which notes count towards
 * `EagerMisses` (a worker with no free slot must not turn delegation off).
 */
import { describe, expect, it } from 'vitest';
import type { StoreContext } from '../src/context.js';
import { Delegations, type DelegatedAccept } from '../src/delegate.js';
import { ArrivalOrder } from '../src/eager.js';
import { EagerMisses } from '../src/eager-runs.js';
import type { Mailbox } from '../src/mailbox.js';
import { DEFAULTS, type StoreConfig } from '../src/options.js';
import type { WireInvocation } from '../src/wire.js';

/** Delegations whose publishes are recorded and answered with `heard`. */
function delegations(opts: Partial<StoreConfig> = {}, heard = true) {
  const sent: DelegatedAccept[] = [];
  const ctx = {
    opts: { ...DEFAULTS, delegateTimeoutMs: 60_000, ...opts },
    outcomeChannel: (p: number) => `lk:{${p}}:done:me`,
    replication: undefined,
  } as unknown as StoreContext;
  const mailbox = {
    freeLocal: () => undefined,
    delegate: (_p: number, d: DelegatedAccept) => {
      sent.push(d);
      return Promise.resolve(heard);
    },
  } as unknown as Mailbox;
  return { d: new Delegations(ctx, mailbox, new EagerMisses(), new ArrivalOrder()), sent };
}

let n = 0;
function call(over: Partial<WireInvocation> = {}): WireInvocation {
  return {
    id: `inv_${n++}`,
    service: 'echo',
    handler: 'shout',
    mode: 'service',
    input: '"x"',
    ...over,
  };
}

/** Delegates a call and answers it with `note` once its message went out. */
async function answered(
  d: Delegations,
  sent: DelegatedAccept[],
  note: string,
): Promise<string | undefined> {
  const req = call();
  const pending = d.delegate(req, 3, 'seed');
  if (!pending) return undefined;
  await Promise.resolve();
  await Promise.resolve();
  expect(sent.at(-1)?.req.id).toBe(req.id);
  d.note(req.id, note);
  return pending;
}

describe('Delegations', () => {
  it('delegates calls to service handlers only, without idempotency key or delay', () => {
    const { d, sent } = delegations();
    expect(d.delegate(call({ mode: 'exclusive', key: 'k' }), 0, 's')).toBeUndefined();
    expect(d.delegate(call({ mode: 'workflow', key: 'k' }), 0, 's')).toBeUndefined();
    expect(d.delegate(call({ idempotencyKey: 'i' }), 0, 's')).toBeUndefined();
    expect(d.delegate(call({ delayMs: 10 }), 0, 's')).toBeUndefined();
    expect(d.delegate(call({ input: 'x'.repeat(70_000) }), 0, 's')).toBeUndefined();
    expect(delegations({ delegateAccepts: false }).d.delegate(call(), 0, 's')).toBeUndefined();
    expect(delegations({ eagerCompletion: false }).d.delegate(call(), 0, 's')).toBeUndefined();
    const req = call();
    expect(d.delegate(req, 5, 'seed')).toBeInstanceOf(Promise);
    return Promise.resolve().then(() => {
      expect(sent).toEqual([{ req, seed: 'seed', channel: 'lk:{5}:done:me' }]);
    });
  });

  it('maps an outcome to done, + to accepted and = to accepted (busy)', async () => {
    const { d, sent } = delegations();
    expect(await answered(d, sent, '')).toBe('done');
    expect(await answered(d, sent, '+')).toBe('accepted');
    expect(await answered(d, sent, '=')).toBe('accepted');
  });

  it('stops delegating a handler after three runs that stopped short, not after busy workers', async () => {
    const { d, sent } = delegations();
    for (let i = 0; i < 10; i++) expect(await answered(d, sent, '=')).toBe('accepted');
    for (let i = 0; i < 3; i++) expect(await answered(d, sent, '+')).toBe('accepted');
    // Three misses in a row: only one call in 64 is delegated from now on.
    const delegated = Array.from({ length: 64 }, () => d.delegate(call(), 0, 's') !== undefined);
    expect(delegated.filter(Boolean)).toHaveLength(1);
  });

  it('answers lost when nobody heard the message, or no note came in time', async () => {
    const unheard = delegations({}, false);
    expect(await unheard.d.delegate(call(), 0, 's')).toBe('lost');
    const silent = delegations({ delegateTimeoutMs: 20 });
    expect(await silent.d.delegate(call(), 0, 's')).toBe('lost');
  });
});
