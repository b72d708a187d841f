/**
 * One Latchkey process of the benchmark (a child of run.ts, forked with IPC):
 * `serve()` with workers and the HTTP/WebSocket ingress on a free loopback
 * port, or (LK_ROLE) only one of them: `ingress` runs no workers, `worker` no
 * ingress (the production shape: separate ingress and worker processes).
 * Env: LK_REDIS_URL (or `cluster:host:port,…`), LK_PREFIX, LK_STORE_OPTIONS (JSON), LK_ROLE
 * (`all`, the default, `ingress` or `worker`), LK_TRACING (the tracing overhead
 * script's configurations: `default`, the default, passes no tracing option, so
 * Latchkey uses whatever global provider there is, none here; `off` passes
 * `tracing: false`; `api` registers a global SDK provider whose exporter drops
 * every span, `tracing-provider.ts`), LK_METRICS (`1`: `metrics: true`).
 * Sends `{ ready: true, url }` once serving (`url` empty for a worker;
 * answers a `{ spans: true }` message with `{ spans: n }`, the spans exported so
 * far, 0 unless `api`); closes on SIGTERM or when the parent goes away.
 */
import {
  serve,
  type Context,
  type ObjectContext,
  type ServeOptions,
  type WorkflowContext,
} from '@latchkey/core';
import type { BenchContext, BenchObjectContext } from './bench-services.js';
import { services } from './services.js';

// Compile-time check that Latchkey's contexts have what the shared handlers use.
const contextsFit: [BenchContext, BenchObjectContext, BenchContext] = [] as unknown as [
  Context,
  ObjectContext,
  WorkflowContext,
];
void contextsFit;

const redisUrl = process.env['LK_REDIS_URL'];
if (!redisUrl) throw new Error('LK_REDIS_URL is not set');
// `cluster:host:port,…`: a Redis Cluster by its seed nodes (run.js --cluster).
const redis = redisUrl.startsWith('cluster:')
  ? { cluster: redisUrl.slice('cluster:'.length).split(',') }
  : redisUrl;
const storeOptions = JSON.parse(process.env['LK_STORE_OPTIONS'] ?? '{}') as Record<string, unknown>;
const role = process.env['LK_ROLE'] ?? 'all';
if (role !== 'all' && role !== 'ingress' && role !== 'worker')
  throw new Error(`LK_ROLE must be all, ingress or worker, got ${role}`);

const tracingMode = process.env['LK_TRACING'] ?? 'default';
if (tracingMode !== 'default' && tracingMode !== 'off' && tracingMode !== 'api')
  throw new Error(`LK_TRACING must be default, off or api, got ${tracingMode}`);
// Loaded only for `api`, so the other configurations never load the SDK.
const tracing =
  tracingMode === 'api'
    ? (await import('./tracing-provider.js')).registerDroppingProvider()
    : undefined;

// LK_METRICS=1: Prometheus metrics on (as with an admin port), else off (no admin port here).
const options: ServeOptions = {
  services,
  redis,
  port: role === 'worker' ? false : 0,
  host: '127.0.0.1',
  workers: role !== 'ingress',
  handleSignals: false,
  storeOptions: { ...storeOptions, prefix: process.env['LK_PREFIX'] ?? 'lk' },
  ...(tracingMode === 'off' ? { tracing: false } : {}),
  ...(process.env['LK_METRICS'] === '1' ? { metrics: true } : {}),
};
const server = await serve(options);

let closing = false;
const close = (): void => {
  if (closing) return;
  closing = true;
  server
    .close()
    .then(() => tracing?.provider.shutdown())
    .then(
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
process.on('message', (m: { spans?: boolean }) => {
  if (!m.spans) return;
  Promise.resolve(tracing?.provider.forceFlush()).then(
    () => process.send?.({ spans: tracing?.exporter.exported ?? 0 }),
    (e: unknown) => console.error(e),
  );
});
process.send?.({ ready: true, url: role === 'worker' ? '' : server.url });
