/**
 * Redis is SIGKILLed and restarted (AOF, appendfsync always) while workers and an
 * ingress run under load. Every acknowledged invocation must complete, counters
 * must be exact, and a workflow sleeping through the outage must finish with each
 * step recorded once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Entry, InvocationInfo } from '@latchkey/core';
import { createRedisStore, partitionOfId, type RedisStore } from '@latchkey/redis-store';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import {
  FAST_TIMINGS,
  get,
  newPrefix,
  post,
  quietLogger,
  spawnWorker,
  until,
  type WorkerProcess,
} from './helpers/harness.js';
import { onClusterPass } from './helpers/redis.js';

const SERVICES = { LK_SERVICES: 'restart-services.mjs' };
const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'];
const ADDS = 300;
const SENDERS = 32;
/** Redis dies once this many adds are acknowledged, or KILL_AT_LATEST ms after the workflows slept, whichever is first. */
const KILL_AFTER_ACKS = 100;
const KILL_AT_LATEST = 1000;
const OUTAGE_MS = 1500;
/** Workflows and their sleeps: short ones tend to fall due while Redis is down, the long one after it is back. */
const WORKFLOWS: [string, number][] = [
  ['w0', 800],
  ['w1', 1600],
  ['w2', 4000],
];

interface Send {
  key: string;
  idem: string;
  id?: string;
  /** HTTP attempts it took to get a 202 (failed requests during the outage are retried with the same idempotency key). */
  tries: number;
  ackedAt?: number;
}

/**
 * Sends until acknowledged: a request that failed (connection error or 5xx)
 * may or may not have been accepted, so it is retried with the same
 * idempotency key; the ingress answers the original invocation id if it was.
 */
async function sendUntilAcked(
  base: string,
  path: string,
  body: unknown,
  idem: string,
  deadline: number,
): Promise<{ id: string; tries: number }> {
  for (let tries = 1; ; tries++) {
    try {
      const r = await post(base, path, body, { 'idempotency-key': idem });
      if (r.status === 202) {
        const b = r.body as { invocationId: string; status: string };
        expect(b.status === 'Accepted' || b.status === 'PreviouslyAccepted').toBe(true);
        return { id: b.invocationId, tries };
      }
      if (r.status < 500)
        throw new Error(`send ${path} rejected with ${r.status}: ${JSON.stringify(r.body)}`);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith('send ')) throw e;
      // connection error: retried below
    }
    if (Date.now() > deadline)
      throw new Error(`send ${path} (${idem}) not acknowledged before the deadline`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Skipped on the cluster pass (onClusterPass): this file never uses the project's Redis, as it
// SIGKILLs and restarts its own standalone redis-server; there it would only repeat the `redis`
// pass.
describe.skipIf(onClusterPass)(
  'Redis SIGKILLed and restarted under load (AOF, appendfsync always)',
  () => {
    const prefix = newPrefix();
    let redis: LocalRedis;
    let probe: RedisStore;
    const workers: WorkerProcess[] = [];
    /** The kill/restart in progress, and the timer that may start it (awaited before Redis is stopped). */
    let outage: Promise<void> | undefined;
    let latest: NodeJS.Timeout | undefined;

    beforeAll(async () => {
      redis = await startLocalRedis({ appendfsync: 'always' });
      // Two worker processes; the first also runs the ingress.
      workers.push(await spawnWorker({ url: redis.url }, prefix, { ingress: true, env: SERVICES }));
      workers.push(await spawnWorker({ url: redis.url }, prefix, { env: SERVICES }));
      // A store in the test process, only to read invocations and state.
      probe = createRedisStore({ url: redis.url, prefix, ...FAST_TIMINGS, logger: quietLogger });
      // RedisStore leaves its BullMQ queues without an 'error' listener, so BullMQ console.errors
      // every reconnect attempt during the outage; silence the probe's (reported to the lead).
      for (const q of (probe as unknown as { queues?: { on(e: 'error', f: () => void): void }[] })
        .queues ?? [])
        q.on('error', () => undefined);
      await probe.init();
    });

    afterAll(async () => {
      clearTimeout(latest);
      await outage?.catch(() => undefined); // never stop Redis while a restart could still relaunch it
      await Promise.all(workers.map((w) => w.kill()));
      await probe?.close();
      await redis?.stop();
    });

    it('completes every acknowledged invocation exactly once and keeps counters exact', async () => {
      const base = `http://127.0.0.1:${workers[0]!.port}`;
      const deadline = Date.now() + 60_000;

      // Workflows that will be sleeping when Redis dies.
      const flows = new Map<string, string>();
      for (const [w, sleepMs] of WORKFLOWS) {
        const r = await post(base, `/rflow/${w}/run/send`, { sleepMs });
        expect(r.status).toBe(202);
        flows.set(w, (r.body as { invocationId: string }).invocationId);
      }
      await until(
        'every workflow to have committed its sleep',
        async () => {
          for (const id of flows.values()) {
            const info = await probe.describe(id, true);
            if (!info?.journal?.some((e) => e.k === 'sleep')) return false;
          }
          return true;
        },
        30_000,
      );

      // Counter adds, spread over KEYS, sent concurrently; Redis dies after KILL_AFTER_ACKS acks.
      const sends: Send[] = Array.from({ length: ADDS }, (_, i) => ({
        key: KEYS[i % KEYS.length]!,
        idem: `add-${i}`,
        tries: 0,
      }));
      let acked = 0;
      let next = 0;
      let killedAt = 0;
      let restartedAt = 0;
      const bounce = async (): Promise<void> => {
        await redis.kill(true);
        killedAt = Date.now();
        await new Promise((r) => setTimeout(r, OUTAGE_MS)); // the outage itself, not a wait for a condition
        restartedAt = Date.now();
        await redis.restart();
      };
      const trigger = (): void => {
        outage ??= bounce();
      };
      latest = setTimeout(trigger, KILL_AT_LATEST);
      const sender = async (): Promise<void> => {
        while (next < sends.length) {
          const s = sends[next++]!;
          const r = await sendUntilAcked(base, `/rcounter/${s.key}/add/send`, 1, s.idem, deadline);
          s.id = r.id;
          s.tries = r.tries;
          s.ackedAt = Date.now();
          acked++;
          if (acked >= KILL_AFTER_ACKS) trigger();
        }
      };
      await Promise.all(Array.from({ length: SENDERS }, () => sender()));
      clearTimeout(latest);
      expect(outage).toBeDefined();
      await outage;
      expect(killedAt).toBeGreaterThan(0);
      expect(restartedAt).toBeGreaterThan(killedAt);
      expect(acked).toBe(ADDS);
      // Adds were still being acknowledged after the restart began (Redis was down before it):
      // the outage happened mid-load.
      expect(sends.filter((s) => s.ackedAt! > restartedAt).length).toBeGreaterThan(0);
      expect(new Set(sends.map((s) => s.id)).size).toBe(ADDS);

      // Every acknowledged add completes.
      const done = new Map<string, InvocationInfo>();
      await until(
        'every acknowledged add to complete',
        async () => {
          for (const s of sends) {
            if (done.has(s.id!)) continue;
            const info = await probe.describe(s.id!);
            if (info?.status === 'completed') done.set(s.id!, info);
          }
          return done.size === ADDS;
        },
        60_000,
        200,
      );

      // Counters are exact, and each key's adds returned 1..n, each value once (no add ran twice or was lost).
      for (const key of KEYS) {
        const mine = sends.filter((s) => s.key === key);
        const values = mine.map((s) => {
          const o = done.get(s.id!)!.outcome!;
          expect(o.ok, `add ${s.idem} failed: ${JSON.stringify(o)}`).toBe(true);
          return JSON.parse((o as { value: string }).value) as number;
        });
        expect(values.sort((a, b) => a - b)).toEqual(mine.map((_, i) => i + 1));
        const state = await probe.getState('rcounter', key);
        expect(state.get('count')).toBe(String(mine.length));
        const read = await post(base, `/rcounter/${key}/get`);
        expect(read).toMatchObject({ status: 200, body: mine.length });
      }

      // The workflows slept through the outage and finished with each step recorded once.
      const dues: number[] = [];
      for (const [w, id] of flows) {
        const out = await get(base, `/restate/invocation/${id}/attach`);
        expect(out.status).toBe(200);
        const value = out.body as { a: number; b: number; c: number };
        const info = (await probe.describe(id, true))!;
        expect(info.status).toBe('completed');
        const journal = info.journal!;
        expect(journal.map((e) => `${e.k}:${'n' in e ? e.n : ''}`)).toEqual([
          'set:stage',
          'run:a',
          'set:stage',
          'sleep:nap',
          'run:b',
          'set:stage',
          'run:c',
          'set:stage',
        ]);
        const run = (n: string): Entry => journal.find((e) => e.k === 'run' && e.n === n)!;
        expect(value).toEqual({
          a: (run('a') as { v: number }).v,
          b: (run('b') as { v: number }).v,
          c: (run('c') as { v: number }).v,
        });
        // The sleep ended no earlier than its due time (store clock).
        const due = (journal.find((e) => e.k === 'sleep') as { due: number }).due;
        const finished = Number(
          await probe.redis.hget(probe.keys.inv(partitionOfId(id, 16)!, id), 'ft'),
        );
        expect(finished).toBeGreaterThanOrEqual(due);
        dues.push(due);
        expect((await post(base, `/rflow/${w}/stage`)).body).toBe('done');
      }

      // At least one sleep was still pending when Redis died (same host clock as Redis TIME).
      expect(Math.max(...dues)).toBeGreaterThan(killedAt);

      // The AOF kept the boot marker: a restart is not mistaken for a wipe.
      expect(probe.wiped).toBe(false);
      for (const w of workers) expect(w.proc.exitCode).toBeNull();
    });
  },
);
