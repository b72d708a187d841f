/**
 * Counting Redis commands: `INFO commandstats` snapshots (every command Redis
 * executed, including those run inside Lua scripts) and a MONITOR sampler
 * that tells top-level commands from commands run inside scripts.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { scriptSources } from '@latchkey/redis-store';

/** Commands per name, e.g. `evalsha` → 1200, `client|setname` → 3. */
export type Counts = Map<string, number>;

/**
 * Commands never counted: what the benchmark itself sends to read the numbers
 * (`INFO`, `MONITOR`, the connection set-up of its own connections).
 */
export const EXCLUDED = new Set([
  'info',
  'monitor',
  'client|setname',
  'client|setinfo',
  'hello',
  'select',
  'ping',
  'quit',
]);

/** Parses `INFO commandstats` into calls per command. */
export function parseCommandStats(info: string): Counts {
  const out: Counts = new Map();
  for (const line of info.split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** INFO commandstats, summed over `nodes` (a cluster's masters, or one server). */
export async function commandStats(nodes: Redis | readonly Redis[]): Promise<Counts> {
  const all: readonly Redis[] = Array.isArray(nodes) ? nodes : [nodes as Redis];
  const out: Counts = new Map();
  const each = await Promise.all(
    all.map(async (n) => parseCommandStats(await n.info('commandstats'))),
  );
  for (const counts of each) for (const [k, v] of counts) out.set(k, (out.get(k) ?? 0) + v);
  return out;
}

/** INFO memory's used_memory (bytes), summed over `nodes`. */
export async function usedMemory(nodes: readonly Redis[]): Promise<number> {
  const each = await Promise.all(nodes.map((n) => n.info('memory')));
  return each.reduce((s, info) => s + Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0), 0);
}

/** Adds `b`'s counts into `a`. */
function merge(a: Counts, b: Counts): void {
  for (const [k, v] of b) a.set(k, (a.get(k) ?? 0) + v);
}

/** after − before, per command, without {@link EXCLUDED}. */
export function diff(after: Counts, before: Counts): Counts {
  const out: Counts = new Map();
  for (const [k, v] of after) {
    if (EXCLUDED.has(k)) continue;
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out.set(k, d);
  }
  return out;
}

export function sum(c: Counts): number {
  let n = 0;
  for (const v of c.values()) n += v;
  return n;
}

/** Adds `b` × `factor` to `a` (in place). */
export function addScaled(a: Counts, b: Counts, factor: number): Counts {
  for (const [k, v] of b) a.set(k, (a.get(k) ?? 0) + v * factor);
  return a;
}

/** Per-command numbers divided by `n`, largest first, rounded, tiny ones dropped. */
export function perInvocation(c: Counts, n: number, min = 0.005): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of [...c].sort((x, y) => y[1] - x[1])) {
    const x = v / n;
    if (Math.abs(x) >= min) out[k] = Math.round(x * 1000) / 1000;
  }
  return out;
}

/**
 * Names of the Lua scripts the engine and BullMQ define, by SHA1 (what
 * EVALSHA carries), computed the way ioredis computes them.
 */
export function scriptNames(): Map<string, string> {
  const names = new Map<string, string>();
  const sha = (lua: string): string => createHash('sha1').update(lua).digest('hex');
  try {
    for (const [name, lua] of scriptSources()) names.set(sha(lua), `lk.${name}`);
    const entry = fileURLToPath(import.meta.resolve('@latchkey/redis-store'));
    const req = createRequire(entry);
    const bullDir = join(dirname(req.resolve('bullmq')), 'scripts');
    for (const f of readdirSync(bullDir)) {
      if (!/^.+-\d+\.js$/.test(f)) continue;
      const mod = req(join(bullDir, f)) as Record<string, { name?: string; content?: string }>;
      for (const v of Object.values(mod)) {
        if (v && typeof v.content === 'string' && typeof v.name === 'string')
          names.set(sha(v.content), `bullmq.${v.name}`);
      }
    }
  } catch {
    // best effort: unknown scripts show as their SHA prefix
  }
  return names;
}

/** What a MONITOR sample saw. */
export interface MonitorCounts {
  /** Commands clients sent (EVALSHA/EVAL counted once each), by command; scripts by name. */
  top: Counts;
  /** Commands clients sent, by command name only (`evalsha`, `hmget`...). */
  topRaw: Counts;
  /** Commands run inside Lua scripts, by command. */
  lua: Counts;
  /**
   * Commands run inside Lua scripts, by script name. MONITOR shows a script's
   * EVALSHA line before the commands it runs, and Redis runs one script at a
   * time, so each [lua] line belongs to the last script line before it.
   */
  luaByScript: Counts;
  /** How long the sample listened (ms). */
  ms: number;
  /** False when MONITOR was refused (e.g. a managed Redis): nothing was counted. */
  available: boolean;
}

/**
 * Listens with MONITOR on its own connection. MONITOR slows Redis down, so the
 * benchmark uses it only for short samples that are not timed.
 */
export class MonitorSampler {
  private readonly top: Counts = new Map();
  private readonly topRaw: Counts = new Map();
  private readonly lua: Counts = new Map();
  private readonly luaByScript: Counts = new Map();
  private script = '?';
  private counting = true;
  private started = performance.now();
  private readonly mon: Redis | undefined;
  private readonly names: Map<string, string>;

  private constructor(mon: Redis | undefined, names: Map<string, string>) {
    this.mon = mon;
    this.names = names;
    mon?.on('monitor', (_time: string, args: string[], source: string) => {
      if (!this.counting) return;
      const cmd = (args[0] ?? '').toLowerCase();
      if (source === 'lua') {
        this.lua.set(cmd, (this.lua.get(cmd) ?? 0) + 1);
        this.luaByScript.set(this.script, (this.luaByScript.get(this.script) ?? 0) + 1);
        return;
      }
      if (EXCLUDED.has(cmd)) return;
      this.topRaw.set(cmd, (this.topRaw.get(cmd) ?? 0) + 1);
      let name = cmd;
      if (cmd === 'evalsha')
        name = `evalsha ${this.names.get(args[1] ?? '') ?? (args[1] ?? '').slice(0, 8)}`;
      else if (cmd === 'eval')
        name = `eval ${
          this.names.get(
            createHash('sha1')
              .update(args[1] ?? '')
              .digest('hex'),
          ) ?? '?'
        }`;
      this.top.set(name, (this.top.get(name) ?? 0) + 1);
      if (cmd === 'evalsha' || cmd === 'eval') this.script = name.slice(cmd.length + 1);
    });
  }

  /**
   * Starts listening; when MONITOR is refused, returns a sampler that reports `available: false`.
   *
   * Not `admin.monitor()`: ioredis switches a connection to monitoring mode
   * one microtask after MONITOR's OK, so monitor lines arriving in the same
   * read as the OK raise "Command queue state error" on the new connection
   * before `monitor()` has returned it (nobody listens: the process crashes).
   * Here the error listener is there before the connection opens; the few
   * lines lost that way fall before the sample's load starts.
   */
  static async start(
    nodes: Redis | readonly Redis[],
    names: Map<string, string>,
  ): Promise<{ stop(): MonitorCounts }> {
    if (!Array.isArray(nodes)) return MonitorSampler.startOne(nodes as Redis, names);
    const all = nodes as readonly Redis[];
    // A cluster: one MONITOR per master, their counts added up.
    const each = await Promise.all(all.map((n) => MonitorSampler.startOne(n, names)));
    return {
      stop: () => {
        const parts = each.map((s) => s.stop());
        const sum: MonitorCounts = {
          top: new Map(),
          topRaw: new Map(),
          lua: new Map(),
          luaByScript: new Map(),
          ms: Math.max(...parts.map((x) => x.ms)),
          available: parts.every((x) => x.available),
        };
        for (const x of parts) {
          merge(sum.top, x.top);
          merge(sum.topRaw, x.topRaw);
          merge(sum.lua, x.lua);
          merge(sum.luaByScript, x.luaByScript);
        }
        return sum;
      },
    };
  }

  private static async startOne(admin: Redis, names: Map<string, string>): Promise<MonitorSampler> {
    const mon = admin.duplicate({ monitor: true, lazyConnect: true });
    mon.on('error', () => undefined);
    const sampler = new MonitorSampler(mon, names);
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('MONITOR did not start')), 10_000);
        const onError = (e: Error): void => {
          // MONITOR refused (e.g. a managed Redis); queue-state errors are the race above.
          if (e.message.startsWith('Command queue state error')) return;
          clearTimeout(t);
          mon.off('error', onError);
          reject(e);
        };
        mon.on('error', onError);
        mon.once('monitoring', () => {
          clearTimeout(t);
          mon.off('error', onError);
          sampler.started = performance.now();
          resolve();
        });
        mon.connect().catch((e: unknown) => {
          clearTimeout(t);
          reject(e instanceof Error ? e : new Error(String(e)));
        });
      });
      return sampler;
    } catch {
      mon.disconnect();
      sampler.counting = false;
      return new MonitorSampler(undefined, names);
    }
  }

  /** Stops counting (what arrives later is ignored) and closes the connection. */
  stop(): MonitorCounts {
    this.counting = false;
    const ms = performance.now() - this.started;
    this.mon?.disconnect();
    return {
      top: this.top,
      topRaw: this.topRaw,
      lua: this.lua,
      luaByScript: this.luaByScript,
      ms,
      available: this.mon !== undefined,
    };
  }
}

/**
 * For each command, the share of its calls that clients sent (the rest ran
 * inside scripts), from MONITOR samples: 1 for EVALSHA or BZPOPMIN (scripts
 * cannot run them), 0 for what only scripts run, in between for commands seen
 * both ways (e.g. HMGET). A command no sample saw counts as top-level.
 */
export function topLevelShares(...samples: MonitorCounts[]): (command: string) => number {
  const top: Counts = new Map();
  const lua: Counts = new Map();
  for (const m of samples) {
    addScaled(top, m.topRaw, 1);
    addScaled(lua, m.lua, 1);
  }
  return (command: string): number => {
    const base = command.split('|')[0]!.toLowerCase();
    const t = top.get(base) ?? 0;
    const l = lua.get(base) ?? 0;
    return t + l === 0 ? 1 : t / (t + l);
  };
}

/** Calls of `c` weighted by the top-level share of each command. */
export function topLevelOf(c: Counts, share: (command: string) => number): number {
  let n = 0;
  for (const [k, v] of c) n += v * share(k);
  return n;
}
