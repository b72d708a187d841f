/**
 * Fencing (DESIGN §2.4, §3 "BullMQ delivers; Redis decides"): a worker frozen
 * (SIGSTOP) past its lease while another worker takes the key over must not get
 * a single write in once it runs again (SIGCONT).
 *
 * The `fencer` object of fixtures/fifo-services.mjs runs steps a, (get+set count),
 * b, c. Worker 1 runs `a`, enters `b`, writes `<flag>.blocked` and blocks its own
 * event loop inside the closure until the test creates `<flag>`; the test freezes
 * it with SIGSTOP there. Worker 2 takes the invocation over after the lease expires, replays `a`,
 * and waits inside its own `b` on a release key. The test then resumes worker 1:
 * the first thing it does is commit `b` with its stale epoch, which the store must
 * refuse (observed with MONITOR), then releases worker 2, which completes.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import type { LatchkeyServer } from '@latchkey/core';
import { fenceKeys, services } from './fixtures/fifo-services.mjs';
import { startMonitor, type Monitor } from './helpers/monitor.js';
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
import { keysOnMasters, rawClient, type RawRedis } from './helpers/redis.js';

const redisTarget = inject('redisTarget');
const ENV = { LK_SERVICES: 'fifo-services.mjs' };

/** The invocation hash, found by the id (the test reads the attempt's `w` and epoch fields). */
async function invHash(r: RawRedis, prefix: string, id: string): Promise<Record<string, string>> {
  const keys = await keysOnMasters(r, `${prefix}:{*}:inv:${id}`);
  expect(keys).toHaveLength(1);
  return r.hgetall(keys[0]!);
}

describe('fencing a frozen worker', () => {
  const prefix = newPrefix();
  const dir = mkdtempSync(join(tmpdir(), 'lk-fence-'));
  const workers: WorkerProcess[] = [];
  let server: LatchkeyServer | undefined;
  const conns: RawRedis[] = [];
  const monitors: Monitor[] = [];

  afterEach(async () => {
    for (const w of workers) {
      if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGCONT');
      await w.kill('SIGKILL');
    }
    workers.length = 0;
    await server?.close();
    server = undefined;
    for (const c of conns) c.disconnect();
    conns.length = 0;
    for (const m of monitors) m.close();
    monitors.length = 0;
  });

  afterAll(async () => {
    await deletePrefix(redisTarget, prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a resumed zombie's writes after another worker took the key over", async () => {
    const r = rawClient(redisTarget);
    conns.push(r);
    const flag = join(dir, 'resume');
    const k = fenceKeys(prefix, 'f1');
    server = await startServer(redisTarget, prefix, services, { workers: false });
    const w1 = await spawnWorker(redisTarget, prefix, {
      env: { ...ENV, LK_FENCE_FREEZE_UNTIL: flag },
    });
    workers.push(w1);

    const sent = await post(server.url, '/fencer/f1/work/send');
    expect(sent.status).toBe(202);
    const id = (sent.body as { invocationId: string }).invocationId;

    // Worker 1 committed `a` and is blocked inside `b`'s closure: freeze it there.
    await until('worker 1 to block in step b', () => existsSync(`${flag}.blocked`));
    expect(await r.lrange(k.marks, 0, -1)).toEqual([`a:${w1.pid}`, `b-start:${w1.pid}`]);
    w1.proc.kill('SIGSTOP');
    const first = await invHash(r, prefix, id);
    expect(first['st']).toBe('running');
    expect(first['w']).toContain(`:${w1.pid}:`);
    const staleEpoch = first['rep']!;
    expect((await server.store.describe(id, true))?.journal).toEqual([
      { k: 'run', n: 'a', v: w1.pid },
    ]);

    // Worker 2 takes the invocation over once worker 1's lease expired, and waits inside its own `b`.
    const w2 = await spawnWorker(redisTarget, prefix, { env: ENV });
    workers.push(w2);
    await until(
      'worker 2 to take over and enter step b',
      async () => (await r.lrange(k.marks, 0, -1)).includes(`b-start:${w2.pid}`),
      45_000,
    );
    const second = await invHash(r, prefix, id);
    expect(second['st']).toBe('running');
    expect(second['w']).toContain(`:${w2.pid}:`);
    expect(Number(second['rep'])).toBeGreaterThan(Number(staleEpoch));

    // Watch every command Redis executes, then resume worker 1: its closure returns and it commits
    // step b with its stale epoch while worker 2 owns the key.
    const mon = await startMonitor(redisTarget);
    monitors.push(mon);
    const zombieWrites: string[][] = [];
    mon.on(({ args, source }) => {
      if (source === 'lua' || String(args[0]).toLowerCase() !== 'evalsha') return;
      const numKeys = Number(args[2]);
      const argv = args.slice(3 + numKeys);
      // Fenced scripts take (id, epoch, ...) as their first arguments; 3 keys = the lease heartbeat.
      if (argv[0] === id && argv[1] === staleEpoch && numKeys >= 4) zombieWrites.push(args);
    });
    writeFileSync(flag, '');
    w1.proc.kill('SIGCONT');
    await until('worker 1 to try to commit with its stale epoch', () => zombieWrites.length > 0);
    await until('worker 1 to finish its closure', async () =>
      (await r.lrange(k.marks, 0, -1)).includes(`b-end:${w1.pid}`),
    );

    // Refused: the journal still holds only `a` (worker 2 has not committed `b` yet), the state is untouched,
    // and worker 2 still owns the invocation.
    expect((await server.store.describe(id, true))?.journal).toEqual([
      { k: 'run', n: 'a', v: w1.pid },
    ]);
    expect((await server.store.getState('fencer', 'f1')).get('count')).toBeUndefined();
    const during = await invHash(r, prefix, id);
    expect(during['st']).toBe('running');
    expect(during['rep']).toBe(second['rep']);
    expect(w1.proc.exitCode).toBeNull(); // resumed, alive, and refused (not killed)

    // Release worker 2: it completes the invocation.
    await r.set(k.release, '1');
    const out = await get(server.url, `/restate/invocation/${id}/attach`);
    expect(out.status).toBe(200);
    // `a` keeps worker 1's recorded result; the rest is worker 2's.
    expect(out.body).toEqual({ a: w1.pid, b: w2.pid, c: w2.pid, count: 1 });

    const info = await server.store.describe(id, true);
    expect(info?.status).toBe('completed');
    // Each step exactly once, in order: nothing of worker 1's `b` batch, no duplicates, no interleaving.
    expect(info?.journal).toEqual([
      { k: 'run', n: 'a', v: w1.pid },
      { k: 'get', n: 'count', v: null },
      { k: 'set', n: 'count', v: 1 },
      { k: 'run', n: 'b', v: w2.pid },
      { k: 'run', n: 'c', v: w2.pid },
    ]);
    expect((await server.store.getState('fencer', 'f1')).get('count')).toBe('1');
    // Side effects: `a` ran once (worker 2 replayed it); `b` ran once on each worker.
    const marks = await r.lrange(k.marks, 0, -1);
    expect([...marks].sort()).toEqual(
      [
        `a:${w1.pid}`,
        `b-start:${w1.pid}`,
        `b-end:${w1.pid}`,
        `b-start:${w2.pid}`,
        `b-end:${w2.pid}`,
      ].sort(),
    );

    // The key is free again and the counter stays exact: a second call (either worker) counts 2.
    const again = await post(server.url, '/fencer/f1/work');
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ count: 2 });
    expect((await server.store.getState('fencer', 'f1')).get('count')).toBe('2');
    // Worker 1 wrote nothing more for the first invocation after all this.
    expect((await server.store.describe(id, true))?.journal).toHaveLength(5);
  });
});
