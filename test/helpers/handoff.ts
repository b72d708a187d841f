/**
 * Shared by the hand-off tests (handoff, delegate): a fresh prefix with worker processes and
 * in-process servers torn down at the end, the hand-off registry, and BullMQ's record of the
 * mailbox jobs it added.
 */
import { inject } from 'vitest';
import type { LatchkeyServer } from '@latchkey/core';
import {
  deletePrefix,
  newPrefix,
  spawnWorker,
  startServer,
  until,
  type WorkerProcess,
} from './harness.js';
import { rawClient, type RawRedis } from './redis.js';

const redisTarget = inject('redisTarget');
/** Deadline for recovery after a kill (lease 2 s + reconciler, on a loaded machine). */
export const RECOVERY_MS = 60_000;

export interface HandoffEnv {
  prefix: string;
  redis: RawRedis;
  workers: WorkerProcess[];
  servers: LatchkeyServer[];
}

type OnFinished = (fn: () => Promise<void>) => void;

/** A fresh prefix and a Redis connection; worker processes and servers are torn down at the end. */
export function setup(onTestFinished: OnFinished): HandoffEnv {
  const env: HandoffEnv = {
    prefix: newPrefix(),
    redis: rawClient(redisTarget),
    workers: [],
    servers: [],
  };
  onTestFinished(async () => {
    await Promise.all(env.workers.map((w) => w.kill('SIGKILL').catch(() => undefined)));
    for (const s of env.servers) await s.close().catch(() => undefined);
    env.redis.disconnect();
    await deletePrefix(redisTarget, env.prefix);
  });
  return env;
}

/** A worker process of the env (see `spawnWorker`). */
export async function worker(
  env: HandoffEnv,
  opts: Parameters<typeof spawnWorker>[2],
): Promise<WorkerProcess> {
  const w = await spawnWorker(redisTarget, env.prefix, opts);
  env.workers.push(w);
  return w;
}

/** A server in this process (see `startServer`). */
export async function server(
  env: HandoffEnv,
  defs: Parameters<typeof startServer>[2],
  opts: Parameters<typeof startServer>[3],
): Promise<LatchkeyServer> {
  const s = await startServer(redisTarget, env.prefix, defs, opts);
  env.servers.push(s);
  return s;
}

/** Waits until `n` worker processes announced that they take hand-offs. */
export async function announced(env: HandoffEnv, n: number): Promise<void> {
  await until(
    `${n} workers in the hand-off registry`,
    async () => (await env.redis.hlen(`${env.prefix}:workers`)) === n,
  );
}

/** Ids of the mailbox jobs BullMQ added (its `added` events, every shard), by invocation id. */
export async function addedJobs(env: HandoffEnv, shards = 4): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let s = 0; s < shards; s++) {
    const events = await env.redis.xrange(`${env.prefix}:{q${s}}:jobs:events`, '-', '+');
    for (const [, fields] of events) {
      const o: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) o[fields[i]!] = fields[i + 1]!;
      if (o['event'] === 'added' && o['jobId']) ids.add(o['jobId'].replace(/-.*$/, ''));
    }
  }
  return ids;
}

/** Waits until an invocation completed. */
export async function completed(s: LatchkeyServer, id: string): Promise<void> {
  await until(
    `invocation ${id} to complete`,
    async () => (await s.store.describe(id))?.status === 'completed',
    RECOVERY_MS,
    100,
  );
}
