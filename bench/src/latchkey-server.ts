/**
 * One Latchkey process of the benchmark (a child of run.ts, forked with IPC):
 * `serve()` with workers and the HTTP/WebSocket ingress on a free loopback
 * port, or (LK_ROLE) only one of them: `ingress` runs no workers, `worker` no
 * ingress (the production shape: separate ingress and worker processes).
 * Env: LK_REDIS_URL, LK_PREFIX, LK_STORE_OPTIONS (JSON), LK_ROLE
 * (`all`, the default, `ingress` or `worker`).
 * Sends `{ ready: true, url }` once serving (`url` empty for a worker); closes
 * on SIGTERM or when the parent goes away.
 */
import { serve, type Context, type ObjectContext, type WorkflowContext } from '@latchkey/core';
import type { BenchContext, BenchObjectContext } from './bench-services.js';
import { services } from './services.js';

// Compile-time check that Latchkey's contexts have what the shared handlers use.
const contextsFit: [BenchContext, BenchObjectContext, BenchContext] = [] as unknown as [
  Context,
  ObjectContext,
  WorkflowContext,
];
void contextsFit;

const redis = process.env['LK_REDIS_URL'];
if (!redis) throw new Error('LK_REDIS_URL is not set');
const storeOptions = JSON.parse(process.env['LK_STORE_OPTIONS'] ?? '{}') as Record<string, unknown>;
const role = process.env['LK_ROLE'] ?? 'all';
if (role !== 'all' && role !== 'ingress' && role !== 'worker')
  throw new Error(`LK_ROLE must be all, ingress or worker, got ${role}`);

const server = await serve({
  services,
  redis,
  port: role === 'worker' ? false : 0,
  host: '127.0.0.1',
  workers: role !== 'ingress',
  handleSignals: false,
  storeOptions: { ...storeOptions, prefix: process.env['LK_PREFIX'] ?? 'lk' },
});

let closing = false;
const close = (): void => {
  if (closing) return;
  closing = true;
  server.close().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', close);
process.on('SIGINT', close);
process.on('disconnect', close);
process.send?.({ ready: true, url: role === 'worker' ? '' : server.url });
