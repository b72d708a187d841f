/**
 * Partition duties (packages/redis-store/src/duties.ts): each partition is swept by exactly one
 * live worker process, the partitions spread over the worker processes (an ingress-only process
 * takes none), a SIGKILLed owner's partitions are taken over and their overdue work dispatched
 * (timers included, never early), and a process that closes gives its partitions back at once.
 *
 * Worker processes are children (test/fixtures/worker.mjs) with the crash fixture services; the
 * ingress runs in this process without workers. A duty id is `<host>:<pid>:<rand>:<rand>`, so a
 * partition's lease (`<prefix>:{p}:own`) names the process holding it.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { Keys } from '@latchkey/redis-store';
import { services } from './fixtures/crash-services.mjs';
import { get, post, spawnWorker, until, type WorkerProcess } from './helpers/harness.js';
import { startMonitor } from './helpers/monitor.js';
import { setupCrashEnv, type CrashEnv } from './helpers/crash-env.js';
import { onClusterPass } from './helpers/redis.js';

const redisTarget = inject('redisTarget');
const PARTITIONS = 16;
/** Generous: a loaded 2-core machine (duty lease = lease 2 s in the test timings). */
const DEADLINE_MS = 60_000;

type Env = CrashEnv;

const setup = (onTestFinished: (fn: () => Promise<void>) => void): Promise<Env> =>
  setupCrashEnv(redisTarget, services, onTestFinished);

async function worker(env: Env, extra: Record<string, string> = {}): Promise<WorkerProcess> {
  const w = await spawnWorker(redisTarget, env.prefix, {
    env: { LK_SERVICES: 'crash-services.mjs', ...extra },
  });
  env.workers.push(w);
  return w;
}

/** The pid each partition's duty lease names ('' when nobody holds it). */
async function owners(env: Env): Promise<string[]> {
  const layout = new Keys(env.prefix, PARTITIONS);
  const keys = Array.from({ length: PARTITIONS }, (_, p) => layout.owner(p));
  const held = await Promise.all(keys.map((k) => env.redis.get(k)));
  return held.map((h) => (h ? h.split(':').at(-3)! : ''));
}

/** Waits until every partition is held and the holders are exactly `pids`, each at most its share. */
async function spreadOver(env: Env, pids: number[]): Promise<string[]> {
  const want = new Set(pids.map(String));
  const cap = Math.ceil(PARTITIONS / pids.length);
  return until(
    `the partitions to spread over ${[...want].join(', ')}`,
    async () => {
      const o = await owners(env);
      if (o.some((pid) => !want.has(pid))) return false;
      if (new Set(o).size !== want.size) return false;
      for (const pid of want) if (o.filter((x) => x === pid).length > cap) return false;
      return o;
    },
    DEADLINE_MS,
    100,
  );
}

async function send(env: Env, path: string, body: unknown): Promise<string> {
  const r = await post(env.ingress.url, path, body);
  expect(r.status).toBe(202);
  return (r.body as { invocationId: string }).invocationId;
}

describe('partition duties', () => {
  it('spreads the partitions over the worker processes, each swept by exactly one', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished);
    const ws = [await worker(env), await worker(env), await worker(env)];
    await spreadOver(
      env,
      ws.map((w) => w.pid),
    );
    // The ingress-only process (this one) is not among the live worker processes.
    const live = await env.redis.zrange(`${env.prefix}:{w}:live`, 0, -1);
    expect(live).toHaveLength(3);
    for (const w of ws) expect(live.some((id) => id.includes(`:${w.pid}:`))).toBe(true);

    // Watch the sweeps (the reconcile script: KEYS = the partition's due and outbox zsets) for a
    // while: every partition is swept, and each by one connection only.
    const mon = await startMonitor(redisTarget);
    onTestFinished(() => Promise.resolve(mon.close()));
    const layout = new Keys(env.prefix, PARTITIONS);
    const partOfDue = new Map(
      Array.from({ length: PARTITIONS }, (_, p) => [layout.due(p), p] as const),
    );
    const sweepers = new Map<number, Set<string>>();
    const sweeps = new Map<number, number>();
    mon.on((c) => {
      const cmd = c.args[0]?.toLowerCase();
      if ((cmd !== 'evalsha' && cmd !== 'eval') || c.args[2] !== '2') return;
      if (c.args[4] !== c.args[3]?.replace(/due$/, 'outbox')) return;
      const p = partOfDue.get(c.args[3] ?? '');
      if (p === undefined) return;
      if (!sweepers.has(p)) sweepers.set(p, new Set());
      sweepers.get(p)!.add(c.source);
      sweeps.set(p, (sweeps.get(p) ?? 0) + 1);
    });
    // Sweeps come at least every reconcileIntervalMs (250 ms in the test timings): wait for two
    // rounds of every partition.
    await until(
      'every partition to be swept twice',
      () => sweeps.size === PARTITIONS && [...sweeps.values()].every((n) => n >= 2),
      DEADLINE_MS,
      100,
    );
    // Stable ownership (nobody joined or left): every partition had one sweeper.
    expect(
      await spreadOver(
        env,
        ws.map((w) => w.pid),
      ),
    ).toHaveLength(PARTITIONS);
    for (const [p, s] of sweepers) expect([p, s.size]).toEqual([p, 1]);
    // Three processes, three sweeping connections (on a cluster, one per process and master).
    const connections = new Set([...sweepers.values()].flatMap((s) => [...s])).size;
    if (onClusterPass) expect(connections).toBeLessThanOrEqual(3 * 3);
    else expect(connections).toBe(3);
  });

  it('takes over a SIGKILLed owner: its suspended timers fire (never early), its partitions move', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished);
    // Handlers suspend 100 ms after they start waiting: the sleep is a timer in `due`.
    const suspend = { LATCHKEY_INACTIVITY_TIMEOUT: '100' };
    const a = await worker(env, suspend);
    const b = await worker(env, suspend);
    const before = await spreadOver(env, [a.pid, b.pid]);

    // Steps a, b, t0, sleep 3 s, t1, c on random partitions (services).
    const ids: string[] = [];
    for (let i = 0; i < 12; i++)
      ids.push(await send(env, '/crashsvc/run/send', `in-${randomUUID().slice(0, 8)}`));
    await until(
      'every invocation to suspend in its sleep',
      async () => {
        for (const id of ids) {
          const info = await env.ingress.store.describe(id);
          if (info?.status !== 'suspended') return false;
        }
        return true;
      },
      DEADLINE_MS,
      100,
    );
    const partitionOf = (id: string): number => parseInt(id.slice(4, 6), 36);
    // Some of them wait in partitions the victim owns (2^-12 that none does).
    expect(ids.some((id) => before[partitionOf(id)] === String(a.pid))).toBe(true);

    await a.kill('SIGKILL');
    await spreadOver(env, [b.pid]);
    for (const id of ids) {
      await until(
        `invocation ${id} to complete`,
        async () => (await env.ingress.store.describe(id))?.status === 'completed',
        DEADLINE_MS,
        100,
      );
      const r = await get(env.ingress.url, `/restate/invocation/${id}/attach`);
      const out = r.body as { t0: number; t1: number };
      // The timer never fired early: the step after the sleep ran 3 s or more after the one before.
      expect(out.t1 - out.t0).toBeGreaterThanOrEqual(3000);
    }
  });

  it('a timer its owner leased to itself and never ran (SIGKILL) fires once the lease lapses, its steps not re-run', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished);
    const suspend = { LATCHKEY_INACTIVITY_TIMEOUT: '100' };
    // The only worker owns every partition: its sweep fires the timer by leasing it to itself,
    // and it dies right after, before the attempt starts.
    const a = await worker(env, { ...suspend, LK_FAULT: 'after-fire:crashflow' });
    await spreadOver(env, [a.pid]);
    const id = await send(env, `/crashflow/wf-${randomUUID().slice(0, 8)}/run/send`, 'in');
    const exit = await a.exited;
    expect(exit.signal).toBe('SIGKILL');
    expect(a.output).toContain('FAULT after-fire:crashflow');
    // The lease stands: the invocation is running, on nobody.
    expect((await env.ingress.store.describe(id))?.status).toBe('running');

    await worker(env, suspend);
    await until(
      `invocation ${id} to complete`,
      async () => (await env.ingress.store.describe(id))?.status === 'completed',
      DEADLINE_MS,
      100,
    );
    const out = (await get(env.ingress.url, `/restate/invocation/${id}/attach`)).body as {
      t0: number;
      t1: number;
    };
    expect(out.t1 - out.t0).toBeGreaterThanOrEqual(3000);
    // The steps before the sleep ran once: the resumed attempt replayed them from the journal.
    for (const step of ['a', 'b', 't0', 't1', 'c'])
      expect(await env.redis.get(`${env.prefix}:fx:${id}:${step}`)).toBe('1');
  });

  it('gives its partitions back when it closes, and a newcomer gets its share', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished);
    const a = await worker(env);
    await spreadOver(env, [a.pid]);
    const b = await worker(env);
    // The newcomer takes about half from the first process within a few seconds.
    await spreadOver(env, [a.pid, b.pid]);

    // A graceful close (SIGTERM) releases the leases: right after it exited, none names it,
    // long before its leases would have expired.
    const t0 = Date.now();
    await b.kill('SIGTERM');
    const left = await owners(env);
    if (Date.now() - t0 < 2000) expect(left).not.toContain(String(b.pid));
    const live = await env.redis.zrange(`${env.prefix}:{w}:live`, 0, -1);
    expect(live.some((id) => id.includes(`:${b.pid}:`))).toBe(false);
    await spreadOver(env, [a.pid]);
  });
});
