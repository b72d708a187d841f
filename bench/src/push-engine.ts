/**
 * The push bench's engine (a child of push.ts, forked with IPC): `serve()` with no services of its
 * own, the deployment at LK_DEPLOYMENT registered, its ingress on a free loopback port, on
 * LK_REDIS_URL with prefix LK_PREFIX. Sends `{ ready: true, url }`; closes on SIGTERM or when the
 * parent goes away.
 */
import { serve } from '@latchkey/core';

const quiet = { ...console, log() {}, info() {}, warn() {}, debug() {} };
const server = await serve({
  redis: process.env['LK_REDIS_URL']!,
  storeOptions: { prefix: process.env['LK_PREFIX']!, logger: quiet },
  deployments: [process.env['LK_DEPLOYMENT']!],
  port: 0,
  host: '127.0.0.1',
  handleSignals: false,
  logger: quiet,
});
let closing = false;
const close = (): void => {
  if (closing) return;
  closing = true;
  void server.close().then(() => process.exit(0));
  setTimeout(() => process.exit(0), 5000).unref();
};
process.on('SIGTERM', close);
process.on('disconnect', close);
process.send?.({ ready: true, url: server.url });
