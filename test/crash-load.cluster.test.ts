/**
 * Crash under load on the Redis Cluster of the `redis-cluster` pass: an ingress-only process and
 * three worker processes; while adds to counters spread over every master keep arriving, each of
 * the three workers is SIGKILLed in turn (a fresh one started in its place). Every add completes,
 * each counter reads exactly the number of adds sent to it, and each add saw exactly the adds
 * before it (answers 1..n per counter), whatever worker died under it. Run by the
 * `redis-cluster` pass only (the standalone passes have test/crash.redis.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { services } from './fixtures/crash-services.mjs';
import {
  deletePrefix,
  newPrefix,
  post,
  spawnWorker,
  startServer,
  until,
  type WorkerProcess,
} from './helpers/harness.js';

const redisTarget = inject('redisTarget');
const COUNTERS = 12;
const ADDS = 10;
const RECOVERY_MS = 90_000;

describe('three worker processes SIGKILLed under load on the cluster', () => {
  it('every add completes once: counters exact, each add answered with its own count', async ({
    onTestFinished,
  }) => {
    const prefix = newPrefix();
    const workers: WorkerProcess[] = [];
    const ingress = await startServer(redisTarget, prefix, services, { workers: false });
    onTestFinished(async () => {
      await Promise.all(workers.map((w) => w.kill('SIGKILL').catch(() => undefined)));
      await ingress.close().catch(() => undefined);
      await deletePrefix(redisTarget, prefix);
    });
    const start = async (): Promise<WorkerProcess> => {
      const w = await spawnWorker(redisTarget, prefix, {
        env: { LK_SERVICES: 'crash-services.mjs' },
      });
      workers.push(w);
      return w;
    };
    const live = [await start(), await start(), await start()];
    const run = randomUUID().slice(0, 8);
    const keys = Array.from({ length: COUNTERS }, (_, c) => `c${c}-${run}`);

    // Twelve clients, one per counter, each sending an add and waiting for its outcome before the
    // next, until the three kills are done and it sent at least ADDS.
    const ids = new Map<string, string[]>(keys.map((k) => [k, []]));
    let answered = 0;
    let killed = 0;
    const clients = Promise.all(
      keys.map(async (key) => {
        const mine = ids.get(key)!;
        while (killed < 3 || mine.length < ADDS) {
          const r = await post(ingress.url, `/counter/${key}/add/send`, 1);
          expect(r.status).toBe(202);
          const id = (r.body as { invocationId: string }).invocationId;
          mine.push(id);
          expect((await ingress.store.awaitOutcome(id)).ok).toBe(true);
          answered++;
        }
      }),
    );

    // Kill the three workers one after the other under that load, each replaced at once.
    for (let k = 0; k < 3; k++) {
      const floor = answered + 2 * COUNTERS;
      await until(`${floor} adds answered`, () => answered >= floor, RECOVERY_MS, 20);
      await live.shift()!.kill('SIGKILL');
      killed++;
      live.push(await start());
    }
    await clients;

    for (const key of keys) {
      // Each add answered the count it made: 1..ADDS in acceptance order, none lost or doubled.
      const sent = ids.get(key)!;
      const outs = await Promise.all(
        sent.map(async (id) => {
          const o = await ingress.store.awaitOutcome(id);
          return o.ok ? (JSON.parse(o.value!) as number) : o.error;
        }),
      );
      expect(outs).toEqual(Array.from({ length: sent.length }, (_, i) => i + 1));
      expect((await post(ingress.url, `/counter/${key}/get`)).body).toBe(sent.length);
    }
  }, 240_000);
});
