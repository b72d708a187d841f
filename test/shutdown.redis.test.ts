/**
 * SIGTERM drains a worker gracefully: a handler waiting on a durable timer is
 * suspended (not abandoned to a lease expiry), the process exits cleanly, and
 * another worker finishes the invocation.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { LatchkeyServer } from '@latchkey/core';
import { createRedisStore } from '@latchkey/redis-store';
import { holder } from './fixtures/fifo-services.mjs';
import {
  deletePrefix,
  get,
  newPrefix,
  post,
  spawnWorker,
  startServer,
  until,
  type WorkerProcess,
} from './helpers/harness.js';

const redisTarget = inject('redisTarget');

describe('graceful shutdown', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('suspends waiting handlers on SIGTERM and exits; another worker completes them', async () => {
    const prefix = newPrefix();
    const ingress: LatchkeyServer = await startServer(redisTarget, prefix, [holder], {
      workers: false,
    });
    const store = createRedisStore({ ...redisTarget, prefix });
    await store.init();
    const workers: WorkerProcess[] = [];
    cleanup.push(async () => {
      for (const w of workers) await w.kill('SIGKILL');
      await ingress.close();
      await store.close();
      await deletePrefix(redisTarget, prefix);
    });
    const env = { LK_SERVICES: 'fifo-services.mjs' };
    const first = await spawnWorker(redisTarget, prefix, { env });
    workers.push(first);

    const sent = await post(ingress.url, '/holder/h1/hold/send', 8000);
    expect(sent.status).toBe(202);
    const id = (sent.body as { invocationId: string }).invocationId;
    await until('the sleep to be journaled', async () =>
      (await store.describe(id, true))?.journal?.some((e) => e.k === 'sleep'),
    );

    first.proc.kill('SIGTERM');
    const exit = await first.exited;
    expect(exit.code).toBe(0);
    // The lease was handed back, not left to expire: the invocation is suspended on its timer.
    const info = await store.describe(id);
    expect(info?.status).toBe('suspended');
    expect(info?.attempts).toBe(0);

    const second = await spawnWorker(redisTarget, prefix, { env });
    workers.push(second);
    const out = await get(ingress.url, `/restate/invocation/${id}/attach`);
    expect(out).toEqual({ status: 200, body: 'held' });
    const done = await store.describe(id, true);
    expect(done?.journal?.filter((e) => e.k === 'sleep')).toHaveLength(1);
    expect(done?.attempts).toBe(0);
  });
});
