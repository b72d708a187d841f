/**
 * The push tests' resources (push*.redis.test.ts): a fresh prefix, the function as a separate
 * process (test/fixtures/deployment.mjs serving push-services.mjs on a fixed free port, so a
 * restarted one answers at the same URI), an engine in this process registered with it, and a
 * Redis connection for the fixtures' execution counters. Torn down when the test finishes.
 */
import { expect } from 'vitest';
import type { Entry, LatchkeyServer } from '@latchkey/core';
import { freePort } from '@latchkey/redis-store/testing';
import { localgreeter } from '../fixtures/push-local.mjs';
import {
  deletePrefix,
  newPrefix,
  post,
  spawnWorker,
  startServer,
  until,
  type WorkerProcess,
} from './harness.js';
import { rawClient, type RawRedis, type RedisTarget } from './redis.js';

/** Deadline of anything a push test waits for (ms). */
export const DEADLINE_MS = 60_000;

export interface PushEnv {
  prefix: string;
  port: number;
  fn: WorkerProcess;
  engine: LatchkeyServer;
  redis: RawRedis;
  /** The second deployment's process, with `other` (registered too). */
  other?: WorkerProcess;
  spawnFn(env?: Record<string, string>): Promise<WorkerProcess>;
}

export async function setupPush(
  redisTarget: RedisTarget,
  onTestFinished: (fn: () => Promise<void>) => void,
  opts: {
    fnEnv?: Record<string, string>;
    deployment?: { timeoutMs?: number; eagerStateBytes?: number };
    signingKey?: string;
    /** The fixture module a second deployment serves (its own process, registered as well). */
    other?: string;
    /** Run the engine's admin API (and so its metrics, `GET /metrics`). */
    admin?: boolean;
  } = {},
): Promise<PushEnv> {
  const prefix = newPrefix();
  const port = await freePort();
  const fns: WorkerProcess[] = [];
  const redis = rawClient(redisTarget);
  const spawnFn = async (env: Record<string, string> = {}): Promise<WorkerProcess> => {
    const w = await spawnWorker(redisTarget, prefix, {
      script: 'deployment.mjs',
      env: { LK_SERVICES: 'push-services.mjs', LK_PORT: String(port), ...env },
    });
    fns.push(w);
    return w;
  };
  const env = { prefix, port, redis, spawnFn } as PushEnv;
  onTestFinished(async () => {
    await env.engine?.close().catch(() => undefined);
    await Promise.all(fns.map((w) => w.kill('SIGKILL').catch(() => undefined)));
    redis.disconnect();
    await deletePrefix(redisTarget, prefix);
  });
  env.fn = await spawnFn(opts.fnEnv);
  const uris = [{ uri: `http://127.0.0.1:${port}`, ...opts.deployment }];
  if (opts.other) {
    const o = await spawnWorker(redisTarget, prefix, {
      script: 'deployment.mjs',
      env: { LK_SERVICES: opts.other },
    });
    fns.push(o);
    env.other = o;
    uris.push({ uri: `http://127.0.0.1:${o.port}` });
  }
  env.engine = await startServer(redisTarget, prefix, [localgreeter], {
    serve: {
      deployments: uris,
      ...(opts.signingKey ? { signingKey: opts.signingKey } : {}),
      ...(opts.admin ? { admin: { port: 0 } } : {}),
    },
  });
  return env;
}

/** `setupPush` on `redisTarget`, with `defaults` under each test's options (a test file's `setup`). */
export function pushSetup(
  redisTarget: RedisTarget,
  defaults: Parameters<typeof setupPush>[2] = {},
): (
  onTestFinished: (fn: () => Promise<void>) => void,
  opts?: Parameters<typeof setupPush>[2],
) => Promise<PushEnv> {
  return (onTestFinished, opts = {}) =>
    setupPush(redisTarget, onTestFinished, {
      ...defaults,
      ...opts,
      fnEnv: { ...defaults.fnEnv, ...opts.fnEnv },
    });
}

/** Invoke requests the function process received for `target` (`service/handler`). */
export function invokes(fn: WorkerProcess, target: string): number {
  return fn.output.filter((l) => l === `INVOKE ${target}`).length;
}

/** How many times the closure of step `name` of invocation `id` ran. */
export async function runs(env: PushEnv, id: string, name: string): Promise<number> {
  return Number((await env.redis.get(`${env.prefix}:fx:${id}:${name}`)) ?? 0);
}

export async function submit(env: PushEnv, path: string, body: unknown): Promise<string> {
  const r = await post(env.engine.url, `${path}/send`, body);
  expect(r.status).toBe(202);
  return (r.body as { invocationId: string }).invocationId;
}

/** Waits for the invocation's outcome; returns it with the journal. */
export async function outcome(
  env: PushEnv,
  id: string,
): Promise<{ value: unknown; journal: Entry[] }> {
  const info = await until(
    `invocation ${id} completes`,
    async () => {
      const i = await env.engine.store.describe(id, true);
      return i?.status === 'completed' ? i : undefined;
    },
    DEADLINE_MS,
  );
  expect(info.outcome?.ok).toBe(true);
  const out = info.outcome as { ok: true; value?: string };
  return {
    value: out.value === undefined ? undefined : JSON.parse(out.value),
    journal: info.journal ?? [],
  };
}
