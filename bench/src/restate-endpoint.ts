/**
 * The benchmark's services on Restate (a child of run.ts, forked with IPC):
 * the shared handler source (`bench-services.ts`) given
 * `@restatedev/restate-sdk`'s factories, served as an HTTP/2 (h2c) endpoint
 * on a free loopback port. Sends `{ ready: true, port }` once listening.
 *
 * `./polyfill.js` comes first: SDK 1.17 calls `Promise.withResolvers`, which
 * Node 20 lacks (without it every invocation fails and is retried forever).
 */
import './polyfill.js';
import { createServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as restate from '@restatedev/restate-sdk';
import {
  defineBenchServices,
  type BenchContext,
  type BenchObjectContext,
} from './bench-services.js';

// Compile-time check that Restate's contexts have what the shared handlers use.
const contextsFit: [BenchContext, BenchObjectContext, BenchContext] = [] as unknown as [
  restate.Context,
  restate.ObjectContext,
  restate.WorkflowContext,
];
void contextsFit;

type RestateDefinition = Parameters<ReturnType<typeof restate.endpoint>['bind']>[0];

const defs = defineBenchServices<RestateDefinition>({
  service: restate.service,
  object: restate.object,
  workflow: restate.workflow as never,
});
const endpoint = restate.endpoint();
for (const d of defs) endpoint.bind(d);

const server = createServer(endpoint.http2Handler());
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => resolve());
});

let closing = false;
const close = (): void => {
  if (closing) return;
  closing = true;
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', close);
process.on('SIGINT', close);
process.on('disconnect', () => {
  // The harness went away without stopping us: stop the restate-server it started too.
  const pid = Number(process.env['BENCH_RESTATE_SERVER_PID']);
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  close();
});
process.send?.({ ready: true, port: (server.address() as AddressInfo).port });
