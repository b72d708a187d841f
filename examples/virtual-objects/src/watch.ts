/**
 * A client watching one cart over the WebSocket ingress (`@latchkey/client`):
 * one socket carries every request and every result.
 *
 * - The adds are sent at once over the socket; the server runs them one
 *   after another (exclusive handler) and the client awaits each one's
 *   result, a consistent step of the cart.
 * - The checkout is started with a one-way send (the client gets its
 *   invocation id at once), then watched with `subscribe`: status changes and
 *   journal entries as they happen (the fire-and-forget `reserve` messages
 *   show up as `send` entries), and finally its result.
 *
 * `main.ts` runs it against its server; the example's test asserts it.
 */
import { connect, type ProgressEvent } from '@latchkey/client';
import type { Items, cart } from './shop.js'; // type-only: typed calls, nothing loaded at run time

export interface CartWatch {
  /** The result of each add, in the order the adds were made. */
  answers: Items[];
  /** The cart as the shared `get` returned it after the adds. */
  contents: Items;
  /** The checkout's invocation id (from the send). */
  checkoutId: string;
  /** Every progress event of the checkout, the result last. */
  events: ProgressEvent<{ orderId: string; items: Items }>[];
}

/**
 * Connects to `wsUrl` (`ws://host:port/ws`), adds `items` to cart `who` over
 * the socket, checks the cart out and follows the checkout to its result.
 */
export async function watchCart(
  wsUrl: string,
  who: string,
  items: { sku: string; qty: number }[],
  log: (...args: unknown[]) => void = console.log,
): Promise<CartWatch> {
  const client = connect(wsUrl);
  try {
    const shop = client.objectClient<typeof cart>({ name: 'cart' }, who);

    // All adds in flight at once on one socket; each answer arrives as soon as its add has run.
    const answers = await Promise.all(
      items.map(async (item) => {
        const after = await shop.add(item, { timeout: 30_000 });
        log(`ws add ${item.sku} x${item.qty} ->`, after);
        return after;
      }),
    );
    const contents = await shop.get(undefined, { timeout: 30_000 });
    log('ws get        ->', contents);

    // Start the checkout without waiting for it, then watch it by invocation id.
    const { invocationId: checkoutId } = await client
      .objectSendClient<typeof cart>({ name: 'cart' }, who)
      .checkout();
    const events: CartWatch['events'] = [];
    for await (const ev of client.subscribe<{ orderId: string; items: Items }>(checkoutId, {
      timeout: 60_000,
    })) {
      events.push(ev);
      if (ev.kind === 'status') log('checkout status ', ev.status);
      if (ev.kind === 'journal') log('checkout step   ', ev.index, ev.entry.k, ev.entry.n ?? '');
      if (ev.kind === 'result') log('checkout result ', ev.ok ? ev.value : ev.error.message);
    }
    return { answers, contents, checkoutId, events };
  } finally {
    await client.close();
  }
}
