/**
 * The per-test resources of the tests that kill worker processes (`crash`, `duties`,
 * `comm-crash`): a fresh prefix, an ingress-only server in the test process and a Redis
 * connection for checks. The worker processes a test spawns go into `workers`; everything is torn
 * down when the test finishes, pass or fail.
 */
import type { AnyDefinition, LatchkeyServer } from '@latchkey/core';
import { rawClient, type RawRedis, type RedisTarget } from './redis.js';
import { deletePrefix, newPrefix, startServer, type WorkerProcess } from './harness.js';

export interface CrashEnv {
  prefix: string;
  ingress: LatchkeyServer;
  redis: RawRedis;
  workers: WorkerProcess[];
}

/** Sets up one test's resources; `onTestFinished` gets their teardown (workers SIGKILLed). */
export async function setupCrashEnv(
  redisTarget: RedisTarget,
  services: AnyDefinition[],
  onTestFinished: (fn: () => Promise<void>) => void,
): Promise<CrashEnv> {
  const prefix = newPrefix();
  const redis = rawClient(redisTarget);
  const env: CrashEnv = {
    prefix,
    redis,
    workers: [],
    ingress: undefined as unknown as LatchkeyServer,
  };
  onTestFinished(async () => {
    await Promise.all(env.workers.map((w) => w.kill('SIGKILL').catch(() => undefined)));
    await env.ingress?.close().catch(() => undefined);
    redis.disconnect();
    await deletePrefix(redisTarget, prefix);
  });
  env.ingress = await startServer(redisTarget, prefix, services, { workers: false });
  return env;
}
