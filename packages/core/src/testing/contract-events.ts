/**
 * The live events part of `storeContract()`: what `Store.watchEvents` guarantees on every store.
 */
import { expect, it } from 'vitest';
import type { StoreEvent } from '../store/events.js';
import type { Store } from '../store/store.js';
import { counter, greeter, request, until, valueOf } from './contract-services.js';

/** Defines the live events cases on the store `current()` returns (inside the contract's suite). */
export function eventCases(current: () => Store): void {
  it('tells listeners status changes and journal commits, by filter, until they close', async () => {
    const store = current();
    const all: StoreEvent[] = [];
    const ofCounter: StoreEvent[] = [];
    const watchAll = store.watchEvents({}, (e) => all.push(e));
    const watchCounter = store.watchEvents({ service: counter.name }, (e) => ofCounter.push(e));
    await Promise.all([watchAll.ready, watchCounter.ready]);

    const held = await store.accept(
      request({ service: counter.name, handler: 'hold', key: 'ev' }, null),
    );
    const byId: StoreEvent[] = [];
    const watchId = store.watchEvents({ id: held.invocationId }, (e) => byId.push(e));
    await watchId.ready;
    const id = held.invocationId;
    // The awakeable's entry is committed: a journal event of length 1 (at least) for this id.
    const awk = await until('a journal event', () =>
      ofCounter.find((e) => e.type === 'journal' && e.id === id),
    );
    expect(awk).toMatchObject({ type: 'journal', id, service: counter.name });
    expect((awk as { length: number }).length).toBeGreaterThanOrEqual(1);
    expect(ofCounter).toContainEqual(
      expect.objectContaining({
        type: 'status',
        id,
        status: 'running',
        service: counter.name,
        handler: 'hold',
        key: 'ev',
      }),
    );
    const info = await store.describe(id, true);
    const awkId = info?.journal?.find((e) => e.k === 'awk');
    expect(awkId?.k).toBe('awk');
    expect(
      await store.resolveAwakeable((awkId as { id: string }).id, { ok: true, v: '"go"' }),
    ).toBe('ok');
    expect(valueOf(await store.awaitOutcome(id))).toBe('held:go');
    const completed = (e: StoreEvent): boolean =>
      e.type === 'status' && e.id === id && e.status === 'completed';
    await until('completed, to every listener that wants it', () =>
      [all, ofCounter, byId].every((l) => l.some(completed)),
    );
    for (const e of byId) if (e.type !== 'resync') expect(e.id).toBe(id);
    for (const e of ofCounter) if (e.type !== 'resync') expect(e.service).toBe(counter.name);
    const at = all.find(completed) as { at: number };
    expect(at.at).toBeGreaterThan(0);

    // Another service's invocation reaches the listener of every event only.
    const greeted = await store.accept(request({ service: greeter.name, handler: 'greet' }, 'ev'));
    expect(valueOf(await store.awaitOutcome(greeted.invocationId))).toBe('hello ev');
    const completedOf = (inv: string) => (e: StoreEvent) =>
      e.type === 'status' && e.id === inv && e.status === 'completed';
    await until('the greeter completed, told to the listener of everything', () =>
      all.some(completedOf(greeted.invocationId)),
    );
    expect(ofCounter.some((e) => e.type !== 'resync' && e.id === greeted.invocationId)).toBe(false);

    // Closed watches hear nothing more.
    watchCounter.close();
    watchId.close();
    const again = await store.accept(
      request({ service: counter.name, handler: 'add', key: 'ev' }, 1),
    );
    expect(valueOf(await store.awaitOutcome(again.invocationId))).toBe(1);
    await until('the add completed, told to the listener of everything', () =>
      all.some(completedOf(again.invocationId)),
    );
    expect(ofCounter.some((e) => e.type !== 'resync' && e.id === again.invocationId)).toBe(false);
    watchAll.close();
  });
}
