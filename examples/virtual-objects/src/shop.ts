/**
 * Two virtual objects: a shopping `cart` per customer and an `inventory` per
 * product (SKU).
 *
 * - Exclusive handlers (`add`, `checkout`, `restock`, `reserve`) run one at a
 *   time per key, in arrival order, so read-modify-write of state is safe
 *   without locks or transactions.
 * - Shared handlers (`get`, `stock`) run concurrently and read committed state.
 * - `checkout` tells each product's inventory to reserve stock with a
 *   fire-and-forget message (`objectSendClient`): it is journaled with the
 *   checkout, so it is delivered exactly once even if a worker dies, and the
 *   cart does not wait for the inventories.
 */
import {
  TerminalError,
  handlers,
  object,
  type ObjectContext,
  type ObjectSharedContext,
} from '@latchkey/core';

export type Items = Record<string, number>;

export const inventory = object({
  name: 'inventory',
  handlers: {
    restock: async (ctx: ObjectContext, qty: number) => {
      const stock = ((await ctx.get<number>('stock')) ?? 0) + qty;
      ctx.set('stock', stock);
      return stock;
    },
    /** Reserves `qty` for an order, or records a backorder when there is not enough. */
    reserve: async (ctx: ObjectContext, req: { orderId: string; qty: number }) => {
      const stock = (await ctx.get<number>('stock')) ?? 0;
      if (stock < req.qty) {
        ctx.set('backorders', [...((await ctx.get<string[]>('backorders')) ?? []), req.orderId]);
        return 'backordered';
      }
      ctx.set('stock', stock - req.qty);
      return 'reserved';
    },
    stock: handlers.object.shared(async (ctx: ObjectSharedContext) => ({
      stock: (await ctx.get<number>('stock')) ?? 0,
      backorders: (await ctx.get<string[]>('backorders')) ?? [],
    })),
  },
});

export const cart = object({
  name: 'cart',
  handlers: {
    add: async (ctx: ObjectContext, item: { sku: string; qty: number }) => {
      if (!Number.isInteger(item?.qty) || item.qty <= 0)
        throw new TerminalError('qty must be a positive integer', { errorCode: 400 });
      const items = (await ctx.get<Items>('items')) ?? {};
      items[item.sku] = (items[item.sku] ?? 0) + item.qty;
      ctx.set('items', items);
      return items;
    },
    checkout: async (ctx: ObjectContext) => {
      const items = (await ctx.get<Items>('items')) ?? {};
      if (Object.keys(items).length === 0)
        throw new TerminalError('the cart is empty', { errorCode: 400 });
      const orderId = `order-${ctx.rand.uuidv4().slice(0, 8)}`;
      for (const [sku, qty] of Object.entries(items)) {
        ctx.objectSendClient(inventory, sku).reserve({ orderId, qty }); // fire and forget
      }
      ctx.clear('items');
      return { orderId, items };
    },
    get: handlers.object.shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<Items>('items')) ?? {},
    ),
  },
});
