import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, type Redis } from 'ioredis';
import type { ScriptWatch } from './context.js';
import type { Replication } from './durability.js';
import { luaKeyNames } from './keys.js';

const LUA_DIR = new URL('../lua/', import.meta.url);

/**
 * Script names, as files `lua/<name>-<numKeys>.lua`; for a script in {@link VARIABLE_KEYS},
 * numKeys is the most it takes.
 */
const SCRIPTS = {
  acceptInvocation: 7,
  startAttempt: 6,
  commitEntries: 4,
  suspendInvocation: 5,
  completeInvocation: 6,
  endAttempt: 3,
  renewLease: 3,
  reconcilePartition: 2,
  claimPartition: 1,
  heartbeatProcess: 1,
  deliverCompletion: 1,
  terminateInvocation: 4,
  controlInvocation: 3,
  purgeInvocation: 1,
  patchState: 2,
  attachInvocation: 1,
  ackDeliveries: 2,
  watchOutcome: 1,
  resolveSignal: 1,
  // The admin API's indexes (listing, keys, their expiry) and state clearing.
  listIndex: 1,
  listKeys: 1,
  expireIndexes: 1,
  clearState: 2,
  restartInvocation: 5,
  // The hand-off: the registry of workers taking hand-offs, a lease handed back.
  announceWorker: 1,
  releaseLease: 3,
} as const;

/** A script name. */
export type ScriptName = keyof typeof SCRIPTS;

/**
 * Scripts whose KEYS depend on the invocation (a service has no state hash, only exclusive and
 * workflow invocations have an inbox...): their callers pass the key count first, then only the
 * keys the invocation needs.
 */
const VARIABLE_KEYS: ReadonlySet<ScriptName> = new Set<ScriptName>([
  'acceptInvocation',
  'startAttempt',
  'commitEntries',
  'suspendInvocation',
  'completeInvocation',
  'terminateInvocation',
]);

/** Scripts that only read (no WAIT after them with `durability: 'replicated'`). */
const READ_ONLY: ReadonlySet<ScriptName> = new Set<ScriptName>(['listIndex', 'listKeys']);

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
  // The key layout's names first (generated from keys.ts), then the hand-written helpers.
  const prelude = `${luaKeyNames()}\n${readFileSync(new URL('prelude.lua', LUA_DIR), 'utf8')}`;
  const parts = preludeParts(prelude);
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

/** A script as {@link ScriptCommand}s send it: source, SHA1, key count, and the sockets it was loaded on. */
interface LoadedScript {
  lua: string;
  sha: string;
  /** The key count, or undefined when each call passes its own first. */
  keys: number | undefined;
  /** The connections' sockets on which the script was sent in full (EVAL) once. */
  sockets: WeakSet<object>;
}

const NO_ARGS: never[] = [];
/** Replies as strings, as ioredis's script commands give them. */
const UTF8 = { replyEncoding: 'utf8' } as const;

/**
 * One call of a script: EVALSHA, or EVAL with the whole source the first time on a socket (so a
 * restarted Redis is taught the script before its EVALSHAs arrive), as ioredis's own script
 * commands do. The arguments are set directly instead of passed to the constructor: `Command`
 * flattens them with `Array.prototype.flat`, which costs about 200 ns per argument on Node 20
 * (7-8 µs for an accept's 39; bench/README.md).
 */
class ScriptCommand extends Command {
  socket: object | undefined;
  private readonly script: LoadedScript;

  constructor(script: LoadedScript, args: (string | number)[]) {
    super('evalsha', NO_ARGS, UTF8);
    this.script = script;
    this.args = args;
    this.stringifyArguments(); // what the constructor does to its arguments (numbers to strings)
  }

  override toWritable(socket: object): string | Buffer {
    const s = this.script;
    this.socket = socket;
    if (!s.sockets.has(socket)) {
      s.sockets.add(socket);
      this.name = 'eval';
      this.args[0] = s.lua;
    } else if (this.name === 'eval') {
      this.name = 'evalsha';
      this.args[0] = s.sha;
    }
    return super.toWritable(socket);
  }
}

/** EVALSHA's arguments: the SHA1, the key count (unless the call passes it first), keys and ARGV. */
function commandArgs(script: LoadedScript, args: (string | number)[]): (string | number)[] {
  return script.keys === undefined ? [script.sha, ...args] : [script.sha, script.keys, ...args];
}

/** Runs a script on a connection (see {@link ScriptCommand}); a NOSCRIPT reply is answered by sending it again in full. */
function scriptFunction(redis: Redis, script: LoadedScript): ScriptFn {
  return (...args) => {
    const cmd = new ScriptCommand(script, commandArgs(script, args));
    return (redis.sendCommand(cmd) as Promise<unknown>).catch((e: unknown) => {
      if (!(e instanceof Error) || !e.message.includes('NOSCRIPT')) throw e;
      // Redis lost its scripts (SCRIPT FLUSH, or a restart on the same socket): EVAL this time.
      if (cmd.socket) script.sockets.delete(cmd.socket);
      return redis.sendCommand(new ScriptCommand(script, commandArgs(script, args)));
    });
  };
}

/**
 * Defines every script on a connection: as ioredis commands, and, for calls on the connection
 * itself, sent as {@link ScriptCommand}s. A pipeline takes the connection's script functions
 * over and calls them on itself: those calls go to ioredis's own (queued in the pipeline).
 */
export function defineScripts(
  redis: Redis,
  watch?: ScriptWatch,
  replication?: Replication,
): ScriptedRedis {
  const scripted = redis as ScriptedRedis;
  for (const [name, lua] of load()) {
    const keys = VARIABLE_KEYS.has(name) ? undefined : SCRIPTS[name];
    // Without numberOfKeys, ioredis takes the key count from each call's first argument.
    redis.defineCommand(name, keys === undefined ? { lua } : { numberOfKeys: keys, lua });
    const queued = scripted[name];
    const sha = createHash('sha1').update(lua).digest('hex');
    const unreplicated = scriptFunction(redis, { lua, sha, keys, sockets: new WeakSet() });
    // With `durability: 'replicated'`, a write's reply counts once a replica has it.
    const direct: ScriptFn =
      replication && !READ_ONLY.has(name)
        ? (...args) =>
            replication.after(unreplicated(...args), String(args[keys === undefined ? 1 : 0]))
        : unreplicated;
    scripted[name] = function (this: unknown, ...args: (string | number)[]) {
      if (this !== redis) return queued.apply(this, args);
      const observer = watch?.observer;
      if (!observer) return direct(...args);
      // Timed for metrics: the round trip as this process sees it, whatever the reply.
      const t0 = performance.now();
      const reply = direct(...args);
      const done = (): void => observer.script(name, (performance.now() - t0) / 1000);
      reply.then(done, done);
      return reply;
    };
  }
  return scripted;
}
