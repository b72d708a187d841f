/**
 * The task queue end to end in one process: serves `taskWorker`, submits three
 * tasks (one delayed, one submitted twice) and prints their results.
 *
 *   npm run build && node examples/task-queue/dist/main.js
 */
import { serve } from '@latchkey/core';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { TaskQueue } from './queue.js';
import { taskWorker } from './task-worker.js';

const kinds = {
  thumbnail: async (payload: unknown) => ({ thumbnail: `${String(payload)}@128px` }),
  report: async (payload: unknown) => ({ pages: String(payload).length }),
};

async function main(): Promise<void> {
  let redis: LocalRedis | undefined;
  let url = process.env['REDIS_URL'];
  if (!url) {
    redis = await startLocalRedis();
    url = redis.url;
  }
  const server = await serve({
    services: [taskWorker(kinds)],
    redis: url,
    port: 0,
    handleSignals: false,
  });
  const queue = new TaskQueue(server.url);
  try {
    const a = await queue.submit({ id: 'task-1', kind: 'thumbnail', payload: 'cat.png' });
    const b = await queue.submit(
      { id: 'task-2', kind: 'report', payload: 'quarterly' },
      { delayMs: 1000 },
    );
    const again = await queue.submit({ id: 'task-1', kind: 'thumbnail', payload: 'cat.png' });
    console.log('submitted:', a.status, b.status, `task-1 again: ${again.status}`);
    console.log('task-1 ->', JSON.stringify(await a.result()));
    console.log('task-2 ->', JSON.stringify(await b.result()), '(delayed by 1 s)');
  } finally {
    await server.close();
    await redis?.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
