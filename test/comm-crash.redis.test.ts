/**
 * Crash tests of handler-to-handler communication: worker processes are
 * SIGKILLed while a parent waits for its child, right after a send was
 * journaled, while a delayed send is pending, and after a race was decided.
 * After a restart every invocation completes, with exactly one execution of
 * each child step, exactly one delivery of each message, delayed messages
 * never early, and the journaled winner of a race replayed.
 *
 * The ingress runs in this process without workers; workers are child
 * processes (test/fixtures/worker.mjs with comm-services.mjs), started one
 * after another so it is known which one crashes.
 */
import { randomUUID } from 'node:crypto';
import { describe, inject, it, type ExpectStatic } from 'vitest';
import type { Entry, InvocationInfo } from '@latchkey/core';
import {
  Keys,
  partitionOfId,
  type RedisStore,
  type RedisStoreOptions,
} from '@latchkey/redis-store';
import { services } from './fixtures/comm-services.mjs';
import { setupCrashEnv, type CrashEnv } from './helpers/crash-env.js';
import { get, post, spawnWorker, until, type WorkerProcess } from './helpers/harness.js';

const redisTarget = inject('redisTarget');

/** Deadline for recovery after a kill (lease 2 s + reconciler, on a loaded machine). */
const RECOVERY_MS = 60_000;

/** Partitions of the store (the default; FAST_TIMINGS does not change it). */
const PARTITIONS = 16;

// ------------------------------------------------------------------ per-test resources

/** The shared crash-test resources (helpers/crash-env.ts), and the test's own `expect`. */
interface Env extends CrashEnv {
  expect: ExpectStatic;
}

async function setup(
  onTestFinished: (fn: () => Promise<void>) => void,
  expect: ExpectStatic,
): Promise<Env> {
  return Object.assign(await setupCrashEnv(redisTarget, services, onTestFinished), { expect });
}

/** Spawns a worker process for the communication fixture services. */
async function worker(
  env: Env,
  opts: { fault?: string; store?: RedisStoreOptions } = {},
): Promise<WorkerProcess> {
  const w = await spawnWorker(redisTarget, env.prefix, {
    ...opts,
    env: { LK_SERVICES: 'comm-services.mjs' },
  });
  env.workers.push(w);
  return w;
}

/** Waits until a worker started with `fault` has SIGKILLed itself at that point. */
async function diedAt(env: Env, w: WorkerProcess, fault: string): Promise<void> {
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
    env.expect(signal).toBe('SIGKILL');
  } finally {
    clearTimeout(timer);
  }
  env.expect(w.output).toContain(`FAULT ${fault}`);
}

/** Sends an invocation through the ingress (`.../send`); returns its id. */
async function send(env: Env, path: string, body: unknown): Promise<string> {
  const r = await post(env.ingress.url, path, body);
  env.expect(r.status).toBe(202);
  const id = (r.body as { invocationId: string }).invocationId;
  env.expect(id).toMatch(/^inv_/);
  return id;
}

async function describeInv(env: Env, id: string, withJournal = false): Promise<InvocationInfo> {
  const info = await env.ingress.store.describe(id, withJournal);
  if (!info) throw new Error(`invocation ${id} is unknown`);
  return info;
}

async function journalOf(env: Env, id: string): Promise<Entry[]> {
  return (await describeInv(env, id, true)).journal!;
}

/** Everything Redis holds about an invocation (for failure messages). */
async function dump(env: Env, id: string): Promise<string> {
  const p = partitionOfId(id, PARTITIONS);
  if (p === undefined) return `${id}: malformed id`;
  const k = new Keys(env.prefix);
  const [inv, journal, completions, notify, due, outbox] = await Promise.all([
    env.redis.hgetall(k.inv(p, id)),
    env.redis.lrange(k.journal(p, id), 0, -1),
    env.redis.hgetall(k.completions(p, id)),
    env.redis.smembers(k.notify(p, id)),
    env.redis.zscore(k.due(p), id),
    env.redis.zrange(k.outbox(p), 0, -1, 'WITHSCORES'),
  ]);
  return JSON.stringify(
    { id, now: Date.now(), inv, journal, completions, notify, due, outbox },
    null,
    1,
  );
}

/** Waits until the invocation completed; returns its description with the journal. */
async function completed(env: Env, id: string, related: string[] = []): Promise<InvocationInfo> {
  try {
    await until(
      `invocation ${id} to complete`,
      async () => (await describeInv(env, id)).status === 'completed',
      RECOVERY_MS,
      100,
    );
  } catch (e) {
    const dumps = await Promise.all([id, ...related].map((x) => dump(env, x)));
    const out = env.workers.map((w, i) => `worker ${i} (pid ${w.pid}):\n${w.output.join('\n')}`);
    throw new Error(`${String(e)}\n${dumps.join('\n')}\n${out.join('\n')}`, { cause: e });
  }
  return describeInv(env, id, true);
}

/** The successful result of a completed invocation, through the ingress (attach). */
async function result<T>(env: Env, id: string): Promise<T> {
  const r = await get(env.ingress.url, `/restate/invocation/${id}/attach`);
  env.expect(r.status).toBe(200);
  return r.body as T;
}

/** A fixture counter (`<prefix>:fx:<what>`), 0 when never incremented. */
async function fxCount(env: Env, what: string): Promise<number> {
  return Number((await env.redis.get(`${env.prefix}:fx:${what}`)) ?? 0);
}

/** "run:<name>" / the kind, for each journal entry. */
function shape(journal: Entry[]): string[] {
  return journal.map((e) => (e.k === 'run' ? `run:${e.n}` : e.k));
}

function runValue(journal: Entry[], name: string): unknown {
  const e = journal.find((x) => x.k === 'run' && x.n === name);
  if (!e || e.k !== 'run') throw new Error(`no run entry ${name} in ${JSON.stringify(journal)}`);
  return e.v;
}

function only<K extends Entry['k']>(journal: Entry[], k: K): Extract<Entry, { k: K }> {
  const es = journal.filter((e) => e.k === k);
  if (es.length !== 1)
    throw new Error(`expected exactly one ${k} entry, journal is ${JSON.stringify(journal)}`);
  return es[0] as Extract<Entry, { k: K }>;
}

/** Outbox effects (JSON members) an invocation committed and that are not yet acknowledged. */
async function pendingOutbox(
  env: Env,
  invocationId: string,
): Promise<{ key: string; members: string[] }> {
  const key = new Keys(env.prefix).outbox(partitionOfId(invocationId, PARTITIONS)!);
  const members = (await env.redis.zrange(key, 0, -1)).filter(
    (m) => (JSON.parse(m) as { s: string }).s === invocationId,
  );
  return { key, members };
}

/**
 * Puts already-performed outbox effects back, due at once: what Redis holds
 * when a worker performed an effect but died before acknowledging it. Waits
 * until the reconciler performed (and acknowledged) them again, and checks that
 * this left the invocation they started (`childId`, completed) untouched.
 */
async function replayOutbox(
  env: Env,
  outbox: { key: string; members: string[] },
  childId: string,
): Promise<void> {
  env.expect(outbox.members.length).toBeGreaterThan(0);
  const before = await describeInv(env, childId);
  env.expect(before.status).toBe('completed');
  await env.redis.zadd(outbox.key, ...outbox.members.flatMap((m) => [0, m]));
  await until(
    'the reconciler to perform the re-added outbox effects',
    async () =>
      (await env.redis.zmscore(outbox.key, ...outbox.members)).every((score) => score === null),
    RECOVERY_MS,
  );
  env.expect(await describeInv(env, childId)).toEqual(before);
}

/** Keeps checking `check` for `ms` (a bounded observation window, not a wait for an event). */
async function holds(what: string, ms: number, check: () => Promise<void>): Promise<void> {
  const end = Date.now() + ms;
  let rounds = 0;
  do {
    try {
      await check();
    } catch (e) {
      throw new Error(`${what} stopped holding after ${rounds} checks: ${String(e)}`, { cause: e });
    }
    rounds++;
    await new Promise((r) => setTimeout(r, 100));
  } while (Date.now() < end);
}

// ------------------------------------------------------------------ 1. a parent killed while its child runs

describe.concurrent('a parent killed while it waits for its child', () => {
  const cases = [
    {
      title:
        'killed from outside while the child sleeps: the child runs once and the resumed parent gets its result',
      fault: undefined,
    },
    {
      title:
        'killed right after the call was journaled, before the child was accepted (after-commit:pre)',
      fault: 'after-commit:pre',
    },
    {
      title:
        'killed right after the child completed, before its result was delivered to the parent (after-complete:work)',
      fault: 'after-complete:work',
    },
    {
      // The crashed worker's mailbox job of the child comes back (BullMQ's stalled-job
      // recovery does this) before the reconciler delivered the child's result: the
      // first worker's grace of 8 s keeps the reconciler's delivery deadline after it.
      title:
        'killed right after the child completed; its stale mailbox job runs before the result was delivered',
      fault: 'after-complete:work',
      staleJob: true,
    },
  ] as { title: string; fault?: string; staleJob?: boolean }[];
  for (const c of cases) {
    it(c.title, async ({ onTestFinished, expect }) => {
      const env = await setup(onTestFinished, expect);
      const input = `in-${randomUUID().slice(0, 8)}`;
      const w1 = await worker(
        env,
        c.fault ? { fault: c.fault, ...(c.staleJob ? { store: { graceMs: 8000 } } : {}) } : {},
      );
      const parentId = await send(env, '/commparent/callChild/send', input);

      let childId: string;
      let outbox: { key: string; members: string[] } | undefined;
      if (c.fault === 'after-commit:pre') {
        await diedAt(env, w1, c.fault);
        const j = await journalOf(env, parentId);
        expect(shape(j)).toEqual(['run:pre', 'call']);
        childId = only(j, 'call').id;
        // The call is journaled, but its outbox effect (accepting the child) was not performed.
        expect(await env.ingress.store.describe(childId)).toBeUndefined();
        outbox = await pendingOutbox(env, parentId);
        expect(
          outbox.members.map((m) => JSON.parse(m) as { e: { t: string; req: { id: string } } }),
        ).toMatchObject([{ e: { t: 'accept', req: { id: childId } } }]);
      } else if (c.fault === 'after-complete:work') {
        await diedAt(env, w1, c.fault);
        const j = await journalOf(env, parentId);
        expect(shape(j)).toEqual(['run:pre', 'call']);
        childId = only(j, 'call').id;
        // The child finished (its main step ran once); the parent has not seen its result.
        const child = await describeInv(env, childId, true);
        expect(child.status).toBe('completed');
        expect(shape(child.journal!)).toEqual(['sleep', 'run:main']);
        expect((await describeInv(env, parentId)).status).not.toBe('completed');
        if (c.staleJob)
          await (env.ingress.store as RedisStore).redispatch(
            { i: childId, s: 'commchild', k: '', m: 'service' },
            1000,
            0,
          );
      } else {
        // Kill once the parent journaled the call and the child is in its durable sleep.
        childId = await until(
          'the call entry in the parent journal',
          async () => (await journalOf(env, parentId)).find((e) => e.k === 'call')?.id,
          RECOVERY_MS,
        );
        await until(
          'the sleep entry in the child journal',
          async () => {
            const info = await env.ingress.store.describe(childId, true);
            return info?.journal?.some((e) => e.k === 'sleep');
          },
          RECOVERY_MS,
        );
        await w1.kill('SIGKILL');
        expect((await describeInv(env, parentId)).status).not.toBe('completed');
        const child = await describeInv(env, childId, true);
        expect(child.status).not.toBe('completed');
        expect(shape(child.journal!)).toEqual(['sleep']);
      }
      expect(await fxCount(env, `${childId}:main`)).toBe(c.fault === 'after-complete:work' ? 1 : 0);

      // A fresh worker finishes both.
      await worker(env);
      const parent = await completed(env, parentId, [childId]);
      expect(parent.outcome?.ok).toBe(true);
      const child = await completed(env, childId);
      expect(child.target).toEqual({ service: 'commchild', handler: 'work' });
      expect(child.outcome?.ok).toBe(true);

      // The parent got exactly the child's recorded result.
      const out = await result<{ child: string; after: number }>(env, parentId);
      const childValue = JSON.parse((child.outcome as { value: string }).value) as string;
      expect(out.child).toBe(childValue);
      expect(out.child).toMatch(new RegExp(`^child:${input}:1:`));
      expect(out.after).toBe(1);

      // The child's main step ran exactly once, after its sleep.
      expect(shape(child.journal!)).toEqual(['sleep', 'run:main']);
      expect(runValue(child.journal!, 'main')).toBe(childValue);
      expect(await fxCount(env, `${childId}:main`)).toBe(1);

      // The parent journal holds exactly one call entry, naming that child.
      expect(shape(parent.journal!)).toEqual(['run:pre', 'call', 'run:after']);
      expect(only(parent.journal!, 'call')).toEqual({
        k: 'call',
        n: 'commchild/work',
        id: childId,
      });
      expect(await fxCount(env, `${parentId}:after`)).toBe(1);
      // ...and exactly one child invocation exists.
      const children = (await env.ingress.store.list({ service: 'commchild' })).invocations;
      expect(children.map((i) => i.id)).toEqual([childId]);

      if (outbox) {
        // The accept performed again (its acknowledgement lost) starts no second child and changes no result.
        await replayOutbox(env, outbox, childId);
        expect(
          (await env.ingress.store.list({ service: 'commchild' })).invocations.map((i) => i.id),
        ).toEqual([childId]);
        expect(await fxCount(env, `${childId}:main`)).toBe(1);
        expect((await describeInv(env, parentId)).outcome).toEqual(parent.outcome);
      }
    });
  }
});

// ------------------------------------------------------------------ 2. a send issued just before a crash

describe.concurrent(
  'a send issued just before the worker crashes is delivered exactly once',
  () => {
    const cases = [
      {
        title: 'the crash step starts while the send commit is in flight (in-run:crash)',
        how: 'plain',
        fault: 'in-run:crash',
        atCrash: [[], ['send']],
        crashRuns: 2,
      },
      {
        title: 'the send commit was acknowledged before the crash step (in-run:crash)',
        how: 'awaitId',
        fault: 'in-run:crash',
        atCrash: [['send']],
        crashRuns: 2,
      },
      {
        title:
          'killed right after the commit holding the send, before its outbox effect ran (after-commit:mark)',
        how: 'batched',
        fault: 'after-commit:mark',
        atCrash: [['run:mark', 'send']],
        crashRuns: 1,
      },
    ];
    for (const c of cases) {
      it(c.title, async ({ onTestFinished, expect }) => {
        const env = await setup(onTestFinished, expect);
        const key = `k-${randomUUID().slice(0, 8)}`;
        const msg = `m-${randomUUID().slice(0, 8)}`;
        const w1 = await worker(env, { fault: c.fault });
        const senderId = await send(env, '/commsender/sendThenCrash/send', {
          key,
          msg,
          how: c.how,
        });
        await diedAt(env, w1, c.fault);

        const atCrash = await journalOf(env, senderId);
        expect(c.atCrash).toContainEqual(shape(atCrash));
        let outbox: { key: string; members: string[] } | undefined;
        if (c.how === 'batched') {
          // The send is journaled but the inbox message was not accepted yet: only the reconciler can deliver it.
          expect(await env.ingress.store.describe(only(atCrash, 'send').id)).toBeUndefined();
          outbox = await pendingOutbox(env, senderId);
          expect(outbox.members).toHaveLength(1);
        }

        await worker(env);
        const sender = await completed(env, senderId);
        expect(sender.outcome?.ok).toBe(true);
        const out = await result<{ sentId: string; crash: number }>(env, senderId);
        const sendEntry = only(sender.journal!, 'send');
        expect(sendEntry).toEqual({ k: 'send', n: 'comminbox/add', id: out.sentId });
        expect(out.crash).toBe(c.crashRuns);
        expect(await fxCount(env, `${senderId}:crash`)).toBe(c.crashRuns);

        // The message arrives...
        const add = await completed(env, out.sentId);
        expect(add.target).toEqual({ service: 'comminbox', handler: 'add', key });
        expect(add.outcome).toEqual({ ok: true, value: '1' });
        expect(shape(add.journal!)).toEqual(['run:recv', 'get', 'set']);

        // ...and stays delivered exactly once while the reconciler sweeps (250 ms) past its grace (1.5 s).
        const msgs = async (): Promise<unknown> => {
          const raw = (await env.ingress.store.getState('comminbox', key)).get('msgs');
          return raw === undefined ? undefined : JSON.parse(raw);
        };
        // In the batched case, the accept is also performed once more, as after a lost acknowledgement.
        if (outbox) await replayOutbox(env, outbox, out.sentId);
        await holds('exactly one delivery', 3000, async () => {
          expect(await msgs()).toEqual([msg]);
          expect(await env.redis.smembers(`${env.prefix}:fx:inbox:${key}:receivers`)).toEqual([
            out.sentId,
          ]);
        });
        // The add's closure ran once, or twice when the message was being handled by
        // the crashed worker itself (a step interrupted before its result was journaled).
        const recvRuns = await fxCount(env, `inbox:${key}:recv`);
        expect(recvRuns).toBeGreaterThanOrEqual(1);
        expect(recvRuns).toBeLessThanOrEqual(2);
        expect(runValue(add.journal!, 'recv')).toBe(recvRuns);
        if (recvRuns === 2) expect(add.lastFailure?.code).toBe('WORKER_LOST');
        const got = await post(env.ingress.url, `/comminbox/${key}/msgs`);
        expect(got.status).toBe(200);
        expect(got.body).toEqual([msg]);
        // Exactly one add invocation exists (the other one is the msgs call above).
        const adds = (await env.ingress.store.list({ service: 'comminbox' })).invocations.filter(
          (i) => i.target.handler === 'add',
        );
        expect(adds.map((i) => i.id)).toEqual([out.sentId]);
      });
    }
  },
);

// ------------------------------------------------------------------ 3. a delayed send across a restart

const DELAY_MS = 3000;

describe.concurrent('a delayed send across a worker restart', () => {
  const cases = [
    {
      title:
        'to a service, killed right after the commit holding the send, before the delayed message was accepted (after-commit:stamp)',
      fault: 'after-commit:stamp',
      object: false,
    },
    {
      title: 'to an object, killed from outside once the delayed message was accepted',
      fault: undefined,
      object: true,
    },
  ];
  for (const c of cases) {
    it(c.title, async ({ onTestFinished, expect }) => {
      const env = await setup(onTestFinished, expect);
      const tag = `t-${randomUUID().slice(0, 8)}`;
      const key = c.object ? `k-${tag}` : undefined;
      const w1 = await worker(env, c.fault ? { fault: c.fault } : {});
      const senderId = await send(env, '/commsender/delayedSend/send', {
        tag,
        delayMs: DELAY_MS,
        key,
      });

      let childId: string;
      let outbox: { key: string; members: string[] } | undefined;
      if (c.fault) {
        await diedAt(env, w1, c.fault);
        const j = await journalOf(env, senderId);
        expect(shape(j)).toEqual(['run:stamp', 'send']);
        childId = only(j, 'send').id;
        expect(await env.ingress.store.describe(childId)).toBeUndefined();
        outbox = await pendingOutbox(env, senderId);
        expect(outbox.members).toHaveLength(1);
      } else {
        childId = await until(
          'the delayed message to be accepted',
          async () => {
            const id = (await journalOf(env, senderId)).find((e) => e.k === 'send')?.id;
            return id !== undefined && (await env.ingress.store.describe(id)) !== undefined
              ? id
              : undefined;
          },
          RECOVERY_MS,
        );
        await w1.kill('SIGKILL');
      }
      const sentAt = runValue(await journalOf(env, senderId), 'stamp') as number;
      // Nothing arrived before the restart.
      expect(await env.redis.llen(`${env.prefix}:fx:arrivals:${tag}`)).toBe(0);

      await worker(env);
      const sender = await completed(env, senderId);
      expect(await result(env, senderId)).toEqual({ sentAt, sentId: childId });
      expect(shape(sender.journal!)).toEqual(['run:stamp', 'send']);
      expect(only(sender.journal!, 'send')).toEqual({
        k: 'send',
        n: c.object ? 'commlate/arrive' : 'commtarget/arrive',
        id: childId,
      });

      const child = await completed(env, childId);
      expect(child.target).toEqual(
        c.object
          ? { service: 'commlate', handler: 'arrive', key }
          : { service: 'commtarget', handler: 'arrive' },
      );
      const arrivedAt = Number(JSON.parse((child.outcome as { value: string }).value));

      // In the after-commit case, the accept is also performed once more, as after a lost acknowledgement.
      if (outbox) await replayOutbox(env, outbox, childId);
      // Exactly one arrival, no earlier than the delay after the send (the
      // sender's clock) and after the message's acceptance (the store clock);
      // it stays one while the reconciler sweeps past the message's deadline.
      await holds('exactly one arrival', 2000, async () => {
        expect(await env.redis.lrange(`${env.prefix}:fx:arrivals:${tag}`, 0, -1)).toEqual([
          String(arrivedAt),
        ]);
      });
      expect(arrivedAt - sentAt).toBeGreaterThanOrEqual(DELAY_MS);
      expect(arrivedAt - child.createdAt).toBeGreaterThanOrEqual(DELAY_MS);
      expect(child.createdAt).toBeGreaterThanOrEqual(sentAt);
      const targets = (
        await env.ingress.store.list({
          service: c.object ? 'commlate' : 'commtarget',
        })
      ).invocations;
      expect(targets.map((i) => i.id)).toEqual([childId]);
    });
  }
});

// ------------------------------------------------------------------ 4. awakeables, race and orTimeout

const RACE_SLEEP_MS = 4000;

describe.concurrent('RestatePromise.race and orTimeout across a crash', () => {
  it('replays a race to the journaled winner (the awakeable) although the sleep is due by then', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect);
    const tag = `t-${randomUUID().slice(0, 8)}`;
    const w1 = await worker(env, { fault: 'in-run:after' });
    const id = await send(env, '/commrace/race/send', { tag, sleepMs: RACE_SLEEP_MS });

    const awkId = await until(
      'the published awakeable id',
      async () => (await env.redis.get(`${env.prefix}:fx:awk:${tag}`)) ?? undefined,
      RECOVERY_MS,
    );
    expect(awkId).toMatch(/^sign_1/);
    // Resolve at once (the sleep is due RACE_SLEEP_MS after it was journaled, before the id was published).
    const resolved = await post(env.ingress.url, `/restate/awakeables/${awkId}/resolve`, 'yes');
    expect(resolved.status).toBe(202);

    // The race was decided and journaled, then the worker died in the next step.
    await diedAt(env, w1, 'in-run:after');
    const atCrash = await journalOf(env, id);
    expect(shape(atCrash)).toEqual(['sleep', 'awk', 'run:publish', 'comb']);
    const awkIndex = atCrash.findIndex((e) => e.k === 'awk');
    expect(only(atCrash, 'comb')).toEqual({ k: 'comb', n: 'race', v: [awkIndex] });
    const sleep = only(atCrash, 'sleep');

    // Restart only once the sleep is due, so the replay sees both children settled.
    await until('the race sleep to be due', () => Date.now() > sleep.due + 100, RECOVERY_MS);
    await worker(env);
    const info = await completed(env, id);
    const out = await result<{ winner: string; after: { winner: string; n: number; at: number } }>(
      env,
      id,
    );
    expect(out).toEqual({
      winner: 'awk:yes',
      after: { winner: 'awk:yes', n: 2, at: expect.any(Number) },
    });
    // The replay that picked the winner ran after the sleep was due.
    expect(out.after.at).toBeGreaterThan(sleep.due);
    expect(shape(info.journal!)).toEqual(['sleep', 'awk', 'run:publish', 'comb', 'run:after']);
    expect(only(info.journal!, 'comb').v).toEqual([awkIndex]);
    expect(only(info.journal!, 'sleep').due).toBe(sleep.due);
    expect(await fxCount(env, `${id}:after`)).toBe(2);
  });

  it('an awakeable resolved while no worker runs wins the race after the restart, without waiting for the sleep', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect);
    const tag = `t-${randomUUID().slice(0, 8)}`;
    const w1 = await worker(env);
    const id = await send(env, '/commrace/race/send', { tag, sleepMs: 20_000 });

    const awkId = await until(
      'the published awakeable id',
      async () => (await env.redis.get(`${env.prefix}:fx:awk:${tag}`)) ?? undefined,
      RECOVERY_MS,
    );
    await until(
      'the publish step in the journal',
      async () => (await journalOf(env, id)).some((e) => e.k === 'run' && e.n === 'publish'),
      RECOVERY_MS,
    );
    await w1.kill('SIGKILL');
    expect(shape(await journalOf(env, id))).toEqual(['sleep', 'awk', 'run:publish']);

    // Resolved from outside while the invocation's only worker is dead.
    const resolved = await post(env.ingress.url, `/restate/awakeables/${awkId}/resolve`, 'late');
    expect(resolved.status).toBe(202);
    // A second resolution of the same awakeable is refused.
    expect(
      (await post(env.ingress.url, `/restate/awakeables/${awkId}/resolve`, 'again')).status,
    ).toBe(404);

    await worker(env);
    const info = await completed(env, id);
    const out = await result<{ winner: string; after: { winner: string; n: number; at: number } }>(
      env,
      id,
    );
    expect(out).toEqual({
      winner: 'awk:late',
      after: { winner: 'awk:late', n: 1, at: expect.any(Number) },
    });
    const journal = info.journal!;
    expect(shape(journal)).toEqual(['sleep', 'awk', 'run:publish', 'comb', 'run:after']);
    expect(only(journal, 'comb').v).toEqual([journal.findIndex((e) => e.k === 'awk')]);
    // It did not wait for the 20 s sleep.
    expect(out.after.at).toBeLessThan(only(journal, 'sleep').due);
  });

  const timeoutCases = [
    {
      title:
        'orTimeout(1000) on an awakeable nobody resolves fails with a TimeoutError no earlier than 1000 ms',
      fault: undefined,
    },
    {
      title:
        'orTimeout(1000) still fires, no earlier than 1000 ms, when the worker dies right after its timer was journaled',
      fault: 'after-commit:sleep',
    },
  ];
  for (const c of timeoutCases) {
    it(c.title, async ({ onTestFinished, expect }) => {
      const env = await setup(onTestFinished, expect);
      const w1 = await worker(env, c.fault ? { fault: c.fault } : {});
      const id = await send(env, '/commrace/timeout/send', { ms: 1000 });
      if (c.fault) {
        await diedAt(env, w1, c.fault);
        expect(shape(await journalOf(env, id))).toEqual(['awk', 'run:t0', 'sleep']);
        await worker(env);
      }
      const info = await completed(env, id);
      const out = await result<{ error: string; errorCode: number; t0: number; t1: number }>(
        env,
        id,
      );
      expect(out.error).toBe('TimeoutError');
      expect(out.errorCode).toBe(408);
      expect(out.t1 - out.t0).toBeGreaterThanOrEqual(1000);

      const journal = info.journal!;
      expect(shape(journal)).toEqual(['awk', 'run:t0', 'sleep', 'comb', 'run:t1']);
      const sleepIndex = journal.findIndex((e) => e.k === 'sleep');
      expect(only(journal, 'comb')).toEqual({ k: 'comb', n: 'orTimeout', v: [sleepIndex] });
      const sleep = only(journal, 'sleep');
      expect(sleep.due - out.t0).toBeGreaterThanOrEqual(1000);
      expect(out.t1).toBeGreaterThanOrEqual(sleep.due);
    });
  }
});
