import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

const LUA_DIR = new URL('../lua/', import.meta.url);

/** Script names, as files `lua/<name>-<numKeys>.lua`. */
const SCRIPTS = {
  acceptInvocation: 7,
  startAttempt: 6,
  commitEntries: 4,
  suspendInvocation: 5,
  completeInvocation: 6,
  endAttempt: 3,
  renewLease: 3,
  reconcilePartition: 2,
  deliverCompletion: 1,
  terminateInvocation: 4,
  controlInvocation: 3,
  purgeInvocation: 1,
  patchState: 2,
  attachInvocation: 1,
  ackDeliveries: 2,
  watchOutcome: 1,
} as const;

/** A script name. */
export type ScriptName = keyof typeof SCRIPTS;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/** A Redis connection with Latchkey's scripts defined (EVALSHA, falling back to EVAL). */
export type ScriptedRedis = Redis & Record<ScriptName, ScriptFn>;

let sources: Map<ScriptName, string> | undefined;

function load(): Map<ScriptName, string> {
  if (sources) return sources;
  const prelude = readFileSync(new URL('prelude.lua', LUA_DIR), 'utf8');
  sources = new Map();
  for (const [name, keys] of Object.entries(SCRIPTS) as [ScriptName, number][]) {
    const body = readFileSync(new URL(`${name}-${keys}.lua`, LUA_DIR), 'utf8');
    sources.set(name, `${prelude}\n${body}`);
  }
  return sources;
}

/** Defines every script on a connection. */
export function defineScripts(redis: Redis): ScriptedRedis {
  for (const [name, lua] of load()) {
    redis.defineCommand(name, { numberOfKeys: SCRIPTS[name], lua });
  }
  return redis as ScriptedRedis;
}
