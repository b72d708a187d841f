/**
 * Runs the saga twice against an in-memory billing provider: one signup that
 * succeeds, one whose third product is unavailable and is rolled back.
 *
 *   npm run build && node examples/subscription-saga/dist/main.js
 */
import { TerminalError, serve } from '@latchkey/core';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { subscriptionSaga, type Billing } from './saga.js';

const live = new Set<string>();
const billing: Billing = {
  async createRecurringPayment({ paymentId }) {
    live.add(paymentId);
  },
  async removeRecurringPayment(paymentId) {
    live.delete(paymentId);
  },
  async createSubscription({ subscriptionId, product }) {
    if (product === 'sold-out')
      throw new TerminalError(`${product} is not available`, { errorCode: 409 });
    live.add(subscriptionId);
  },
  async removeSubscription(subscriptionId) {
    live.delete(subscriptionId);
  },
};

async function main(): Promise<void> {
  let redis: LocalRedis | undefined;
  let url = process.env['REDIS_URL'];
  if (!url) {
    redis = await startLocalRedis();
    url = redis.url;
  }
  const server = await serve({
    services: [subscriptionSaga(billing)],
    redis: url,
    port: 0,
    handleSignals: false,
  });
  const run = async (user: string, products: string[]): Promise<void> => {
    const res = await fetch(`${server.url}/subscription/${user}/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ creditCard: '4242 4242 4242 4242', products }),
    });
    const status = await (
      await fetch(`${server.url}/subscription/${user}/getStatus`, { method: 'POST' })
    ).json();
    console.log(
      `${user}: HTTP ${res.status} ${await res.text()} — status ${JSON.stringify(status)}; live: ${[...live].join(', ') || 'nothing'}`,
    );
  };
  try {
    await run('ada', ['news', 'music']);
    await run('bob', ['news', 'music', 'sold-out', 'films']);
  } finally {
    await server.close();
    await redis?.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
