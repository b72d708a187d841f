/**
 * `storeContract()`'s cases of what an operator sees and does (`AdminStore.inspect`,
 * `AdminStore.restartAsNew`), on the handlers of `contract-services.ts`.
 */
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import type { Store } from '../store/store.js';
import {
  awakeableOf,
  caller,
  counter,
  greeter,
  request,
  sleeper,
  stepRuns,
  stepper,
  valueOf,
} from './contract-services.js';

/** Defines the admin cases inside `storeContract`'s suite; `store()` is the test's store. */
export function adminContract(store: () => Store): void {
  const charge = { service: stepper.name, handler: 'charge' };
  const twoSteps = { service: stepper.name, handler: 'twoSteps' };

  it('inspects a failed attempt: its step, index, attempt, stack and times', async () => {
    const tag = randomUUID();
    const a = await store().accept(request(charge, tag));
    expect(valueOf(await store().awaitOutcome(a.invocationId))).toBe('charged:3');
    const d = (await store().inspect(a.invocationId))!;
    expect(d.attempts).toBe(2);
    expect(d.failure).toMatchObject({
      attempt: 2,
      step: { index: 1, kind: 'run', name: 'charge' },
      error: { name: 'Error', message: 'gateway down 2' },
    });
    expect(d.failure?.error.stack).toContain('gateway down 2');
    expect(d.failure?.at).toBeGreaterThanOrEqual(d.createdAt);
    expect(d.firstStartedAt).toBeGreaterThanOrEqual(d.createdAt);
    expect(d.lastStartedAt).toBeGreaterThanOrEqual(d.failure!.at!);
    expect(d.completedAt).toBeGreaterThanOrEqual(d.lastStartedAt!);
    expect(d.journal.map((e) => e.k)).toEqual(['run', 'run']);
    expect(d.times).toHaveLength(2);
    for (const t of d.times) expect(t.recordedAt).toBeGreaterThanOrEqual(d.firstStartedAt!);
    expect(d.times[1]?.stepMs).toBeGreaterThanOrEqual(0);
    expect(d.input).toBe(JSON.stringify(tag));
  });

  it('inspects a call: the parent names its child, the child its parent', async () => {
    const a = await store().accept(request({ service: caller.name, handler: 'callGreeter' }, 'x'));
    await store().awaitOutcome(a.invocationId);
    const parent = (await store().inspect(a.invocationId))!;
    const call = parent.journal[0]!;
    expect(call.k).toBe('call');
    const childId = (call as { id: string }).id;
    expect(parent.completions.get(0)).toEqual({ ok: true, v: '"hello x"' });
    const child = (await store().inspect(childId))!;
    expect(child.target).toEqual({ service: greeter.name, handler: 'greet' });
    expect(child.invokedBy).toEqual({ id: a.invocationId, index: 0 });
    expect(parent.invokedBy).toBeUndefined();
  });

  it('restarts a completed invocation as new: kept entries are replayed, not run again', async () => {
    const tag = randomUUID();
    const a = await store().accept(request(twoSteps, tag));
    expect(valueOf(await store().awaitOutcome(a.invocationId))).toBe('1/1');
    const kept = await store().restartAsNew(a.invocationId, { keepPrefix: 1 });
    if (!kept.ok) throw new Error(kept.message);
    expect(kept.invocationId).not.toBe(a.invocationId);
    // 'one' replays its recorded 1; 'two' runs again.
    expect(valueOf(await store().awaitOutcome(kept.invocationId))).toBe('1/2');
    expect(stepRuns.get(`${tag}:one`)).toBe(1);
    const d = (await store().inspect(kept.invocationId))!;
    expect(d.restartedFrom).toBe(a.invocationId);
    expect(d.target).toEqual(twoSteps);
    expect(d.journal[0]).toEqual((await store().inspect(a.invocationId))!.journal[0]);
    // Without a prefix every step runs again; the old invocation is untouched.
    const fresh = await store().restartAsNew(a.invocationId);
    if (!fresh.ok) throw new Error(fresh.message);
    expect(valueOf(await store().awaitOutcome(fresh.invocationId))).toBe('2/3');
    expect((await store().describe(a.invocationId))?.outcome).toEqual({ ok: true, value: '"1/1"' });
  });

  it('refuses restart-as-new of unknown, unfinished and workflow invocations and bad prefixes', async () => {
    const unknown = await store().restartAsNew(`inv_00${'A'.repeat(20)}`);
    expect(unknown).toMatchObject({ ok: false, reason: 'gone' });
    const held = await store().accept(
      request({ service: counter.name, handler: 'hold', key: 'rs' }, null),
    );
    const awk = await awakeableOf(store(), held.invocationId);
    expect(await store().restartAsNew(held.invocationId)).toMatchObject({
      ok: false,
      reason: 'not-completed',
    });
    await store().resolveAwakeable(awk, { ok: true, v: '"go"' });
    await store().awaitOutcome(held.invocationId);
    expect(await store().restartAsNew(held.invocationId, { keepPrefix: 2 })).toMatchObject({
      ok: false,
      reason: 'prefix',
    });
    expect(await store().restartAsNew(held.invocationId, { keepPrefix: -1 })).toMatchObject({
      ok: false,
      reason: 'prefix',
    });
    const run = { service: sleeper.name, handler: 'run', key: randomUUID() };
    const wf = await store().accept(request(run, 1));
    await store().awaitOutcome(wf.invocationId);
    expect(await store().restartAsNew(wf.invocationId)).toMatchObject({
      ok: false,
      reason: 'workflow',
    });
  });
}
