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

/** One top-level definition of the prelude (`local function name` or `local NAME =`), with its comment. */
interface PreludePart {
  name: string;
  text: string;
}

/**
 * Lua source without its comments and string literals (to find the names a piece of code refers
 * to). Comments go first: no string literal of ours contains `--`.
 */
function codeOnly(lua: string): string {
  return lua
    .replace(/--\[\[[\s\S]*?\]\]/g, '')
    .replace(/--.*$/gm, '')
    .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g, "''");
}

/** Splits the prelude into its top-level definitions, in order. */
function preludeParts(prelude: string): PreludePart[] {
  const parts: PreludePart[] = [];
  let pending: string[] = [];
  let current: PreludePart | undefined;
  for (const line of prelude.split('\n')) {
    const def = /^local (?:function )?([A-Za-z_][A-Za-z0-9_]*)/.exec(line);
    if (def) {
      current = { name: def[1]!, text: [...pending, line].join('\n') };
      parts.push(current);
      pending = [];
    } else if (line.startsWith('--') || line.trim() === '') {
      // A comment (or blank line) at the top level belongs to the next definition.
      pending.push(line);
    } else if (current) {
      current.text += `\n${line}`;
    }
  }
  return parts;
}

/**
 * The prelude definitions a script body needs: those it refers to, and what they refer to, in
 * prelude order. Lua creates every local function of a script on each call (and collects it
 * afterwards), so a script that carries only its own helpers runs measurably faster.
 */
function helpersFor(parts: PreludePart[], body: string): string {
  const needed = new Set<string>();
  const visit = (lua: string): void => {
    const code = codeOnly(lua);
    for (const part of parts) {
      if (!needed.has(part.name) && new RegExp(`\\b${part.name}\\b`).test(code)) {
        needed.add(part.name);
        visit(part.text);
      }
    }
  };
  visit(body);
  return parts
    .filter((p) => needed.has(p.name))
    .map((p) => p.text)
    .join('\n');
}

function load(): Map<ScriptName, string> {
  if (sources) return sources;
  const parts = preludeParts(readFileSync(new URL('prelude.lua', LUA_DIR), 'utf8'));
  sources = new Map();
  for (const [name, keys] of Object.entries(SCRIPTS) as [ScriptName, number][]) {
    const body = readFileSync(new URL(`${name}-${keys}.lua`, LUA_DIR), 'utf8');
    sources.set(name, `${helpersFor(parts, body)}\n${body}`);
  }
  return sources;
}

/**
 * The Lua source of each of Latchkey's scripts exactly as it is defined on a connection (its
 * body after the prelude helpers it uses), by script name: its SHA1 is what EVALSHA carries.
 */
export function scriptSources(): ReadonlyMap<ScriptName, string> {
  return load();
}

/** Defines every script on a connection. */
export function defineScripts(redis: Redis): ScriptedRedis {
  for (const [name, lua] of load()) {
    redis.defineCommand(name, { numberOfKeys: SCRIPTS[name], lua });
  }
  return redis as ScriptedRedis;
}
