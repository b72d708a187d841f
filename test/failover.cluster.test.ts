/**
 * Failover on a Redis Cluster of 3 masters with a replica each (started here for each test; run
 * by the `redis-cluster` pass only): a master is SIGKILLed while clients keep adding to counters and running 3-step
 * workflows, its replica takes over, and the same Latchkey process carries on without a restart.
 * With `durability: 'replicated'` every write is acknowledged only once a replica has it, so no
 * acknowledged invocation or state update is lost: every counter ends at exactly the number of
 * adds its clients were answered for, each answer a distinct value 1..n.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import {
  object,
  serve,
  workflow,
  type LatchkeyServer,
  type ObjectContext,
  type WorkflowContext,
} from '@latchkey/core';
import calculateSlot from 'cluster-key-slot';
import { createRedisStore, Keys, partitionOf } from '@latchkey/redis-store';
import { startLocalCluster, type LocalCluster } from '@latchkey/redis-store/testing';
import { FAST_TIMINGS, newPrefix, post, quietLogger, until } from './helpers/harness.js';

const COUNTERS = 12;
const ADDS = 25;

const counter = object({
  name: 'counter',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const v = ((await ctx.get<number>('v')) ?? 0) + n;
      ctx.set('v', v);
      return v;
    },
    get: async (ctx: ObjectContext) => (await ctx.get<number>('v')) ?? 0,
  },
});

const steps = workflow({
  name: 'steps',
  handlers: {
    run: async (ctx: WorkflowContext, s: string) => {
      const a = await ctx.run('a', () => `${s}-a`);
      const b = await ctx.run('b', () => `${a}-b`);
      return ctx.run('c', () => `${b}-c`);
    },
  },
});

/** Posts until answered 200 (the same idempotency key each time), and returns the answer. */
async function untilAnswered(base: string, path: string, body: unknown, key: string) {
  const deadline = Date.now() + 90_000;
  let last: string | undefined;
  for (;;) {
    try {
      const r = await post(base, path, body, { 'idempotency-key': key });
      if (r.status === 200) return r.body;
      last = `${r.status} ${JSON.stringify(r.body)}`;
      if (r.status !== 503 && r.status !== 500) throw new Error(`${path}: ${last}`);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith(path)) throw e;
      last = String(e);
      // the request failed on its way: send it again
    }
    if (Date.now() > deadline)
      throw new Error(`${path} (${key}) never answered 200; last: ${last ?? '-'}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A connection to one node (`host:port`). */
function nodeClient(node: string): Redis {
  const [host, port] = node.split(':');
  return new Redis(Number(port), host!, { maxRetriesPerRequest: 1 });
}

/** A counter key whose partition lies on the cluster's first master (slots 0-5460). */
function keyOnFirstMaster(prefix: string): string {
  const keys = new Keys(prefix);
  for (let i = 0; ; i++) {
    const key = `k${i}`;
    const slot = calculateSlot(keys.state(partitionOf(16, 'counter', key), 'counter', key));
    if (slot < 5461) return key;
  }
}

/** True once the killed master's replica serves its slots (slot 0) as a master. */
async function replicaPromoted(cluster: LocalCluster): Promise<boolean> {
  const r = nodeClient(cluster.replicas[0]!);
  try {
    return /role:master/.test(await r.info('replication'));
  } finally {
    r.disconnect();
  }
}

describe('failover: a master killed under load', () => {
  let cluster: LocalCluster;
  let server: LatchkeyServer | undefined;

  beforeEach(async () => {
    cluster = await startLocalCluster({ masters: 3, replicasPerMaster: 1 });
  }, 60_000);

  afterEach(async () => {
    await server?.close();
    server = undefined;
    await cluster?.stop();
  });

  it("its replica takes over and, with durability 'replicated', no acknowledged add or workflow is lost or applied twice", async () => {
    const prefix = newPrefix();
    const store = createRedisStore({
      cluster: cluster.nodes,
      prefix,
      ...FAST_TIMINGS,
      durability: { replicas: 1, timeoutMs: 1000 },
      logger: quietLogger,
    });
    server = await serve({
      services: [counter, steps],
      store,
      port: 0,
      host: '127.0.0.1',
      handleSignals: false,
      logger: quietLogger,
    });
    const base = server.url;
    const answers = new Map<number, unknown[]>();
    let done = 0;
    const clients = Array.from({ length: COUNTERS }, async (_, c) => {
      const got: unknown[] = [];
      answers.set(c, got);
      for (let i = 0; i < ADDS; i++) {
        got.push(await untilAnswered(base, `/counter/c${c}/add`, 1, `c${c}-${i}`));
        done++;
      }
    });
    const flows = Array.from({ length: 10 }, (_, w) =>
      untilAnswered(base, `/steps/w${w}/run`, `w${w}`, `w${w}`),
    );
    // Kill the master under load: once a third of the adds were answered.
    await until('a third of the adds answered', () => done >= (COUNTERS * ADDS) / 3, 60_000, 20);
    const victim = cluster.masters[0]!;
    await cluster.kill(victim);
    // Its replica takes over; until the dead node is back (as the new master's replica), that
    // shard has no replica, so its writes are refused with NOT_REPLICATED and clients retry.
    const answeredAtKill = done;
    await until('the replica promoted', () => replicaPromoted(cluster), 30_000, 100);
    await cluster.restart(victim);
    await Promise.all(clients);
    expect(done).toBeGreaterThan(answeredAtKill);
    expect(await Promise.all(flows)).toEqual(Array.from({ length: 10 }, (_, w) => `w${w}-a-b-c`));
    expect(done).toBe(COUNTERS * ADDS);
    for (let c = 0; c < COUNTERS; c++) {
      // Each add answered once with its own value: none lost (the count), none applied twice.
      const values = (answers.get(c) as number[]).slice().sort((a, b) => a - b);
      expect(values).toEqual(Array.from({ length: ADDS }, (_, i) => i + 1));
      const final = await untilAnswered(base, `/counter/c${c}/get`, null, `get-${c}`);
      expect(final).toBe(ADDS);
    }
  }, 180_000);

  // A replica that lags (here: stopped) when its master dies loses what the master had not sent
  // it yet. 'primary' acknowledges such writes, so the failover loses acknowledged adds;
  // 'replicated' refuses them (503 NOT_REPLICATED: not acknowledged), and keeps every one it
  // acknowledged.
  for (const durability of ['primary', 'replicated'] as const) {
    it(`with durability '${durability}', a lagging replica's failover ${durability === 'primary' ? 'loses acknowledged adds' : 'keeps every acknowledged add'}`, async () => {
      const prefix = newPrefix();
      server = await serve({
        services: [counter],
        store: createRedisStore({
          cluster: cluster.nodes,
          prefix,
          ...FAST_TIMINGS,
          durability: durability === 'primary' ? 'primary' : { replicas: 1, timeoutMs: 300 },
          logger: quietLogger,
        }),
        port: 0,
        host: '127.0.0.1',
        handleSignals: false,
        logger: quietLogger,
      });
      const base = server.url;
      // A key of a partition on the first master (slots 0-5460).
      const key = keyOnFirstMaster(prefix);
      for (let i = 0; i < 5; i++) await untilAnswered(base, `/counter/${key}/add`, 1, `warm-${i}`);
      // The replica stops, and its master drops the link: nothing written from now on reaches it.
      const replicaPid = cluster.pid(cluster.replicas[0]!)!;
      process.kill(replicaPid, 'SIGSTOP');
      const master = nodeClient(cluster.masters[0]!);
      try {
        await master.client('KILL', 'TYPE', 'replica');
        await until('the master without a replica', async () =>
          /connected_slaves:0/.test(await master.info('replication')),
        );
      } finally {
        master.disconnect();
      }
      let acked = 5;
      try {
        for (let i = 0; i < 20; i++) {
          const r = await post(base, `/counter/${key}/add`, 1, { 'idempotency-key': `lag-${i}` });
          if (r.status === 200) acked++;
          else expect(r.body).toMatchObject({ errorCode: 'NOT_REPLICATED' });
        }
        await cluster.kill(cluster.masters[0]!);
      } finally {
        process.kill(replicaPid, 'SIGCONT');
      }
      await until('the replica promoted', () => replicaPromoted(cluster), 30_000, 100);
      await cluster.restart(cluster.masters[0]!);
      const value = (await untilAnswered(base, `/counter/${key}/get`, null, 'get')) as number;
      if (durability === 'primary') {
        expect(acked).toBe(25);
        expect(value).toBeLessThan(acked);
      } else {
        expect(acked).toBe(5);
        expect(value).toBe(acked);
      }
    }, 180_000);
  }
});
