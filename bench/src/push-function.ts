/**
 * The push bench's function (a child of push.ts, forked with IPC): the benchmark's services as a
 * Latchkey push deployment, `createEndpointHandler` on `node:http` on a free loopback port. With
 * BENCH_DIRECT=1 it reaches the engine's Redis (LK_REDIS_URL, LK_PREFIX) and runs each attempt
 * itself (direct mode). Sends `{ ready: true, port }`; answers `{ count: true }` with
 * `{ count: n }`, the invoke requests it received so far.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEndpointHandler } from '@latchkey/core';
import { createRedisStore } from '@latchkey/redis-store';
import { services } from './services.js';

const quiet = { ...console, log() {}, info() {}, warn() {}, debug() {} };
const direct = process.env['BENCH_DIRECT'] === '1';
const store = direct
  ? createRedisStore({
      url: process.env['LK_REDIS_URL']!,
      prefix: process.env['LK_PREFIX']!,
      logger: quiet,
    })
  : undefined;
const handler = createEndpointHandler({ services, logger: quiet, ...(store ? { store } : {}) });
let invokes = 0;
const server = createServer((req, res) => {
  if (req.url?.includes('/invoke/')) invokes++;
  handler(req, res);
});
server.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
process.on('message', (m: { count?: boolean }) => {
  if (m.count) process.send?.({ count: invokes });
});
const close = (): void => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', close);
process.on('disconnect', close);
process.send?.({ ready: true, port: (server.address() as AddressInfo).port });
