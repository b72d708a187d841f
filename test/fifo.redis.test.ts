/**
 * Single writer per key and FIFO per key (DESIGN §2.4), across worker processes:
 * three worker child processes serve the `probe`/`holder` objects of
 * fixtures/fifo-services.mjs; the test process runs an ingress only.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LatchkeyServer } from '@latchkey/core';
import { probeKeys, services, violationsKey } from './fixtures/fifo-services.mjs';
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
import { rawClient, type RawRedis } from './helpers/redis.js';

const redisTarget = inject('redisTarget');

const WORKERS = 3;
const KEYS = 50;
const PER_KEY = 40; // 50 × 40 = 2,000 calls

/** Spawns `n` workers; if one fails to start, kills the others before rethrowing. */
async function spawnWorkers(n: number, prefix: string, into: WorkerProcess[]): Promise<void> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, () =>
      spawnWorker(redisTarget, prefix, { env: { LK_SERVICES: 'fifo-services.mjs' } }),
    ),
  );
  for (const r of results) if (r.status === 'fulfilled') into.push(r.value);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Removes consecutive repeats (a ctx.run closure may run again after a lost lease). */
function dedupeRuns<T>(xs: T[]): T[] {
  return xs.filter((x, i) => i === 0 || x !== xs[i - 1]);
}

describe('exclusive handlers across 3 worker processes', () => {
  const prefix = newPrefix();
  const workers: WorkerProcess[] = [];
  let server: LatchkeyServer | undefined;
  let r: RawRedis;

  beforeAll(async () => {
    r = rawClient(redisTarget);
    server = await startServer(redisTarget, prefix, services, { workers: false });
    await spawnWorkers(WORKERS, prefix, workers);
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await server?.close();
    r?.disconnect();
    await deletePrefix(redisTarget, prefix);
  });

  it('runs 2,000 calls on 50 keys in acceptance order, never two exclusive handlers of one key at once', async () => {
    const srv = server!;
    const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`);

    // Acceptance order: per key, each send is acknowledged (202) before the next is sent; keys in parallel.
    const ids = new Map<string, string[]>();
    await Promise.all(
      keys.map(async (key) => {
        const list: string[] = [];
        ids.set(key, list);
        for (let seq = 0; seq < PER_KEY; seq++) {
          const res = await post(srv.url, `/probe/${key}/step/send`, seq);
          expect(res.status).toBe(202);
          list.push((res.body as { invocationId: string }).invocationId);
        }
      }),
    );
    expect([...ids.values()].flat().length).toBe(KEYS * PER_KEY);

    // Wait until every key's journaled order holds all its calls.
    const orders = await until(
      'all 2,000 calls to complete',
      async () => {
        const states = await Promise.all(keys.map((key) => srv.store.getState('probe', key)));
        const out = new Map<string, number[]>();
        for (const [i, st] of states.entries()) {
          const raw = st.get('order');
          const order = raw === undefined ? [] : (JSON.parse(raw) as number[]);
          if (order.length < PER_KEY) return undefined;
          out.set(keys[i]!, order);
        }
        return out;
      },
      90_000,
      250,
    );

    const expected = Array.from({ length: PER_KEY }, (_, i) => i);
    // Execution order per key (as committed to the key's state) equals acceptance order.
    for (const key of keys) expect(orders.get(key), `order of ${key}`).toEqual(expected);

    // The probe never saw two invocations active on one key.
    const violations = await r.lrange(violationsKey(prefix), 0, -1);
    expect(violations).toEqual([]);

    // The probe really ran around every call: its side-effect log is in order too, and every
    // handler left the key.
    const pids = new Set<number>();
    let multiWorkerKeys = 0;
    for (const key of keys) {
      const k = probeKeys(prefix, key);
      const log = await r.lrange(k.log, 0, -1);
      const seqs = dedupeRuns(log.map((e) => Number(e.split(':')[0])));
      expect(seqs, `probe log of ${key}`).toEqual(expected);
      const keyPids = new Set(log.map((e) => Number(e.split(':')[1])));
      for (const p of keyPids) pids.add(p);
      if (keyPids.size > 1) multiWorkerKeys++;
      expect(await r.scard(k.active), `active set of ${key}`).toBe(0);
    }
    // The work was spread over the worker processes (so the lock was contended across processes).
    expect([...pids].sort()).toEqual(workers.map((w) => w.pid).sort());
    expect(multiWorkerKeys).toBeGreaterThan(KEYS / 2);

    // Every invocation completed with its own result.
    const infos = await Promise.all(
      keys.flatMap((key) =>
        ids.get(key)!.map(async (id, seq) => ({ seq, info: await srv.store.describe(id) })),
      ),
    );
    for (const { seq, info } of infos) {
      expect(info?.status).toBe('completed');
      expect(info?.outcome).toEqual({ ok: true, value: String(seq) });
    }
  });

  it('answers a shared handler on a key while its exclusive handler sleeps', async () => {
    const srv = server!;
    const key = 'h1';
    const hold = await post(srv.url, `/holder/${key}/hold/send`, 4000);
    expect(hold.status).toBe(202);
    const holdId = (hold.body as { invocationId: string }).invocationId;
    // An exclusive call queued behind `hold`: it must wait for the key.
    const touch = await post(srv.url, `/holder/${key}/touch/send`);
    expect(touch.status).toBe(202);
    const touchId = (touch.body as { invocationId: string }).invocationId;

    // `hold` holds the key and is in its durable sleep (the sleep entry is committed).
    await until('hold to be sleeping', async () => {
      const info = await srv.store.describe(holdId, true);
      return info?.journal?.some((e) => e.k === 'sleep') ?? false;
    });

    const peek = await post(srv.url, `/holder/${key}/peek`);
    const holdAtPeek = await srv.store.describe(holdId);
    const touchAtPeek = await srv.store.describe(touchId);
    expect(peek.status).toBe(200);
    // The shared handler sees the state `hold` committed before sleeping, and not `touch`'s.
    expect(peek.body).toEqual({ phase: 'holding', touched: false });
    // It answered while `hold` still held the key: neither `hold` nor the call queued behind it had completed.
    expect(holdAtPeek?.status).not.toBe('completed');
    expect(holdAtPeek?.outcome).toBeUndefined();
    expect(touchAtPeek?.status).not.toBe('completed');

    // Then `hold` finishes, and `touch` runs after it (FIFO) and sees its final state.
    const held = await get(srv.url, `/restate/invocation/${holdId}/attach`);
    expect(held).toEqual({ status: 200, body: 'held' });
    const touched = await get(srv.url, `/restate/invocation/${touchId}/attach`);
    expect(touched).toEqual({ status: 200, body: 'done' });
    expect((await post(srv.url, `/holder/${key}/peek`)).body).toEqual({
      phase: 'done',
      touched: true,
    });
  });
});
