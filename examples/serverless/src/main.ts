/**
 * The saga on a push deployment, end to end in one process: the function (function.ts on
 * node:http), an engine with no services of its own that registers it, and two subscriptions
 * through the engine's ingress: one that succeeds, one whose third product is sold out and is
 * rolled back. The engine keeps the journal in Redis and pushes every step to the function.
 *
 *   npm run build && node examples/serverless/dist/main.js
 */
import { randomUUID } from 'node:crypto';
import { serve } from '@latchkey/core';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { startLocalFunction } from './local-function.js';

async function post(base: string, path: string, body?: unknown): Promise<[number, string]> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return [res.status, await res.text()];
}

async function main(): Promise<void> {
  const fn = await startLocalFunction();
  console.log(`function listening on ${fn.url}`);
  let redis: LocalRedis | undefined;
  let url = process.env['REDIS_URL'];
  if (!url) {
    redis = await startLocalRedis();
    url = redis.url;
  }
  const engine = await serve({
    services: [],
    deployments: [fn.url],
    redis: url,
    port: 0,
    handleSignals: false,
  });
  console.log(`engine on ${engine.url}, serving the function's services`);
  const run = async (name: string, products: string[]): Promise<void> => {
    // A fresh id per run: a workflow runs once per key, also on a REDIS_URL kept between runs.
    const user = `${name}-${randomUUID().slice(0, 4)}`;
    const [status, result] = await post(engine.url, `/subscription/${user}/run`, {
      creditCard: '4242 4242 4242 4242',
      products,
    });
    const [, saga] = await post(engine.url, `/subscription/${user}/getStatus`);
    const [, account] = await post(engine.url, `/billing/${user}/account`);
    console.log(`\n${user}: HTTP ${status} ${result}\n  status ${saga}`);
    const { live, log } = JSON.parse(account) as { live: string[]; log: string[] };
    console.log(`  live: ${live.join(', ') || 'nothing'}`);
    for (const line of log) console.log(`  billing: ${line}`);
  };
  try {
    await run('ada', ['news', 'music']);
    await run('bob', ['news', 'music', 'sold-out', 'films']);
  } finally {
    await engine.close();
    await fn.close();
    await redis?.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
