/**
 * The benchmark's services on Restate (a child of run.ts, forked with IPC):
 * the shared handler source (`bench-services.ts`) given
 * `@restatedev/restate-sdk`'s factories, served as an HTTP/2 (h2c) endpoint
 * on a free loopback port; with BENCH_HTTP1=1, as an HTTP/1.1 endpoint in request-response mode
 * (Restate's mode for Lambda and fetch runtimes: one request per step). Sends
 * `{ ready: true, port }` once listening; answers `{ count: true }` with `{ count: n }`, the
 * invoke requests it received so far.
 *
 * `./polyfill.js` comes first: SDK 1.17 calls `Promise.withResolvers`, which
 * Node 20 lacks (without it every invocation fails and is retried forever).
 */
import './polyfill.js';
import { createServer as createHttp1Server } from 'node:http';
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

let invokes = 0;
const counted = <Req extends { url?: string | undefined }, Res>(
  h: (req: Req, res: Res) => void,
): ((req: Req, res: Res) => void) => {
  return (req, res) => {
    if (req.url?.includes('/invoke/')) invokes++;
    h(req, res);
  };
};
const server =
  process.env['BENCH_HTTP1'] === '1'
    ? createHttp1Server(counted(endpoint.http1Handler()))
    : createServer(counted(endpoint.http2Handler()));
process.on('message', (m: { count?: boolean }) => {
  if (m.count) process.send?.({ count: invokes });
});
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
