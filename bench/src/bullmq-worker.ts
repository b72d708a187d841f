/**
 * The raw BullMQ baseline's worker (a child of run.ts, forked with IPC): one
 * `Worker` on the queue `BQ_QUEUE` (key prefix `BQ_PREFIX`) whose processor
 * does nothing and returns null. Env: BQ_REDIS_URL, BQ_CONCURRENCY.
 * Sends `{ ready: true }` once running.
 */
import { Worker } from 'bullmq';

const url = process.env['BQ_REDIS_URL'];
if (!url) throw new Error('BQ_REDIS_URL is not set');
const u = new URL(url);
const worker = new Worker(process.env['BQ_QUEUE'] ?? 'bench', () => Promise.resolve(null), {
  connection: {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  },
  prefix: process.env['BQ_PREFIX'] ?? 'bq',
  concurrency: Number(process.env['BQ_CONCURRENCY'] ?? 128),
  autorun: true,
});
worker.on('error', (e) => console.error('bullmq worker:', e.message));
await worker.waitUntilReady();

let closing = false;
const close = (): void => {
  if (closing) return;
  closing = true;
  worker.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
  setTimeout(() => process.exit(0), 5000).unref();
};
process.on('SIGTERM', close);
process.on('SIGINT', close);
process.on('disconnect', close);
process.send?.({ ready: true });
