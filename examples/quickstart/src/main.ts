/**
 * The quickstart, end to end: starts a private redis-server (unless REDIS_URL
 * is set), serves the services, calls them over HTTP, prints the results.
 *
 *   npm run example
 */
import { serve } from '@latchkey/core';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { counter, greeter, signup } from './services.js';

async function post(
  base: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
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
    console.log(`started a private redis-server at ${url}`);
  }
  const server = await serve({
    services: [greeter, counter, signup],
    redis: url,
    port: 0,
    handleSignals: false,
  });
  const base = server.url;
  console.log(`latchkey serving on ${base}`);
  try {
    console.log('greeter/greet      ->', await post(base, '/greeter/greet', { name: 'Ada' }));
    for (let i = 1; i <= 3; i++)
      console.log(`counter/apples/add ->`, await post(base, '/counter/apples/add', i));
    console.log('counter/apples/get ->', await post(base, '/counter/apples/get'));
    const sent = await post(base, '/signup/ada@example.com/run/send', 'ada@example.com');
    console.log('signup submitted   ->', sent);
    const again = await post(base, '/signup/ada@example.com/run/send', 'ada@example.com');
    console.log('submitted again    ->', again);
    const id = (sent as { invocationId: string }).invocationId;
    const res = await fetch(`${base}/restate/invocation/${id}/attach`);
    console.log('signup result      ->', await res.json());
    console.log('signup stage       ->', await post(base, '/signup/ada@example.com/stage'));
  } finally {
    await server.close();
    await redis?.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
