/**
 * Latchkey's benchmark: throughput, latency and Redis commands per invocation
 * for a no-op call, a 3-step workflow and an exclusive object handler.
 *
 *   npm run bench -- [--duration 5] [--concurrency 1,16,64] [--fsync-always]
 *
 * See bench/README.md for what every number means.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { serve } from '@latchkey/core';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store';
import type { LoadJob, LoadResult, ScenarioName } from './load.js';
import {
  MonitorSampler,
  addScaled,
  commandStats,
  diff,
  perInvocation,
  scriptNames,
  sum,
  topLevelOf,
  topLevelShares,
  type Counts,
  type MonitorCounts,
} from './redis-stats.js';
import { services } from './services.js';

const SCENARIOS: Record<ScenarioName, string> = {
  noop: 'no-op service call',
  workflow: '3-step workflow',
  counter: 'object add (100 keys)',
};

const COUNTER_KEYS = 100;

const HELP = `Usage: npm run bench -- [options]

  --duration <s>          timed window per scenario and concurrency (default 5)
  --concurrency <list>    concurrent clients, comma-separated (default 1,16,64)
  --scenarios <list>      any of noop,workflow,counter (default all)
  --sample <s>            length of the untimed MONITOR sample per row (default 1.5)
  --warmup <s>            warm-up per scenario before measuring (default 0.5)
  --fsync-always          private redis-server with appendfsync always (default everysec)
  --store-options <json>  extra createRedisStore options, e.g. '{"shards":8}' or
                          '{"redisOptions":{"enableAutoPipelining":true}}' (default none)
  --out <file>            JSON results (default bench/results/latest.json)
  --help

Set REDIS_URL to use an existing Redis instead of a private redis-server.
`;

interface Options {
  durationMs: number;
  concurrency: number[];
  scenarios: ScenarioName[];
  sampleMs: number;
  warmupMs: number;
  fsyncAlways: boolean;
  storeOptions: Record<string, unknown>;
  out: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      concurrency: { type: 'string', default: '1,16,64' },
      scenarios: { type: 'string', default: 'noop,workflow,counter' },
      sample: { type: 'string', default: '1.5' },
      warmup: { type: 'string', default: '0.5' },
      'fsync-always': { type: 'boolean', default: false },
      'store-options': { type: 'string', default: '{}' },
      out: { type: 'string', default: fileURLToPath(new URL('../results/latest.json', import.meta.url)) },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const seconds = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number of seconds, got ${JSON.stringify(v)}`);
    return Math.round(n * 1000);
  };
  const concurrency = values.concurrency.split(',').map((s) => Number(s.trim()));
  if (concurrency.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`--concurrency must list positive integers`);
  const scenarios = values.scenarios.split(',').map((s) => s.trim()) as ScenarioName[];
  for (const s of scenarios) if (!(s in SCENARIOS)) throw new Error(`unknown scenario ${s}; use ${Object.keys(SCENARIOS).join(',')}`);
  return {
    durationMs: seconds('duration', values.duration),
    concurrency,
    scenarios,
    sampleMs: seconds('sample', values.sample),
    warmupMs: seconds('warmup', values.warmup),
    fsyncAlways: values['fsync-always'],
    storeOptions: JSON.parse(values['store-options']) as Record<string, unknown>,
    out: values.out,
  };
}

/** Runs load jobs one at a time on the worker thread. */
class LoadWorker {
  private readonly worker = new Worker(new URL('./load.js', import.meta.url));

  run(job: LoadJob): Promise<LoadResult> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: { ok: true; res: LoadResult } | { ok: false; error: string }): void => {
        this.worker.off('error', onError);
        if (m.ok) resolve(m.res);
        else reject(new Error(m.error));
      };
      const onError = (e: Error): void => {
        this.worker.off('message', onMessage);
        reject(e);
      };
      this.worker.once('message', onMessage);
      this.worker.once('error', onError);
      this.worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** Calls of each script and the commands run inside it, per invocation, most commands first. */
function scriptTable(m: MonitorCounts, n: number): Row['redis']['scripts'] {
  const out: Row['redis']['scripts'] = {};
  const rows = [...m.top]
    .filter(([k]) => k.startsWith('evalsha ') || k.startsWith('eval '))
    .map(([k, calls]) => {
      const name = k.slice(k.indexOf(' ') + 1);
      const inside = m.luaByScript.get(name) ?? 0;
      return { name, calls, inside };
    })
    .sort((a, b) => b.inside - a.inside);
  for (const r of rows) {
    out[r.name] = { calls: r2(r.calls / n), inside: r2(r.inside / n), insidePerCall: r1(r.inside / Math.max(1, r.calls)) };
  }
  return out;
}

/** CPU time (ms) a process has used, from /proc (Linux); undefined elsewhere. */
function procCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

const r1 = (x: number): number => Math.round(x * 10) / 10;
/** A number for the table: '-' when it could not be measured. */
const fx = (x: number | undefined, digits: number): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(digits) : '-');
const r2 = (x: number): number => Math.round(x * 100) / 100;

/** Idle background: commands Redis ran while nothing was invoked. */
interface Idle {
  ms: number;
  total: Counts;
  monitor: MonitorCounts;
}

interface Row {
  scenario: ScenarioName;
  description: string;
  concurrency: number;
  invocations: number;
  errors: number;
  errorSamples: string[];
  elapsedS: number;
  throughput: number;
  latencyMs: { p50: number; p90: number; p99: number; mean: number; max: number };
  /**
   * CPU time per invocation (ms) in the timed window: this Node process (engine
   * and ingress; the HTTP client thread is in it too) and the private
   * redis-server (absent with REDIS_URL).
   */
  cpuMsPerInvocation: { node: number; redis?: number };
  redis: {
    /** All cmdstat_* calls per invocation in the timed window, idle background subtracted. */
    totalPerInvocation: number;
    /**
     * Commands clients sent per invocation in the timed window (EVALSHA once each):
     * every command's cmdstat calls × its top-level share in the MONITOR samples, idle subtracted.
     */
    topLevelPerInvocation: number;
    /** totalPerInvocation minus topLevelPerInvocation. */
    insideScriptsPerInvocation: number;
    /** Top-level commands per invocation counted directly in the MONITOR sample, idle subtracted (a cross-check). */
    topLevelPerInvocationMonitor: number;
    /** Commands inside scripts per invocation counted directly in the MONITOR sample, idle subtracted (a cross-check). */
    insideScriptsPerInvocationMonitor: number;
    /** Commands in the timed window before subtracting the idle background, and what was subtracted. */
    window: { ms: number; commands: number; idleSubtracted: number };
    /** cmdstat_* calls per invocation by command, timed window, before idle subtraction. */
    byCommand: Record<string, number>;
    /** Top-level commands per invocation by command (scripts by name), MONITOR sample, before idle subtraction. */
    topLevelByCommand: Record<string, number>;
    /** Per script: calls and commands run inside it per invocation (MONITOR sample, before idle subtraction). */
    scripts: Record<string, { calls: number; inside: number; insidePerCall: number }>;
    sample: { ms: number; invocations: number; monitorTop: number; monitorLua: number; commandstats: number };
  };
  check?: string;
}

async function main(): Promise<void> {
  const opt = options();
  const started = Date.now();
  let local: LocalRedis | undefined;
  let url = process.env['REDIS_URL'];
  const external = url !== undefined && url !== '';
  if (!external) {
    local = await startLocalRedis({ appendfsync: opt.fsyncAlways ? 'always' : 'everysec' });
    url = local.url;
  } else if (opt.fsyncAlways) {
    console.warn('--fsync-always is ignored with REDIS_URL: the server keeps its own appendfsync setting');
  }
  const redisUrl = url!;
  const prefix = external ? `lkbench-${randomBytes(4).toString('hex')}` : 'lk';
  const admin = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const load = new LoadWorker();
  let server: Awaited<ReturnType<typeof serve>> | undefined;

  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await load.close().catch(() => undefined);
    await server?.close().catch(() => undefined);
    if (external) {
      let cursor = '0';
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await admin.del(...keys);
      } while (cursor !== '0');
    }
    await admin.quit().catch(() => undefined);
    await local?.stop();
  };
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    server = await serve({
      services,
      redis: redisUrl,
      port: 0,
      host: '127.0.0.1',
      handleSignals: false,
      storeOptions: { ...opt.storeOptions, prefix },
    });
    const base = server.url;
    const names = scriptNames();
    const serverInfo = await admin.info('server');
    const redisVersion = /redis_version:(\S+)/.exec(serverInfo)?.[1] ?? '?';
    const persistence = await admin.info('persistence');
    const aof = /aof_enabled:1/.test(persistence);
    let appendfsync = '?';
    try {
      appendfsync = ((await admin.config('GET', 'appendfsync')) as string[])[1] ?? '?';
    } catch {
      // CONFIG disabled
    }
    const cpu = cpus()[0]?.model ?? '?';
    const env = {
      node: process.version,
      redis: redisVersion,
      redisUrl: external ? 'REDIS_URL' : 'private redis-server',
      aof,
      appendfsync,
      cpus: availableParallelism(),
      cpu,
    };
    console.log(`Latchkey benchmark: Node ${env.node}, Redis ${env.redis} (${env.redisUrl}, AOF ${aof ? 'on' : 'off'}, appendfsync ${appendfsync}), ${env.cpus} CPUs (${cpu})`);
    console.log(
      `engine: serve() with workers + ingress in one process (default store options: 16 partitions, 4 mailbox shards, 32 attempts per shard); ` +
        `HTTP client: keep-alive, in a worker thread`,
    );
    console.log(
      `each row: ${opt.durationMs / 1000} s timed window (closed loop, one request in flight per client) + an untimed ${opt.sampleMs / 1000} s MONITOR sample`,
    );
    if (Object.keys(opt.storeOptions).length > 0) console.log(`store options: ${JSON.stringify(opt.storeOptions)}`);
    if (external) console.log(`NOTE: REDIS_URL is shared; commands of other clients of that Redis would be counted too`);

    // Warm up: scripts loaded, JIT warm, connections open.
    const progress = (s: string): void => void process.stderr.write(`${s}\n`);
    let jobs = 0;
    const tag = (): string => `b${started.toString(36)}-${jobs++}`;
    for (const scenario of opt.scenarios) {
      progress(`warm-up: ${scenario}`);
      await load.run({ base, scenario, concurrency: 8, durationMs: opt.warmupMs, tag: tag(), keys: COUNTER_KEYS });
    }
    const settleMs = 250;
    await sleep(settleMs);

    // Idle background, over an interval as long as a timed window.
    progress(`measuring the idle background for ${opt.durationMs / 1000} s`);
    const idleBefore = await commandStats(admin);
    const idleMon = await MonitorSampler.start(admin, names);
    const idleT0 = performance.now();
    await sleep(opt.durationMs);
    const idleAfter = await commandStats(admin);
    const idleMs = performance.now() - idleT0;
    const idle: Idle = { ms: idleMs, total: diff(idleAfter, idleBefore), monitor: idleMon.stop() };
    const idleTotalRate = sum(idle.total) / idle.ms;
    const idleTopRate = idle.monitor.available ? sum(idle.monitor.top) / idle.monitor.ms : NaN;
    const idleLuaRate = idle.monitor.available ? sum(idle.monitor.lua) / idle.monitor.ms : NaN;
    if (!idle.monitor.available) console.log('NOTE: this Redis refuses MONITOR: top-level counts are not available');
    console.log(
      `idle background: ${r1(idleTotalRate * 1000)} Redis commands/s (${r1(idleTopRate * 1000)} top-level/s, ` +
        `${r1(idleLuaRate * 1000)} inside scripts/s) over ${r1(idle.ms / 1000)} s with no invocations ` +
        `(reconciler sweeps, BullMQ stalled checks and blocking polls); subtracted from every measurement in proportion to its length`,
    );

    const rows: Row[] = [];
    for (const scenario of opt.scenarios) {
      for (const concurrency of opt.concurrency) {
        progress(`running ${SCENARIOS[scenario]} at concurrency ${concurrency}`);
        await sleep(settleMs);
        // Timed window: throughput, latency and all commands (commandstats).
        const before = await commandStats(admin);
        const cpu0 = process.cpuUsage();
        const redisCpu0 = procCpuMs(local?.pid());
        const t0 = performance.now();
        const jobTag = tag();
        const res = await load.run({ base, scenario, concurrency, durationMs: opt.durationMs, tag: jobTag, keys: COUNTER_KEYS });
        await sleep(settleMs); // lets BullMQ finish acknowledging the last jobs
        const after = await commandStats(admin);
        const windowMs = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        const redisCpu1 = procCpuMs(local?.pid());
        const delta = diff(after, before);
        const commands = sum(delta);
        const idleSubtracted = idleTotalRate * windowMs;
        const n = res.ok;
        const totalPerInvocation = n > 0 ? (commands - idleSubtracted) / n : NaN;

        let check: string | undefined;
        if (scenario === 'counter') {
          let total = 0;
          for (let k = 0; k < COUNTER_KEYS; k++) {
            const st = await server.store.getState('counter', `${jobTag}-k${k}`);
            total += Number(JSON.parse(st.get('count') ?? '0'));
          }
          check =
            total === n
              ? `state check: the ${COUNTER_KEYS} counters sum to ${total} = successful adds`
              : `STATE MISMATCH: the ${COUNTER_KEYS} counters sum to ${total}, successful adds ${n} (errors ${res.errors})`;
        }

        // Untimed sample with MONITOR: splits top-level from inside-script commands.
        await sleep(settleMs);
        const sBefore = await commandStats(admin);
        const mon = await MonitorSampler.start(admin, names);
        const sample = await load.run({ base, scenario, concurrency, durationMs: opt.sampleMs, tag: tag(), keys: COUNTER_KEYS });
        await sleep(settleMs);
        const sAfter = await commandStats(admin);
        const m = mon.stop();
        const sN = sample.ok;
        const monTop = sum(m.top);
        const monLua = sum(m.lua);
        // Top-level commands of the timed window: each command's calls × the share of
        // them that clients sent rather than scripts ran, as MONITOR saw it.
        const share = topLevelShares(m, idle.monitor);
        const topLevelPerInvocation =
          m.available && idle.monitor.available && n > 0 ? (topLevelOf(delta, share) - idleTopRate * windowMs) / n : NaN;
        const insideMonitor = m.available && sN > 0 ? (monLua - idleLuaRate * m.ms) / sN : NaN;
        const topMonitor = m.available && sN > 0 ? (monTop - idleTopRate * m.ms) / sN : NaN;

        const lat = res.latencies.slice().sort();
        let latSum = 0;
        for (const x of lat) latSum += x;
        const row: Row = {
          scenario,
          description: SCENARIOS[scenario],
          concurrency,
          invocations: n,
          errors: res.errors + sample.errors,
          errorSamples: [...res.errorSamples, ...sample.errorSamples].slice(0, 5),
          elapsedS: r2(res.elapsedMs / 1000),
          throughput: r1(n / (res.elapsedMs / 1000)),
          latencyMs: {
            p50: r2(percentile(lat, 0.5)),
            p90: r2(percentile(lat, 0.9)),
            p99: r2(percentile(lat, 0.99)),
            mean: r2(latSum / Math.max(1, lat.length)),
            max: r2(lat[lat.length - 1] ?? NaN),
          },
          cpuMsPerInvocation: {
            node: r2((cpu.user + cpu.system) / 1000 / n),
            ...(redisCpu0 !== undefined && redisCpu1 !== undefined ? { redis: r2((redisCpu1 - redisCpu0) / n) } : {}),
          },
          redis: {
            totalPerInvocation: r2(totalPerInvocation),
            topLevelPerInvocation: r2(topLevelPerInvocation),
            insideScriptsPerInvocation: r2(totalPerInvocation - topLevelPerInvocation),
            topLevelPerInvocationMonitor: r2(topMonitor),
            insideScriptsPerInvocationMonitor: r2(insideMonitor),
            window: { ms: Math.round(windowMs), commands, idleSubtracted: Math.round(idleSubtracted) },
            byCommand: perInvocation(delta, n),
            topLevelByCommand: perInvocation(addScaled(new Map(), m.top, 1), sN),
            scripts: scriptTable(m, sN),
            sample: { ms: Math.round(m.ms), invocations: sN, monitorTop: monTop, monitorLua: monLua, commandstats: sum(diff(sAfter, sBefore)) },
          },
          ...(check !== undefined ? { check } : {}),
        };
        rows.push(row);
        progress(
          `  ${row.throughput} inv/s, p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms, ` +
            `${row.redis.topLevelPerInvocation} top-level / ${row.redis.totalPerInvocation} total Redis commands per invocation` +
            (row.errors > 0 ? `, ${row.errors} ERRORS: ${row.errorSamples.join(' | ')}` : ''),
        );
      }
    }

    // Report.
    console.log('');
    const header = ['scenario', 'conc', 'invocations', 'inv/s', 'p50 ms', 'p99 ms', 'cmds/inv top-level', 'cmds/inv incl. scripts', 'CPU ms/inv node', 'CPU ms/inv redis', 'errors'];
    const table = rows.map((r) => [
      r.description,
      String(r.concurrency),
      String(r.invocations),
      fx(r.throughput, 1),
      fx(r.latencyMs.p50, 2),
      fx(r.latencyMs.p99, 2),
      fx(r.redis.topLevelPerInvocation, 1),
      fx(r.redis.totalPerInvocation, 1),
      fx(r.cpuMsPerInvocation.node, 2),
      fx(r.cpuMsPerInvocation.redis, 2),
      String(r.errors),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
    const fmt = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    console.log(fmt(header));
    console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const row of table) console.log(fmt(row));
    console.log('');
    console.log(
      'cmds/inv incl. scripts = every cmdstat_* call in the timed window (commands inside Lua scripts included) / invocations, idle background subtracted;',
    );
    console.log(
      'cmds/inv top-level     = commands the engine sent (an EVALSHA counts once, not what its script runs): each command\'s calls in the timed window',
    );
    console.log(
      '                         × the share of its calls sent by clients rather than run inside scripts, seen with MONITOR on an untimed sample; idle subtracted.',
    );
    console.log(
      'CPU ms/inv             = CPU time used in the timed window / invocations: this Node process (engine + ingress + HTTP client thread) and redis-server.',
    );
    for (const r of rows) if (r.check) console.log(`${r.description}, concurrency ${r.concurrency}: ${r.check}`);
    console.log('');
    for (const scenario of opt.scenarios) {
      const r = rows.find((x) => x.scenario === scenario);
      if (!r) continue;
      const parts = Object.entries(r.redis.topLevelByCommand).map(([k, v]) => `${k} ${v}`);
      console.log(`${r.description}, concurrency ${r.concurrency}, per invocation (MONITOR sample, idle not subtracted):`);
      console.log(`  top-level commands: ${parts.join(', ')}`);
      const scripts = Object.entries(r.redis.scripts).map(([k, v]) => `${k} ${v.calls}×${v.insidePerCall}`);
      console.log(`  script calls × commands inside each: ${scripts.join(', ')}`);
    }
    console.log('');
    for (const r of rows.filter((x) => x.scenario === 'workflow')) {
      console.log(
        `3-step workflow: ${fx(r.redis.topLevelPerInvocation, 1)} Redis commands per invocation (top-level), ` +
          `${fx(r.redis.totalPerInvocation, 1)} including inside scripts (${r.invocations} invocations, concurrency ${r.concurrency})`,
      );
    }

    const result = {
      date: new Date(started).toISOString(),
      env,
      options: { ...opt, out: undefined },
      method: {
        timedWindow: 'closed-loop clients over HTTP keep-alive; throughput = successful invocations / (first request sent .. last response received)',
        commandsTotal: 'INFO commandstats after - before (all cmdstat_* calls, commands inside Lua scripts included), minus idle rate x window length, / invocations',
        commandsTopLevel:
          'sum over commands of (cmdstat calls in the timed window x share of that command sent by clients, not run in scripts, per MONITOR on an untimed sample and the idle interval), minus idle top-level rate x window length, / invocations',
        excluded: 'INFO, MONITOR and connection set-up commands the benchmark itself sends',
      },
      idle: {
        ms: Math.round(idle.ms),
        commandsPerSecond: r1(idleTotalRate * 1000),
        topLevelPerSecond: r1(idleTopRate * 1000),
        insideScriptsPerSecond: r1(idleLuaRate * 1000),
        byCommand: Object.fromEntries(idle.total),
        topLevelByCommand: Object.fromEntries(idle.monitor.top),
      },
      rows,
      headline: rows
        .filter((x) => x.scenario === 'workflow')
        .map((r) => ({
          concurrency: r.concurrency,
          topLevelPerInvocation: r.redis.topLevelPerInvocation,
          totalPerInvocation: r.redis.totalPerInvocation,
          invocations: r.invocations,
        })),
    };
    mkdirSync(dirname(resolve(opt.out)), { recursive: true });
    writeFileSync(opt.out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nJSON written to ${opt.out} (total run ${r1((Date.now() - started) / 1000)} s)`);
    if (rows.some((r) => r.errors > 0 || (r.check !== undefined && r.check.startsWith('STATE MISMATCH')))) process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
