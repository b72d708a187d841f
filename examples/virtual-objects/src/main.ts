/**
 * The cart and inventory objects end to end: restock, fill a cart (with
 * concurrent adds), check out, then watch the inventories catch up. Then a
 * WebSocket client (`watch.ts`) fills a second cart over one socket, checks it
 * out and follows the checkout's progress to its result.
 *
 *   npm run build && node examples/virtual-objects/dist/main.js
 */
import { serve } from '@latchkey/core';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { cart, inventory } from './shop.js';
import { watchCart } from './watch.js';

async function post(base: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as unknown;
}

async function main(): Promise<void> {
  let redis: LocalRedis | undefined;
  let url = process.env['REDIS_URL'];
  if (!url) {
    redis = await startLocalRedis();
    url = redis.url;
  }
  const server = await serve({
    services: [cart, inventory],
    redis: url,
    port: 0,
    handleSignals: false,
  });
  const base = server.url;
  try {
    await post(base, '/inventory/mug/restock', 10);
    await post(base, '/inventory/tea/restock', 1);
    // Five adds at once to one cart: they run one after another, none is lost.
    await Promise.all(
      [1, 2, 3, 4, 5].map(() => post(base, '/cart/ada/add', { sku: 'mug', qty: 1 })),
    );
    await post(base, '/cart/ada/add', { sku: 'tea', qty: 2 });
    console.log('cart ada     ->', await post(base, '/cart/ada/get'));
    console.log('checkout     ->', await post(base, '/cart/ada/checkout'));
    console.log('cart ada     ->', await post(base, '/cart/ada/get'));
    // The reservations are separate invocations: wait until the mug's has been applied.
    while (((await post(base, '/inventory/mug/stock')) as { stock: number }).stock !== 5)
      await new Promise((r) => setTimeout(r, 50));
    console.log('mug stock    ->', await post(base, '/inventory/mug/stock'));
    console.log('tea stock    ->', await post(base, '/inventory/tea/stock'));
    // The same over the WebSocket ingress (it shares the HTTP port, path /ws).
    await watchCart(`${base.replace(/^http/, 'ws')}/ws`, 'bo', [
      { sku: 'mug', qty: 1 },
      { sku: 'mug', qty: 2 },
      { sku: 'tea', qty: 1 },
    ]);
  } finally {
    await server.close();
    await redis?.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
