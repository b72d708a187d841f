/**
 * Crash tests: worker processes are SIGKILLed at chosen points (fault
 * injection in test/fixtures/worker.mjs and crash-services.mjs) or from the
 * test, and every invocation must still complete on a restarted worker with
 * exactly one recorded result per step, exact object state, durable timers
 * that never fire early, and no invocation failed by BullMQ's stall limit.
 *
 * The ingress runs in this process without workers; workers are child
 * processes, started one after another so it is known which one crashes.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import type { Entry, InvocationInfo } from '@latchkey/core';
import { services } from './fixtures/crash-services.mjs';
import { get, post, spawnWorker, until, type WorkerProcess } from './helpers/harness.js';
import type { RedisStoreOptions } from '@latchkey/redis-store';
import { setupCrashEnv, type CrashEnv } from './helpers/crash-env.js';

const redisTarget = inject('redisTarget');

/** Deadline for recovery after a kill (lease 2 s + reconciler, on a loaded machine). */
const RECOVERY_MS = 60_000;

// ------------------------------------------------------------------ per-test resources

type Env = CrashEnv;

const setup = (onTestFinished: (fn: () => Promise<void>) => void): Promise<Env> =>
  setupCrashEnv(redisTarget, services, onTestFinished);

/** Spawns a worker process for the crash fixture services. */
async function worker(
  env: Env,
  opts: { fault?: string; store?: RedisStoreOptions } = {},
): Promise<WorkerProcess> {
  const w = await spawnWorker(redisTarget, env.prefix, {
    ...opts,
    env: { LK_SERVICES: 'crash-services.mjs' },
  });
  env.workers.push(w);
  return w;
}

/** Waits until a worker started with `fault` has SIGKILLed itself at that point. */
async function diedAt(w: WorkerProcess, fault: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new Error(`worker ${w.pid} did not reach fault ${fault}:\n${w.output.join('\n')}`)),
      RECOVERY_MS,
    );
  });
  try {
    const { signal } = await Promise.race([w.exited, timeout]);
    expect(signal).toBe('SIGKILL');
  } finally {
    clearTimeout(timer);
  }
  expect(w.output).toContain(`FAULT ${fault}`);
}

/** Sends an invocation through the ingress (`.../send`); returns its id. */
async function send(env: Env, path: string, body: unknown): Promise<string> {
  const r = await post(env.ingress.url, path, body);
  expect(r.status).toBe(202);
  const id = (r.body as { invocationId: string }).invocationId;
  expect(id).toMatch(/^inv_/);
  return id;
}

async function describeInv(env: Env, id: string, withJournal = false): Promise<InvocationInfo> {
  const info = await env.ingress.store.describe(id, withJournal);
  if (!info) throw new Error(`invocation ${id} is unknown`);
  return info;
}

/** Waits until the invocation completed; returns its description with the journal. */
async function completed(env: Env, id: string): Promise<InvocationInfo> {
  await until(
    `invocation ${id} to complete`,
    async () => (await describeInv(env, id)).status === 'completed',
    RECOVERY_MS,
    100,
  );
  return describeInv(env, id, true);
}

/** The result through the ingress (attach answers at once for a completed invocation). */
async function result(env: Env, id: string): Promise<unknown> {
  const r = await get(env.ingress.url, `/restate/invocation/${id}/attach`);
  expect(r.status).toBe(200);
  return r.body;
}

/** How many times each named closure of an invocation executed (fixture INCR counters). */
async function closureRuns(env: Env, id: string, names: string[]): Promise<Record<string, number>> {
  // One GET a key: on a cluster the counters live in different slots.
  const vals = await Promise.all(names.map((n) => env.redis.get(`${env.prefix}:fx:${id}:${n}`)));
  return Object.fromEntries(names.map((n, i) => [n, Number(vals[i] ?? 0)]));
}

/** "run:<name>" / "sleep" for each journal entry. */
function shape(journal: Entry[]): string[] {
  return journal.map((e) => (e.k === 'run' ? `run:${e.n}` : e.k));
}

// ------------------------------------------------------------------ 1. steps and sleeps

const STEPS = ['a', 'b', 't0', 't1', 'c'];
const FULL_JOURNAL = ['run:a', 'run:b', 'run:t0', 'sleep', 'run:t1', 'run:c'];

interface StepsCase {
  title: string;
  /** Target path without `/send`. */
  target: 'service' | 'workflow';
  /** Fault of the first worker; undefined = killed from the test once the journal holds the sleep. */
  fault?: string;
  /** The journal when the first worker is dead. */
  journalAtCrash: string[];
  /** Expected closure executions per step, after completion. */
  runs: Record<string, number>;
}

const ONCE = { a: 1, b: 1, t0: 1, t1: 1, c: 1 };

const cases: StepsCase[] = [
  {
    title: 'SIGKILL inside a ctx.run closure (in-run:b): b re-runs, a does not',
    target: 'service',
    fault: 'in-run:b',
    journalAtCrash: ['run:a'],
    runs: { ...ONCE, b: 2 },
  },
  {
    title:
      "SIGKILL after b's journal write, before the job is acknowledged (after-commit:b): nothing re-runs",
    target: 'workflow',
    fault: 'after-commit:b',
    journalAtCrash: ['run:a', 'run:b'],
    runs: ONCE,
  },
  {
    title: 'SIGKILL right after the 3 s sleep was journaled (after-commit:sleep)',
    target: 'workflow',
    fault: 'after-commit:sleep',
    journalAtCrash: ['run:a', 'run:b', 'run:t0', 'sleep'],
    runs: ONCE,
  },
  {
    title: 'SIGKILL from outside while the handler waits in its 3 s sleep',
    target: 'service',
    journalAtCrash: ['run:a', 'run:b', 'run:t0', 'sleep'],
    runs: ONCE,
  },
];

// The four cases are independent (own prefix, ingress and workers) and mostly
// wait on leases and the 3 s sleep, so they run concurrently.
describe.concurrent('a worker killed during an invocation (steps a, b, sleep 3 s, c)', () => {
  for (const c of cases) {
    it(c.title, async ({ onTestFinished, expect }) => {
      const env = await setup(onTestFinished);
      const input = `in-${randomUUID().slice(0, 8)}`;
      const path =
        c.target === 'service' ? '/crashsvc/run/send' : `/crashflow/wf-${input}/run/send`;

      const first = await worker(env, c.fault ? { fault: c.fault } : {});
      const id = await send(env, path, input);
      if (c.fault) {
        await diedAt(first, c.fault);
      } else {
        await until(
          'the sleep entry in the journal',
          async () => (await describeInv(env, id, true)).journal!.some((e) => e.k === 'sleep'),
          RECOVERY_MS,
        );
        await first.kill('SIGKILL');
      }

      // The crash left the invocation unfinished, with exactly the entries written before it.
      const atCrash = await describeInv(env, id, true);
      expect(atCrash.status).not.toBe('completed');
      expect(shape(atCrash.journal!)).toEqual(c.journalAtCrash);

      // A restarted (fresh) worker finishes it.
      await worker(env);
      const info = await completed(env, id);
      expect(info.outcome?.ok).toBe(true);

      // Each step has exactly one recorded result, and the handler saw exactly those.
      const journal = info.journal!;
      expect(shape(journal)).toEqual(FULL_JOURNAL);
      const recorded: Record<string, unknown> = {};
      for (const e of journal) if (e.k === 'run') recorded[e.n] = e.v;
      const out = (await result(env, id)) as {
        a: string;
        b: string;
        c: string;
        t0: number;
        t1: number;
      };
      expect(out).toEqual(recorded);
      expect(JSON.parse(info.outcome!.ok ? info.outcome!.value! : 'null')).toEqual(recorded);
      for (const s of ['a', 'b', 'c'])
        expect(out[s as 'a' | 'b' | 'c']).toMatch(new RegExp(`^${s}:${input}:`));

      // Closure executions show exactly what re-ran; a step's value carries the
      // execution count of the run that was recorded (the last one).
      const runs = await closureRuns(env, id, STEPS);
      expect(runs).toEqual(c.runs);
      expect(out.b.split(':')[2]).toBe(String(c.runs['b']));

      // The sleep ended no earlier than requested: local times around it, and the store-clock due time.
      const sleep = journal.find((e) => e.k === 'sleep') as { k: 'sleep'; due: number };
      expect(out.t1 - out.t0).toBeGreaterThanOrEqual(3000);
      expect(sleep.due - out.t0).toBeGreaterThanOrEqual(3000);
      expect(out.t1).toBeGreaterThanOrEqual(sleep.due);
    });
  }
});

// ------------------------------------------------------------------ 2. exact counter

describe('a counter object incremented while workers are killed', () => {
  it('reads exactly N after N adds, across a kill mid-way, an after-commit and an after-complete crash', async ({
    onTestFinished,
  }) => {
    const N = 30;
    const env = await setup(onTestFinished);
    const key = `k-${randomUUID().slice(0, 8)}`;
    const count = async (): Promise<number> =>
      Number((await env.ingress.store.getState('counter', key)).get('count') ?? 0);

    // A worker processes adds while they are sent; it is SIGKILLed mid-way.
    const w1 = await worker(env);
    const ids: string[] = [];
    for (let i = 0; i < N; i++) ids.push(await send(env, `/counter/${key}/add/send`, 1));
    await until('some adds to complete', async () => (await count()) >= 5, RECOVERY_MS, 10);
    await w1.kill('SIGKILL');
    const atKill = await count();
    expect(atKill).toBeLessThan(N);

    // The next worker dies right after an add's step was journaled (before its state write).
    await diedAt(await worker(env, { fault: 'after-commit:add' }), 'after-commit:add');
    // The next one dies after an add completed, before the next invocation of the key was dispatched.
    await diedAt(await worker(env, { fault: 'after-complete:add' }), 'after-complete:add');
    // A clean worker finishes the rest.
    await worker(env);

    await until(
      `all ${N} adds to complete`,
      async () =>
        (await Promise.all(ids.map((id) => describeInv(env, id)))).every(
          (i) => i.status === 'completed',
        ),
      RECOVERY_MS,
      100,
    );
    // Every add succeeded, in acceptance order, each seeing exactly the previous adds.
    const outs = await Promise.all(ids.map(async (id) => (await describeInv(env, id)).outcome));
    expect(outs.map((o) => (o?.ok ? JSON.parse(o.value!) : o))).toEqual(
      Array.from({ length: N }, (_, i) => i + 1),
    );

    // The shared get handler (and the state itself) read exactly N.
    const got = await post(env.ingress.url, `/counter/${key}/get`);
    expect(got.status).toBe(200);
    expect(got.body).toBe(N);
    expect(await count()).toBe(N);

    // At most the closure interrupted by the external kill re-ran (the two fault
    // points come after the step's result was journaled).
    const runs = Number(await env.redis.get(`${env.prefix}:fx:counter:${key}:runs`));
    expect(runs).toBeGreaterThanOrEqual(N);
    expect(runs).toBeLessThanOrEqual(N + 1);
  });
});

// ------------------------------------------------------------------ 3. BullMQ stall limit

describe("BullMQ's maxStalledCount", () => {
  it('never fails an invocation whose mailbox jobs stalled more often than maxStalledCount', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished);
    // Every dispatch goes through BullMQ here (no local fast path), so the stalls are BullMQ's.
    const store: RedisStoreOptions = { maxStalledCount: 0, localDispatch: false };

    // Two workers die inside the running handler; with maxStalledCount 0 BullMQ
    // gives up on each of their jobs at the first stall.
    const a = await worker(env, { fault: 'in-run:work', store });
    const id = await send(env, '/stally/work/send', 'x');
    await diedAt(a, 'in-run:work');
    await diedAt(await worker(env, { fault: 'in-run:work', store }), 'in-run:work');
    expect((await describeInv(env, id)).status).not.toBe('completed');

    // A clean worker (same stall limit) completes it: the reconciler redispatches.
    await worker(env, { store });
    const info = await completed(env, id);
    expect(info.outcome).toEqual({ ok: true, value: JSON.stringify('done:x:3') });
    expect(await result(env, id)).toBe('done:x:3');
    expect(shape(info.journal!)).toEqual(['run:work']);
    expect(await closureRuns(env, id, ['work'])).toEqual({ work: 3 });

    // BullMQ really gave up on both stalled jobs of this invocation.
    const shard = parseInt(id.slice(4, 6), 36) % 4;
    const stream = `${env.prefix}:{q${shard}}:jobs:events`;
    const failed = await until(
      'BullMQ to fail both stalled jobs',
      async () => {
        const events = await env.redis.xrange(stream, '-', '+');
        const f = events
          .map(([, fields]) => {
            const o: Record<string, string> = {};
            for (let i = 0; i < fields.length; i += 2) o[fields[i]!] = fields[i + 1]!;
            return o;
          })
          .filter((o) => o['event'] === 'failed' && o['jobId']?.startsWith(`${id}-`));
        return f.length >= 2 ? f : undefined;
      },
      RECOVERY_MS,
      100,
    );
    for (const f of failed) expect(f['failedReason']).toMatch(/stalled more than allowable limit/);
    // ...and the invocation stayed completed with its result.
    expect((await describeInv(env, id)).outcome).toEqual(info.outcome);
  });
});
