/**
 * Runs the payment flow end to end: starts a private redis-server (unless
 * REDIS_URL is set), serves the `payment` object, and drives two payments over
 * HTTP — one confirmed and charged, one left to expire.
 *
 *   npm run build && node examples/xstate-payment/dist/main.js
 */
import { randomUUID } from 'node:crypto';
import { serve } from '@latchkey/core';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { paymentObject, type PaymentGateway } from './payment.js';

/** A pretend gateway: charges once per idempotency key, takes a little time. */
const receipts = new Map<string, string>();
const gateway: PaymentGateway = {
  async charge({ orderId, amount, idempotencyKey }) {
    await new Promise((r) => setTimeout(r, 200));
    if (!receipts.has(idempotencyKey))
      receipts.set(idempotencyKey, `rcpt-${randomUUID().slice(0, 8)}`);
    console.log(`  (gateway: charged ${amount} for ${orderId})`);
    return { receiptId: receipts.get(idempotencyKey)! };
  },
};

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
    services: [paymentObject(gateway)],
    redis: url,
    port: 0,
    handleSignals: false,
  });
  const base = server.url;
  const show = (s: unknown): string => {
    const { value, status, context } = s as {
      value: unknown;
      status: string;
      context: { receiptId: string | null };
    };
    return `${JSON.stringify(value)} (${status})${context.receiptId ? ` receipt ${context.receiptId}` : ''}`;
  };
  try {
    // 1. Created, confirmed, charged.
    console.log(
      'create p1   ->',
      show(await post(base, '/payment/p1/create', { input: { orderId: 'o-1', amount: 42 } })),
    );
    console.log(
      'CONFIRM p1  ->',
      show(await post(base, '/payment/p1/send', { event: { type: 'CONFIRM' } })),
    );
    // The charge runs as its own durable step; wait until the machine is done.
    console.log(
      'waitFor p1  ->',
      show(await post(base, '/payment/p1/waitFor', { condition: 'done', timeout: 10_000 })),
    );

    // 2. Never confirmed: the durable `after` timer expires it.
    console.log(
      'create p2   ->',
      show(
        await post(base, '/payment/p2/create', {
          input: { orderId: 'o-2', amount: 7, confirmWithinMs: 1000 },
        }),
      ),
    );
    console.log(
      'waitFor p2  ->',
      show(
        await post(base, '/payment/p2/waitFor', { condition: 'state:expired', timeout: 10_000 }),
      ),
    );
  } finally {
    await server.close();
    await redis?.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
