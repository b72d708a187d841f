/**
 * Cart and inventory objects: concurrent exclusive calls to one key lose no
 * update and each sees a consistent state; checkout sends
 * one fire-and-forget reservation per product, each applied exactly once (or
 * backordered); an empty cart cannot be checked out and bad input changes nothing.
 * A @latchkey/client connection (src/watch.ts) watching a cart over the
 * WebSocket ingress gets every add's result and the checkout's progress and
 * result, and what it received matches the state read over HTTP.
 */
import { describe, inject, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { cart, inventory } from '../src/shop.js';
import { watchCart } from '../src/watch.js';
import {
  deletePrefix,
  get,
  newPrefix,
  post,
  startServer,
  until,
} from '../../../test/helpers/harness.js';

const redisTarget = inject('redisTarget');

describe('virtual objects: cart and inventory', () => {
  it('applies concurrent adds exactly, checks out, and delivers each reservation once', async ({
    onTestFinished,
    expect,
  }) => {
    const prefix = newPrefix();
    const server = await startServer(redisTarget, prefix, [cart, inventory]);
    onTestFinished(async () => {
      await server.close();
      await deletePrefix(redisTarget, prefix);
    });
    const call = async (path: string, body?: unknown): Promise<{ status: number; body: unknown }> =>
      post(server.url, path, body);
    const u = randomUUID().slice(0, 8);
    const [mug, tea, who] = [`mug-${u}`, `tea-${u}`, `ada-${u}`];

    expect((await call(`/inventory/${mug}/restock`, 30)).body).toBe(30);
    expect((await call(`/inventory/${tea}/restock`, 1)).body).toBe(1);

    // 20 concurrent adds to one cart: every one applied, each answer a consistent step.
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => call(`/cart/${who}/add`, { sku: mug, qty: 1 })),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(
      answers.map((a) => Number((a.body as Record<string, number>)[mug])).sort((x, y) => x - y),
    ).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await call(`/cart/${who}/add`, { sku: tea, qty: 2 });
    expect((await call(`/cart/${who}/add`, { sku: tea, qty: -1 })).status).toBe(400);
    expect((await call(`/cart/${who}/get`)).body).toEqual({ [mug]: 20, [tea]: 2 });

    const checkout = await call(`/cart/${who}/checkout`);
    expect(checkout.status).toBe(200);
    const { orderId, items } = checkout.body as { orderId: string; items: Record<string, number> };
    expect(items).toEqual({ [mug]: 20, [tea]: 2 });
    expect((await call(`/cart/${who}/get`)).body).toEqual({});
    expect((await call(`/cart/${who}/checkout`)).status).toBe(400); // empty now

    // The reservations arrive on their own: 20 mugs reserved, 2 teas backordered (only 1 in stock).
    const stock = async (sku: string) =>
      (await call(`/inventory/${sku}/stock`)).body as { stock: number; backorders: string[] };
    await until(
      'the reservations to be applied',
      async () => (await stock(mug)).stock === 10 && (await stock(tea)).backorders.length === 1,
    );
    expect(await stock(mug)).toEqual({ stock: 10, backorders: [] });
    expect(await stock(tea)).toEqual({ stock: 1, backorders: [orderId] });
    // Exactly one reserve invocation per product, sent by the checkout.
    const reserves = (await server.store.list({ service: 'inventory' })).invocations.filter(
      (i) => i.target.handler === 'reserve',
    );
    expect(reserves.map((i) => i.target.key).sort()).toEqual([mug, tea].sort());
  });

  it('a WebSocket client watching a cart gets each add result and the checkout progress and result', async ({
    onTestFinished,
    expect,
  }) => {
    const prefix = newPrefix();
    const server = await startServer(redisTarget, prefix, [cart, inventory]);
    onTestFinished(async () => {
      await server.close();
      await deletePrefix(redisTarget, prefix);
    });
    const call = async (path: string, body?: unknown): Promise<{ status: number; body: unknown }> =>
      post(server.url, path, body);
    const u = randomUUID().slice(0, 8);
    const [mug, tea, who] = [`mug-${u}`, `tea-${u}`, `bo-${u}`];
    await call(`/inventory/${mug}/restock`, 12); // no tea in stock: its reservation is backordered

    // 10 adds of one mug and 1 tea, all in flight at once on one socket.
    const adds = [
      ...Array.from({ length: 10 }, () => ({ sku: mug, qty: 1 })),
      { sku: tea, qty: 1 },
    ];
    const logged: unknown[][] = [];
    const w = await watchCart(`${server.url.replace(/^http/, 'ws')}/ws`, who, adds, (...args) =>
      logged.push(args),
    );

    // Each add's answer is a consistent step: the mug counts are exactly 1..10 (none lost, none seen twice).
    expect(w.answers).toHaveLength(11);
    expect(
      w.answers
        .slice(0, 10)
        .map((a) => a[mug])
        .sort((x, y) => x! - y!),
    ).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(w.answers[10]![tea]).toBe(1);
    // The last add to run saw the whole cart; the shared get over the socket returned it too.
    expect(w.answers.filter((a) => a[mug] === 10 && a[tea] === 1)).toHaveLength(1);
    expect(w.contents).toEqual({ [mug]: 10, [tea]: 1 });

    // The checkout's progress: journal entries in index order (one reserve send per product), then
    // the completed status, then the result, last.
    const journal = w.events.filter((e) => e.kind === 'journal');
    expect(journal.map((e) => e.index)).toEqual(journal.map((_, i) => i));
    expect(journal.filter((e) => e.entry.k === 'send').map((e) => e.entry.n)).toEqual([
      'inventory/reserve',
      'inventory/reserve',
    ]);
    expect(w.events.some((e) => e.kind === 'status' && e.status === 'completed')).toBe(true);
    const result = w.events.at(-1)!;
    expect(w.events.filter((e) => e.kind === 'result')).toHaveLength(1);
    if (result.kind !== 'result' || !result.ok)
      throw new Error(`checkout did not succeed: ${JSON.stringify(result)}`);
    expect(result.invocationId).toBe(w.checkoutId);
    const { orderId, items } = result.value;
    expect(items).toEqual({ [mug]: 10, [tea]: 1 });
    expect(logged.some((l) => l[0] === 'checkout result ')).toBe(true);

    // What came over the socket matches the state: the HTTP output of the same invocation, the emptied
    // cart, and the inventories that applied that order's reservations.
    expect(await get(server.url, `/restate/invocation/${w.checkoutId}/output`)).toMatchObject({
      status: 200,
      body: { orderId, items },
    });
    expect((await call(`/cart/${who}/get`)).body).toEqual({});
    const stock = async (sku: string) =>
      (await call(`/inventory/${sku}/stock`)).body as { stock: number; backorders: string[] };
    await until(
      'the reservations to be applied',
      async () => (await stock(mug)).stock === 2 && (await stock(tea)).backorders.length === 1,
    );
    expect(await stock(mug)).toEqual({ stock: 2, backorders: [] });
    expect(await stock(tea)).toEqual({ stock: 0, backorders: [orderId] });
  });
});
