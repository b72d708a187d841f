/**
 * Cart and inventory objects: concurrent exclusive calls to one key lose no
 * update and each sees a consistent state; checkout sends
 * one fire-and-forget reservation per product, each applied exactly once (or
 * backordered); an empty cart cannot be checked out and bad input changes nothing.
 *
 * Not covered yet: a client watching a key's results over the WebSocket
 * ingress — that part waits for @latchkey/client.
 */
import { describe, inject, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { cart, inventory } from '../src/shop.js';
import { deletePrefix, newPrefix, post, startServer, until } from '../../../test/helpers/harness.js';

const redisUrl = inject('redisUrl');

describe('virtual objects: cart and inventory', () => {
  it('applies concurrent adds exactly, checks out, and delivers each reservation once', async ({ onTestFinished, expect }) => {
    const prefix = newPrefix();
    const server = await startServer(redisUrl, prefix, [cart, inventory]);
    onTestFinished(async () => {
      await server.close();
      await deletePrefix(redisUrl, prefix);
    });
    const call = async (path: string, body?: unknown): Promise<{ status: number; body: unknown }> => post(server.url, path, body);
    const u = randomUUID().slice(0, 8);
    const [mug, tea, who] = [`mug-${u}`, `tea-${u}`, `ada-${u}`];

    expect((await call(`/inventory/${mug}/restock`, 30)).body).toBe(30);
    expect((await call(`/inventory/${tea}/restock`, 1)).body).toBe(1);

    // 20 concurrent adds to one cart: every one applied, each answer a consistent step.
    const answers = await Promise.all(Array.from({ length: 20 }, () => call(`/cart/${who}/add`, { sku: mug, qty: 1 })));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.map((a) => (a.body as Record<string, number>)[mug]).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
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
    const stock = async (sku: string) => (await call(`/inventory/${sku}/stock`)).body as { stock: number; backorders: string[] };
    await until('the reservations to be applied', async () => (await stock(mug)).stock === 10 && (await stock(tea)).backorders.length === 1);
    expect(await stock(mug)).toEqual({ stock: 10, backorders: [] });
    expect(await stock(tea)).toEqual({ stock: 1, backorders: [orderId] });
    // Exactly one reserve invocation per product, sent by the checkout.
    const reserves = (await server.store.list({ service: 'inventory' })).filter((i) => i.target.handler === 'reserve');
    expect(reserves.map((i) => i.target.key).sort()).toEqual([mug, tea].sort());
  });
});
