/**
 * The admin listing's part of `storeContract()`: pages of invocations by every filter, in both
 * orders, followed by cursor; counts; the keys of an object, a key's queue, clearing its state;
 * a workflow run's promises. Defined inside the contract's suite (its store per test).
 */
import { expect, it } from 'vitest';
import type { InvocationSummary, ListQuery } from '../store/listing.js';
import type { Store } from '../store/store.js';
import {
  approval,
  awakeableOf,
  counter,
  greeter,
  request,
  until,
  valueOf,
} from './contract-services.js';

const HOUR = 3_600_000;

/** Every page of a query, followed by cursor (at most 50 pages). */
async function allPages(store: Store, q: ListQuery): Promise<InvocationSummary[]> {
  const out: InvocationSummary[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 50; i++) {
    const page = await store.list({ ...q, ...(cursor !== undefined ? { cursor } : {}) });
    out.push(...page.invocations);
    cursor = page.nextCursor;
    if (cursor === undefined) return out;
  }
  throw new Error('more than 50 pages');
}

const ids = (xs: { id: string }[]): string[] => xs.map((x) => x.id);

/** The contract's listing cases, on the suite's current store. */
export function listingCases(current: () => Store): void {
  const greet = { service: greeter.name, handler: 'greet' };
  const add = (key: string) => ({ service: counter.name, handler: 'add', key });
  const hold = (key: string) => ({ service: counter.name, handler: 'hold', key });

  it('lists invocations by every filter, newest first or oldest first', async () => {
    const store = current();
    const g1 = await store.accept(request(greet, 'a', { idempotencyKey: 'gk1' }));
    await store.awaitOutcome(g1.invocationId);
    const g2 = await store.accept(request(greet, 'b'));
    await store.awaitOutcome(g2.invocationId);
    const c1 = await store.accept(request(add('l'), 1));
    await store.awaitOutcome(c1.invocationId);
    const held = await store.accept(request(hold('l2'), null));
    await awakeableOf(store, held.invocationId);

    const greets = (await store.list({ service: greeter.name })).invocations;
    const byAge = [...greets].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    expect(ids(greets)).toEqual(ids(byAge));
    expect(new Set(ids(greets))).toEqual(new Set([g1.invocationId, g2.invocationId]));
    const asc = (await store.list({ service: greeter.name, order: 'asc' })).invocations;
    expect(ids(asc)).toEqual(ids(greets).reverse());
    const g1s = greets.find((s) => s.id === g1.invocationId)!;
    expect(g1s).toMatchObject({
      target: greet,
      mode: 'service',
      status: 'completed',
      attempts: 0,
      idempotencyKey: 'gk1',
    });
    expect(g1s.modifiedAt).toBeGreaterThanOrEqual(g1s.createdAt);

    const one = async (q: ListQuery) => ids((await store.list(q)).invocations);
    expect(await one({ service: counter.name, handler: 'add' })).toEqual([c1.invocationId]);
    expect(await one({ service: counter.name, key: 'l2' })).toEqual([held.invocationId]);
    expect(await one({ service: counter.name, key: 'l', handler: 'hold' })).toEqual([]);
    const idem = { service: greeter.name, idempotencyKey: 'gk1' };
    expect(await one(idem)).toEqual([g1.invocationId]);
    expect(await one({ ...idem, handler: 'greet' })).toEqual([g1.invocationId]);
    expect(await one({ ...idem, idempotencyKey: 'other' })).toEqual([]);
    expect(new Set(await one({ status: 'completed' }))).toEqual(
      new Set([g1.invocationId, g2.invocationId, c1.invocationId]),
    );
    expect(await one({ status: 'completed', service: counter.name })).toEqual([c1.invocationId]);
    const waiting = (await store.list({ service: counter.name, handler: 'hold' })).invocations;
    expect(['running', 'suspended']).toContain(waiting[0]?.status);
    expect(await one({ status: waiting[0]!.status, service: counter.name })).toEqual([
      held.invocationId,
    ]);

    expect((await store.list({})).invocations).toHaveLength(4);
    // Time bounds are exclusive (on the completed greetings: their times no longer move).
    const t = g1s.createdAt;
    const m = g1s.modifiedAt;
    const svc = greeter.name;
    const where = (q: (s: InvocationSummary) => boolean) => ids(greets.filter(q)).sort();
    expect((await one({ service: svc, createdAfter: t })).sort()).toEqual(
      where((s) => s.createdAt > t),
    );
    expect((await one({ service: svc, createdBefore: t + 1 })).sort()).toEqual(
      where((s) => s.createdAt <= t),
    );
    expect((await one({ service: svc, modifiedAfter: m })).sort()).toEqual(
      where((s) => s.modifiedAt > m),
    );
    expect(
      (await one({ service: svc, status: 'completed', modifiedBefore: m + 1 })).sort(),
    ).toEqual(where((s) => s.modifiedAt <= m));
    expect(await one({ service: svc, createdAfter: t + 1, createdBefore: t + 1 })).toEqual([]);
    await store.kill(held.invocationId);
  });

  it('pages with a cursor, without duplicates or gaps while invocations change status', async () => {
    const store = current();
    const made: string[] = [];
    for (let i = 0; i < 7; i++) {
      made.push((await store.accept(request(greet, `d${i}`, { delayMs: HOUR }))).invocationId);
    }
    for (const order of ['desc', 'asc'] as const) {
      const pages = await allPages(store, { service: greeter.name, limit: 2, order });
      expect(ids(pages).sort()).toEqual([...made].sort());
      expect(new Set(ids(pages)).size).toBe(made.length);
    }
    // Status changes between pages: by creation, each invocation is seen exactly once.
    const seen: string[] = [];
    let cursor: string | undefined;
    let page = await store.list({ service: greeter.name, limit: 3 });
    for (;;) {
      seen.push(...ids(page.invocations));
      cursor = page.nextCursor;
      if (cursor === undefined) break;
      const next = made.find((id) => !seen.includes(id));
      if (next !== undefined) await store.kill(next);
      page = await store.list({ service: greeter.name, limit: 3, cursor });
    }
    expect([...seen].sort()).toEqual([...made].sort());
    // By status: each one that stays delayed is seen exactly once.
    const delayed = await allPages(store, { status: 'delayed', limit: 2 });
    const still = (await store.list({ status: 'delayed' })).invocations;
    expect(ids(delayed).sort()).toEqual(ids(still).sort());
    for (const id of made) await store.kill(id);
    expect(await allPages(store, { status: 'delayed', limit: 2 })).toEqual([]);
    // A cursor of another order (status given or not) is refused.
    const c = (await store.list({ service: greeter.name, limit: 1 })).nextCursor!;
    await expect(store.list({ status: 'completed', cursor: c })).rejects.toMatchObject({
      kind: 'INVALID_CURSOR',
    });
  });

  it('counts invocations by status and by service', async () => {
    const store = current();
    const g = await store.accept(request(greet, 'c'));
    await store.awaitOutcome(g.invocationId);
    const d = await store.accept(request(greet, 'd', { delayMs: HOUR }));
    const c = await store.accept(request(add('cnt'), 2));
    await store.awaitOutcome(c.invocationId);
    expect(await store.counts()).toEqual({
      total: 3,
      byStatus: { delayed: 1, completed: 2 },
      byService: { [greeter.name]: 2, [counter.name]: 1 },
    });
    expect(await store.counts({ service: greeter.name })).toEqual({
      total: 2,
      byStatus: { delayed: 1, completed: 1 },
      byService: { [greeter.name]: 2 },
    });
    expect(await store.counts({ service: 'nothing' })).toEqual({
      total: 0,
      byStatus: {},
      byService: {},
    });
    await store.kill(d.invocationId);
    expect((await store.counts({ service: greeter.name })).byStatus).toEqual({ completed: 2 });
  });

  it("lists an object's keys, a key's queue in order, and clears state through the fence", async () => {
    const store = current();
    const a = await store.accept(request(add('k1'), 1));
    await store.awaitOutcome(a.invocationId);
    const held = await store.accept(request(hold('k2'), null));
    await awakeableOf(store, held.invocationId);
    const q1 = await store.accept(request(add('k2'), 1));
    const q2 = await store.accept(request(add('k2'), 2));
    const page = await store.listKeys(counter.name);
    expect(page).toEqual({
      keys: [
        { key: 'k1', inbox: 0 },
        { key: 'k2', inbox: 3, holder: held.invocationId },
      ],
    });
    const first = await store.listKeys(counter.name, { limit: 1 });
    expect(first.keys.map((k) => k.key)).toEqual(['k1']);
    const rest = await store.listKeys(counter.name, { limit: 1, cursor: first.nextCursor! });
    expect(rest.keys.map((k) => k.key)).toEqual(['k2']);
    const queue = await store.keyQueue(counter.name, 'k2');
    expect(queue.holder).toBe(held.invocationId);
    expect(ids(queue.queue)).toEqual([q1.invocationId, q2.invocationId]);
    expect(queue.queue.map((s) => s.status)).toEqual(['queued', 'queued']);
    expect(await store.keyQueue(counter.name, 'none')).toEqual({ queue: [] });

    expect(await store.clearState(counter.name, 'k2')).toBe(false);
    expect(await store.clearState(counter.name, 'k1')).toBe(true);
    expect(await store.getState(counter.name, 'k1')).toEqual(new Map());
    // A key with no state, holder or inbox is not listed.
    expect((await store.listKeys(counter.name)).keys.map((k) => k.key)).toEqual(['k2']);
    await store.kill(held.invocationId);
    expect(valueOf(await store.awaitOutcome(q2.invocationId))).toBe(3);
    expect(await store.listKeys(counter.name)).toEqual({ keys: [{ key: 'k2', inbox: 0 }] });
  });

  it("lists a workflow run's promises: pending, resolved and rejected", async () => {
    const store = current();
    const run = await store.accept(
      request({ service: approval.name, handler: 'run', key: 'w' }, null),
    );
    expect(
      await until('the pending promise', async () => {
        const ps = await store.promises(approval.name, 'w');
        return ps.length === 1 && ps;
      }),
    ).toEqual([{ name: 'ok' }]);
    const deny = await store.accept(
      request({ service: approval.name, handler: 'deny', key: 'w' }, 'nope'),
    );
    await store.awaitOutcome(deny.invocationId);
    const approve = await store.accept(
      request({ service: approval.name, handler: 'approve', key: 'w' }, 'yes'),
    );
    await store.awaitOutcome(approve.invocationId);
    expect(valueOf(await store.awaitOutcome(run.invocationId))).toBe('approved:yes');
    const settled = await store.promises(approval.name, 'w');
    expect(settled.map((p) => p.name)).toEqual(['no', 'ok']);
    const [no, ok] = settled;
    expect(no).toMatchObject({ name: 'no', completion: { ok: false, e: { message: 'nope' } } });
    expect(ok).toEqual({ name: 'ok', completion: { ok: true, v: '"yes"' } });
    expect(await store.promises(approval.name, 'other')).toEqual([]);
  });
}
