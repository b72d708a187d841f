/**
 * Latchkey's benchmark, side by side with the real Restate server and a raw
 * BullMQ queue/worker, in one run: throughput, latency, Redis commands per
 * invocation and CPU per process, for six scenarios.
 *
 *   npm run bench -- [--duration 5] [--concurrency 1,16,64] [--fsync-always] [--latchkey-workers 2]
 *
 * See bench/README.md for what every number means.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import {
  startLocalCluster,
  startLocalRedis,
  type LocalCluster,
  type LocalRedis,
} from '@latchkey/redis-store/testing';
import { counterKeys, type LoadJob, type ScenarioName, type Transport } from './load.js';
import {
  MonitorSampler,
  usedMemory,
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
import {
  LoadWorker,
  QUIET_CPU_SHARE,
  QUIET_MAX_WAIT_MS,
  percentile,
  procCpuMs,
  waitQuiet,
} from './measure.js';
import { printMemory, runMemory } from './memory.js';
import {
  startBullmq,
  startLatchkey,
  startRestate,
  type BullmqSystem,
  type LatchkeySystem,
  type Proc,
  type RestateSystem,
} from './systems.js';

const SCENARIOS: Record<ScenarioName, { title: string; request: string }> = {
  noop: { title: 'no-op service call', request: 'POST /bench/noop' },
  workflow: {
    title: '3-step workflow',
    request: 'POST /threeSteps/<new id>/run (submit and await the result)',
  },
  counter: { title: 'object add (100 keys)', request: 'POST /counter/<key of 100>/add 1' },
  hot: { title: 'object add (1 hot key)', request: 'POST /counter/<one key>/add 1' },
  send: {
    title: 'fire-and-forget send',
    request: 'POST /counter/<key of 100>/add/send 1 (then drained)',
  },
  sleep: {
    title: 'workflow with a 100 ms sleep',
    request: 'POST /sleeper/<new id>/run (ctx.sleep(100))',
  },
};

type SystemName = 'latchkey' | 'latchkey-ws' | 'restate' | 'bullmq';
const SYSTEMS: Record<SystemName, string> = {
  latchkey: 'Latchkey, HTTP ingress',
  'latchkey-ws': 'Latchkey, WebSocket ingress (/ws) through @latchkey/client',
  restate: 'Restate server + TypeScript SDK endpoint, HTTP ingress',
  bullmq: 'raw BullMQ queue + worker (no-op job)',
};

/** What the BullMQ baseline does for a scenario. */
type BullmqMode = 'roundtrip' | 'add' | 'delayed';
const bullmqMode = (s: ScenarioName): BullmqMode =>
  s === 'send' ? 'add' : s === 'sleep' ? 'delayed' : 'roundtrip';
const BULLMQ_MODES: Record<BullmqMode, string> = {
  roundtrip: 'queue.add + job.waitUntilFinished (QueueEvents)',
  add: 'queue.add only, then drained',
  delayed: 'queue.add with delay 100 ms + job.waitUntilFinished',
};

const COUNTER_KEYS = 100;

const HELP = `Usage: npm run bench -- [options]

  --duration <s>           timed window per scenario, system and concurrency (default 5)
  --concurrency <list>     concurrent clients, comma-separated (default 1,16,64)
  --scenarios <list>       any of ${Object.keys(SCENARIOS).join(',')} (default all)
  --systems <list>         any of ${Object.keys(SYSTEMS).join(',')} (default all)
  --latchkey-workers <n>   Latchkey processes, each with workers and an ingress; clients are
                           spread over their ingresses (default 1; with --latchkey-split: the
                           worker processes, default 2)
  --cluster                Latchkey on a private Redis Cluster of 3 masters (started and
                           stopped here) instead of one redis-server; commands are counted
                           on every master
  --cluster-replicas <n>   replicas per master of that cluster (default 0; 1 to measure
                           --store-options '{"durability":"replicated"}')
  --latchkey-split         Latchkey as in production: one ingress process without workers and
                           --latchkey-workers worker processes without an ingress
  --bullmq-concurrency <n> jobs the BullMQ worker runs at once (default 128)
  --fsync-always           private redis-server with appendfsync always (default everysec)
  --sample <s>             untimed MONITOR sample per Latchkey/BullMQ row, for the top-level
                           command split (default 1.5; 0 = no samples)
  --warmup <s>             warm-up per scenario and system before measuring (default 0.5)
  --request-timeout <s>    a request without an answer after this long is an error (default 30)
  --store-options <json>   extra createRedisStore options for Latchkey, e.g. '{"shards":8}'
  --repeat <n>             timed windows per row, systems interleaved; the median-throughput one is reported (default 1)
  --cpu-prof <dir>         write a V8 CPU profile of each Latchkey process to <dir> (node --cpu-prof)
  --restate-bin <path>     restate-server binary (default: the one from @restatedev/restate-server)
  --out <file>             JSON results (default bench/results/latest.json)
  --memory                 instead of the scenarios: issue 6's memory run (Latchkey only): short-retention
                           invocations, Latchkey RSS and Redis used_memory/DBSIZE sampled, then again
                           once the retention has passed; keys left in Redis listed by pattern
  --memory-invocations <n> invocations in the memory run (default 100000)
  --memory-concurrency <n> concurrent clients in the memory run (default 16)
  --memory-sample-every <n> a sample every n invocations; the first is the warm-up baseline (default 10000)
  --memory-settle <s>      longest wait after the load for DBSIZE to stop falling (default 120)
  --help

Set REDIS_URL to use an existing Redis instead of a private redis-server.
`;

interface Options {
  durationMs: number;
  concurrency: number[];
  scenarios: ScenarioName[];
  systems: SystemName[];
  latchkeyWorkers: number;
  /** One ingress-only Latchkey process plus `latchkeyWorkers` worker-only ones. */
  latchkeySplit: boolean;
  bullmqConcurrency: number;
  sampleMs: number;
  warmupMs: number;
  requestTimeoutMs: number;
  fsyncAlways: boolean;
  storeOptions: Record<string, unknown>;
  restateBin: string | undefined;
  out: string;
  memory: boolean;
  memoryInvocations: number;
  memoryConcurrency: number;
  memorySampleEvery: number;
  memorySettleMs: number;
  /** Directory for `node --cpu-prof` profiles of the Latchkey processes. */
  cpuProfDir: string | undefined;
  /** Timed windows per row; the row reported is the one with the median throughput. */
  repeat: number;
  /** Latchkey on a private 3-master Redis Cluster instead of one redis-server. */
  cluster: boolean;
  /** Replicas per master of that cluster (for `durability: 'replicated'`). */
  clusterReplicas: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      concurrency: { type: 'string', default: '1,16,64' },
      scenarios: { type: 'string', default: Object.keys(SCENARIOS).join(',') },
      systems: { type: 'string', default: Object.keys(SYSTEMS).join(',') },
      'latchkey-workers': { type: 'string' },
      'latchkey-split': { type: 'boolean', default: false },
      cluster: { type: 'boolean', default: false },
      'cluster-replicas': { type: 'string', default: '0' },
      'bullmq-concurrency': { type: 'string', default: '128' },
      sample: { type: 'string', default: '1.5' },
      warmup: { type: 'string', default: '0.5' },
      'request-timeout': { type: 'string', default: '30' },
      'fsync-always': { type: 'boolean', default: false },
      'store-options': { type: 'string', default: '{}' },
      'cpu-prof': { type: 'string' },
      repeat: { type: 'string', default: '1' },
      'restate-bin': { type: 'string' },
      out: {
        type: 'string',
        default: fileURLToPath(new URL('../results/latest.json', import.meta.url)),
      },
      memory: { type: 'boolean', default: false },
      'memory-invocations': { type: 'string', default: '100000' },
      'memory-concurrency': { type: 'string', default: '16' },
      'memory-sample-every': { type: 'string', default: '10000' },
      'memory-settle': { type: 'string', default: '120' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const seconds = (name: string, v: string, zero = false): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || (n === 0 && !zero))
      throw new Error(`--${name} must be a positive number of seconds, got ${JSON.stringify(v)}`);
    return Math.round(n * 1000);
  };
  const positiveInt = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  const list = <T extends string>(name: string, v: string, known: Record<T, unknown>): T[] => {
    const out = v.split(',').map((s) => s.trim()) as T[];
    for (const s of out)
      if (!(s in known))
        throw new Error(
          `--${name}: unknown ${JSON.stringify(s)}; use ${Object.keys(known).join(',')}`,
        );
    return out;
  };
  const memory = values.memory;
  return {
    durationMs: seconds('duration', values.duration),
    concurrency: values.concurrency.split(',').map((s) => positiveInt('concurrency', s.trim())),
    scenarios: list('scenarios', values.scenarios, SCENARIOS),
    // The memory run drives Latchkey alone (over HTTP).
    systems: memory ? ['latchkey'] : list('systems', values.systems, SYSTEMS),
    latchkeyWorkers: positiveInt(
      'latchkey-workers',
      values['latchkey-workers'] ?? (values['latchkey-split'] ? '2' : '1'),
    ),
    latchkeySplit: values['latchkey-split'],
    cluster: values.cluster,
    clusterReplicas: Number(values['cluster-replicas']),
    bullmqConcurrency: positiveInt('bullmq-concurrency', values['bullmq-concurrency']),
    sampleMs: seconds('sample', values.sample, true),
    warmupMs: seconds('warmup', values.warmup, true),
    requestTimeoutMs: seconds('request-timeout', values['request-timeout']),
    fsyncAlways: values['fsync-always'],
    storeOptions: JSON.parse(values['store-options']) as Record<string, unknown>,
    restateBin: values['restate-bin'],
    out: values.out,
    memory,
    memoryInvocations: positiveInt('memory-invocations', values['memory-invocations']),
    memoryConcurrency: positiveInt('memory-concurrency', values['memory-concurrency']),
    memorySampleEvery: positiveInt('memory-sample-every', values['memory-sample-every']),
    memorySettleMs: seconds('memory-settle', values['memory-settle']),
    cpuProfDir: values['cpu-prof'],
    repeat: positiveInt('repeat', values.repeat),
  };
}

/** How the Latchkey processes are laid out, for the header and the progress lines. */
function latchkeyShape(opt: Options): string {
  const n = opt.latchkeyWorkers;
  if (opt.latchkeySplit)
    return `1 ingress process (serve() without workers) + ${n} worker process${n > 1 ? 'es' : ''} (serve() without ingress)`;
  return `${n} process${n > 1 ? 'es' : ''} running serve() (workers + ingress${n > 1 ? ', clients spread over the ingresses' : ''})`;
}

/** Calls of each script and the commands run inside it, per invocation, most commands first. */
function scriptTable(
  m: MonitorCounts,
  n: number,
): Record<string, { calls: number; inside: number; insidePerCall: number }> {
  const out: Record<string, { calls: number; inside: number; insidePerCall: number }> = {};
  const rows = [...m.top]
    .filter(([k]) => k.startsWith('evalsha ') || k.startsWith('eval '))
    .map(([k, calls]) => {
      const name = k.slice(k.indexOf(' ') + 1);
      const inside = m.luaByScript.get(name) ?? 0;
      return { name, calls, inside };
    })
    .sort((a, b) => b.inside - a.inside);
  for (const r of rows) {
    out[r.name] = {
      calls: r2(r.calls / n),
      inside: r2(r.inside / n),
      insidePerCall: r1(r.inside / Math.max(1, r.calls)),
    };
  }
  return out;
}

/** Resident set size (MiB) of a process, from /proc. */
function procRssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? r1(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

const r1 = (x: number): number => Math.round(x * 10) / 10;
const r2 = (x: number): number => Math.round(x * 100) / 100;
/** A number for the table: '-' when it could not be measured. */
const fx = (x: number | undefined, digits: number): string =>
  x !== undefined && Number.isFinite(x) ? x.toFixed(digits) : '-';
/** A ratio for the table: `5.2×`. */
const fr = (x: number | undefined): string =>
  x !== undefined && Number.isFinite(x) ? `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}×` : '-';

/** Idle background: commands Redis ran while nothing was invoked. */
interface Idle {
  ms: number;
  total: Counts;
  monitor: MonitorCounts;
}

interface Row {
  scenario: ScenarioName;
  system: SystemName;
  concurrency: number;
  /** BullMQ only: what the baseline did, and the row it reuses (the same mode and concurrency measured for an earlier scenario). */
  bullmqMode?: BullmqMode;
  reusedFrom?: ScenarioName;
  /** Successful requests in the timed window (sends: accepted). */
  invocations: number;
  /** With --repeat: the throughput of every repetition (this row is the median one). */
  runs?: number[];
  errors: number;
  errorSamples: string[];
  elapsedS: number;
  /** Successful requests / (first request sent .. last reply received). */
  throughput: number;
  latencyMs: { p50: number; p90: number; p99: number; mean: number; max: number };
  /**
   * Sends: time after the window until the work behind every accepted send
   * had run, and invocations / (window + drain).
   */
  drain?: { ms: number; completedThroughput: number; error?: string };
  /** CPU time per invocation (ms) in the timed window, per process (`client` = the harness with the load thread). */
  cpuMsPerInvocation: Record<string, number>;
  /** RSS (MiB) per process after the row, and Redis used_memory (MiB). */
  memoryMiB: Record<string, number>;
  /** Redis commands (Latchkey and BullMQ rows). */
  redis?: {
    /** Invocations the counts are divided by (sends: + the closing add(0) calls). */
    invocations: number;
    /** All cmdstat_* calls per invocation in the timed window, idle background subtracted. */
    totalPerInvocation: number;
    /** Commands clients sent per invocation (EVALSHA once each); NaN without a MONITOR sample. */
    topLevelPerInvocation: number;
    insideScriptsPerInvocation: number;
    /** From the MONITOR sample directly (a cross-check), idle subtracted. */
    topLevelPerInvocationMonitor?: number;
    insideScriptsPerInvocationMonitor?: number;
    window: { ms: number; commands: number; idleSubtracted: number };
    /** cmdstat_* calls per invocation by command, timed window, before idle subtraction. */
    byCommand: Record<string, number>;
    /** MONITOR sample: top-level commands per invocation by command (scripts by name), and per script. */
    topLevelByCommand?: Record<string, number>;
    scripts?: Record<string, { calls: number; inside: number; insidePerCall: number }>;
    sample?: {
      ms: number;
      invocations: number;
      monitorTop: number;
      monitorLua: number;
      commandstats: number;
    };
  };
  check?: string;
  checkFailed?: boolean;
}

function versionOf(pkg: string): string {
  try {
    const req = createRequire(import.meta.url);
    let dir = dirname(req.resolve(pkg));
    for (let i = 0; i < 6; i++) {
      try {
        const j = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (j.name === pkg) return j.version ?? '?';
      } catch {
        // up one
      }
      dir = dirname(dir);
    }
  } catch {
    // not installed
  }
  return '?';
}

async function main(): Promise<void> {
  const opt = options();
  const started = Date.now();
  const wants = (s: SystemName): boolean => opt.systems.includes(s);
  const usesRedis = wants('latchkey') || wants('latchkey-ws') || wants('bullmq');
  let local: LocalRedis | undefined;
  let cluster: LocalCluster | undefined;
  let url = process.env['REDIS_URL'];
  const external = url !== undefined && url !== '';
  if (opt.cluster && (external || wants('bullmq')))
    throw new Error(
      '--cluster starts its own cluster for Latchkey: unset REDIS_URL, leave out bullmq',
    );
  if (!usesRedis) {
    // Restate alone: no Redis needed.
  } else if (opt.cluster) {
    cluster = await startLocalCluster({
      masters: 3,
      replicasPerMaster: opt.clusterReplicas,
      appendfsync: opt.fsyncAlways ? 'always' : 'everysec',
    });
    // `cluster:` + seed nodes: latchkey-server.ts opens a cluster store from it.
    url = `cluster:${cluster.masters.join(',')}`;
  } else if (!external) {
    local = await startLocalRedis({ appendfsync: opt.fsyncAlways ? 'always' : 'everysec' });
    url = local.url;
  } else if (opt.fsyncAlways) {
    console.warn(
      '--fsync-always is ignored with REDIS_URL: the server keeps its own appendfsync setting',
    );
  }
  const redisUrl = url ?? '';
  const prefix = external ? `lkbench-${randomBytes(4).toString('hex')}` : 'lk';
  const bqPrefix = `${prefix}-bq`;
  const admin = new Redis(
    cluster ? `redis://${cluster.masters[0]}` : usesRedis ? redisUrl : 'redis://127.0.0.1:1',
    { maxRetriesPerRequest: 1, lazyConnect: true },
  );
  // Where commands are counted: every master of the cluster, or the one server.
  const statsNodes = cluster
    ? cluster.masters.map((m) => new Redis(`redis://${m}`, { maxRetriesPerRequest: 1 }))
    : [admin];
  const load = new LoadWorker();
  let lk: LatchkeySystem | undefined;
  let rs: RestateSystem | undefined;
  let bq: BullmqSystem | undefined;

  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await load.close().catch(() => undefined);
    await Promise.all(
      [lk?.stop(), rs?.stop(), bq?.stop()].map((p) =>
        (p ?? Promise.resolve()).catch((e: unknown) => console.error(e)),
      ),
    );
    if (external && usesRedis) {
      for (const p of [prefix, bqPrefix]) {
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', `${p}:*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await admin.del(...keys);
        } while (cursor !== '0');
      }
    }
    if (usesRedis) await admin.quit().catch(() => undefined);
    else admin.disconnect();
    if (cluster) for (const n of statsNodes) n.disconnect();
    await local?.stop();
    await cluster?.stop();
  };
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130));
  };
  // An error nobody catches (e.g. an 'error' event of a Redis connection)
  // still stops every process this run started.
  const onCrash = (e: unknown): void => {
    console.error(e);
    void cleanup().finally(() => process.exit(1));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('uncaughtException', onCrash);
  process.once('unhandledRejection', onCrash);

  try {
    const progress = (s: string): void => void process.stderr.write(`${s}\n`);
    if (wants('latchkey') || wants('latchkey-ws')) {
      progress(`starting Latchkey (${latchkeyShape(opt)})`);
      lk = await startLatchkey({
        redisUrl,
        prefix,
        processes: opt.latchkeyWorkers,
        split: opt.latchkeySplit,
        storeOptions: opt.storeOptions,
        cpuProfDir: opt.cpuProfDir,
      });
    }
    if (wants('bullmq')) {
      progress('starting the BullMQ worker');
      bq = await startBullmq({ redisUrl, prefix: bqPrefix, concurrency: opt.bullmqConcurrency });
    }
    if (wants('restate')) {
      progress('starting restate-server and the Restate SDK endpoint');
      rs = await startRestate({ ...(opt.restateBin ? { binary: opt.restateBin } : {}) });
    }
    const names = scriptNames();
    let redisVersion = '-';
    let aof = false;
    let appendfsync = '-';
    if (usesRedis) {
      redisVersion = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? '?';
      aof = /aof_enabled:1/.test(await admin.info('persistence'));
      try {
        appendfsync = ((await admin.config('GET', 'appendfsync')) as string[])[1] ?? '?';
      } catch {
        appendfsync = '?'; // CONFIG disabled
      }
    }
    const cpu = cpus()[0]?.model ?? '?';
    const env = {
      node: process.version,
      redis: redisVersion,
      redisUrl: !usesRedis
        ? 'none'
        : external
          ? 'REDIS_URL'
          : cluster
            ? `private Redis Cluster, 3 masters × ${1 + opt.clusterReplicas} nodes`
            : 'private redis-server',
      aof,
      appendfsync,
      cpus: availableParallelism(),
      cpu,
      restateServer: rs?.version,
      restateSdk: versionOf('@restatedev/restate-sdk'),
      bullmq: versionOf('bullmq'),
    };
    console.log(
      `Benchmark: Node ${env.node}, ` +
        (usesRedis
          ? `Redis ${env.redis} (${env.redisUrl}, AOF ${aof ? 'on' : 'off'}, appendfsync ${appendfsync})`
          : 'no Redis (no system here uses it)') +
        `, ${env.cpus} CPUs (${cpu})`,
    );
    for (const s of opt.systems) {
      const extra =
        s === 'latchkey' || s === 'latchkey-ws'
          ? `: ${latchkeyShape(opt)}, default store options${Object.keys(opt.storeOptions).length > 0 ? ` + ${JSON.stringify(opt.storeOptions)}` : ''}`
          : s === 'restate'
            ? `: restate-server ${env.restateServer} (dev mode, fresh data dir), SDK ${env.restateSdk} endpoint in one Node process (HTTP/2)`
            : `: BullMQ ${env.bullmq}, one worker process, concurrency ${opt.bullmqConcurrency}`;
      console.log(`  ${s.padEnd(12)} ${SYSTEMS[s]}${extra}`);
    }
    if (opt.memory) {
      const m = await runMemory({
        bases: lk!.urls,
        admin,
        prefix,
        tag: `m${started.toString(36)}`,
        opts: {
          invocations: opt.memoryInvocations,
          concurrency: opt.memoryConcurrency,
          sampleEvery: opt.memorySampleEvery,
          settleMaxMs: opt.memorySettleMs,
          requestTimeoutMs: opt.requestTimeoutMs,
        },
        rss: () => {
          const out: Record<string, number> = {};
          for (const p of [...lk!.procs, ...(local ? [{ name: 'redis', pid: local.pid() }] : [])]) {
            const v = procRssMiB(p.pid);
            if (v !== undefined) out[p.name] = v;
          }
          return out;
        },
        progress,
      });
      printMemory(m);
      const result = {
        date: new Date(started).toISOString(),
        env,
        options: { ...opt, out: undefined },
        memory: m,
      };
      mkdirSync(dirname(resolve(opt.out)), { recursive: true });
      writeFileSync(opt.out, `${JSON.stringify(result, null, 2)}\n`);
      console.log(
        `\nJSON written to ${opt.out} (total run ${r1((Date.now() - started) / 1000)} s)`,
      );
      if (!m.flat) process.exitCode = 1;
      return;
    }
    console.log(
      `each row: ${opt.durationMs / 1000} s timed window, closed loop (one request in flight per client), clients in a worker thread of the harness, ` +
        `HTTP keep-alive (one connection per client) / one WebSocket per client` +
        (opt.sampleMs > 0
          ? `; Latchkey (HTTP) and BullMQ rows also run an untimed ${opt.sampleMs / 1000} s MONITOR sample`
          : ''),
    );
    if (external)
      console.log(
        `NOTE: REDIS_URL is shared; commands of other clients of that Redis would be counted too`,
      );

    let jobs = 0;
    const tag = (): string => `b${started.toString(36)}-${jobs++}`;
    const jobFor = (
      system: SystemName,
      scenario: ScenarioName,
      concurrency: number,
      durationMs: number,
      jobTag: string,
    ): LoadJob => {
      const transport: Transport =
        system === 'bullmq' ? 'bullmq' : system === 'latchkey-ws' ? 'ws' : 'http';
      const bases = system === 'restate' ? [rs!.url] : system === 'bullmq' ? [] : lk!.urls;
      return {
        kind: 'load',
        transport,
        bases,
        scenario,
        concurrency,
        durationMs,
        tag: jobTag,
        keys: COUNTER_KEYS,
        requestTimeoutMs: opt.requestTimeoutMs,
        ...(system === 'bullmq'
          ? { bullmq: { redisUrl, queue: bq!.queue, prefix: bq!.prefix } }
          : {}),
        ...(system === 'latchkey-ws' ? { drainBase: lk!.urls[0]! } : {}),
      };
    };
    const procsOf = (system: SystemName): Proc[] => {
      const own = system === 'restate' ? rs!.procs : system === 'bullmq' ? bq!.procs : lk!.procs;
      const redis: Proc[] =
        system === 'restate'
          ? []
          : local
            ? [{ name: 'redis', pid: local.pid() }]
            : (cluster?.masters ?? []).map((m, i) => ({
                name: `redis master#${i + 1}`,
                pid: cluster!.pid(m),
              }));
      return [...own, ...redis];
    };

    // Warm-up: scripts loaded, JIT warm, connections open.
    if (opt.warmupMs > 0) {
      for (const scenario of opt.scenarios) {
        for (const system of opt.systems) {
          if (
            system === 'bullmq' &&
            opt.scenarios
              .slice(0, opt.scenarios.indexOf(scenario))
              .some((s) => bullmqMode(s) === bullmqMode(scenario))
          )
            continue;
          progress(`warm-up: ${scenario} on ${system}`);
          const r = await load.run(jobFor(system, scenario, 8, opt.warmupMs, tag()));
          if (r.ok === 0)
            throw new Error(
              `warm-up of ${scenario} on ${system} failed: ${r.errorSamples.join(' | ')}`,
            );
        }
      }
    }
    const settleMs = 250;

    // Every process of every system under test (Restate's server works off its backlog and
    // compacts in the background): a timed window starts only once they are all quiet, so no
    // system's leftover work lands in another's window.
    const everyProc = (): Proc[] => {
      const all = new Map<number, Proc>();
      for (const s of opt.systems)
        for (const p of procsOf(s)) if (p.pid !== undefined) all.set(p.pid, p);
      return [...all.values()];
    };
    const quietWaits: number[] = [];
    const waitQuietAll = async (): Promise<void> => {
      quietWaits.push(await waitQuiet(everyProc().map((p) => p.pid)));
    };
    await sleep(settleMs);

    // Idle background (every system up, nothing invoked), over an interval as long as a timed window.
    let idle: Idle | undefined;
    let idleTotalRate = 0;
    let idleTopRate = NaN;
    let idleLuaRate = NaN;
    if (usesRedis) {
      progress(`measuring the idle background for ${opt.durationMs / 1000} s`);
      const idleBefore = await commandStats(statsNodes);
      const idleMon = await MonitorSampler.start(statsNodes, names);
      const idleT0 = performance.now();
      await sleep(opt.durationMs);
      const idleAfter = await commandStats(statsNodes);
      const idleMs = performance.now() - idleT0;
      idle = { ms: idleMs, total: diff(idleAfter, idleBefore), monitor: idleMon.stop() };
      idleTotalRate = sum(idle.total) / idle.ms;
      idleTopRate = idle.monitor.available ? sum(idle.monitor.top) / idle.monitor.ms : NaN;
      idleLuaRate = idle.monitor.available ? sum(idle.monitor.lua) / idle.monitor.ms : NaN;
      if (!idle.monitor.available)
        console.log('NOTE: this Redis refuses MONITOR: top-level counts are not available');
      console.log(
        `idle background: ${r1(idleTotalRate * 1000)} Redis commands/s (${r1(idleTopRate * 1000)} top-level/s, ` +
          `${r1(idleLuaRate * 1000)} inside scripts/s) over ${r1(idle.ms / 1000)} s with every system up and nothing invoked ` +
          `(Latchkey's reconciler sweeps, BullMQ stalled checks and blocking polls); subtracted from every measurement in proportion to its length`,
      );
    }

    /** Top-level shares of the Latchkey HTTP rows, for the WebSocket rows (same engine work). */
    const shareByRow = new Map<string, (command: string) => number>();
    const bullmqRows = new Map<string, Row>();

    const measure = async (
      system: SystemName,
      scenario: ScenarioName,
      concurrency: number,
    ): Promise<Row> => {
      const redisRow = system !== 'restate';
      const procs = procsOf(system);
      await sleep(settleMs);
      await waitQuietAll();
      const before = redisRow ? await commandStats(statsNodes) : undefined;
      const cpuClient0 = process.cpuUsage();
      const cpu0 = procs.map((p) => procCpuMs(p.pid));
      const t0 = performance.now();
      const jobTag = tag();
      const res = await load.run(jobFor(system, scenario, concurrency, opt.durationMs, jobTag));
      if (redisRow) await sleep(settleMs); // lets BullMQ finish acknowledging the last jobs
      const after = redisRow ? await commandStats(statsNodes) : undefined;
      const windowMs = performance.now() - t0;
      const cpuClient = process.cpuUsage(cpuClient0);
      const cpu1 = procs.map((p) => procCpuMs(p.pid));
      const n = res.ok;
      // Sends over Latchkey: the closing add(0) per key ran inside the window too.
      const probes = scenario === 'send' && system !== 'bullmq' ? COUNTER_KEYS : 0;
      const nCost = n + probes;
      const cpuMsPerInvocation: Record<string, number> = {};
      procs.forEach((p, i) => {
        const a = cpu0[i];
        const b = cpu1[i];
        if (a !== undefined && b !== undefined && nCost > 0)
          cpuMsPerInvocation[p.name] = r2((b - a) / nCost);
      });
      if (nCost > 0)
        cpuMsPerInvocation['client'] = r2((cpuClient.user + cpuClient.system) / 1000 / nCost);
      const memoryMiB: Record<string, number> = {};
      for (const p of procs) {
        const m = procRssMiB(p.pid);
        if (m !== undefined) memoryMiB[p.name] = m;
      }
      if (redisRow) {
        const used = await usedMemory(statsNodes);
        if (used) memoryMiB['redis used_memory'] = r1(used / 1048576);
      }

      // Exactly-once state checks.
      let check: string | undefined;
      let checkFailed = false;
      if ((scenario === 'counter' || scenario === 'hot') && system !== 'bullmq') {
        const keys = counterKeys(jobTag, scenario, COUNTER_KEYS);
        const c = await load.run({
          kind: 'check',
          base: system === 'restate' ? rs!.url : lk!.urls[0]!,
          keys,
          requestTimeoutMs: opt.requestTimeoutMs,
        });
        checkFailed = c.errors.length > 0 || c.sum !== n;
        check = checkFailed
          ? `STATE MISMATCH: the ${keys.length} counter(s) sum to ${c.sum}, successful adds ${n} (errors ${res.errors}${c.errors.length ? `; check errors: ${c.errors.slice(0, 2).join(' | ')}` : ''})`
          : `state check: the ${keys.length} counter(s) sum to ${c.sum} = successful adds`;
      }
      if (scenario === 'send' && res.drain) {
        if (res.drain.error) {
          checkFailed = true;
          check = `DRAIN FAILED after ${r1(res.drain.ms / 1000)} s: ${res.drain.error}`;
        } else if (res.drain.sum !== undefined) {
          checkFailed = res.drain.sum !== n;
          check = checkFailed
            ? `STATE MISMATCH: the ${COUNTER_KEYS} counters sum to ${res.drain.sum}, accepted sends ${n} (errors ${res.errors})`
            : `state check: every accepted send ran (the ${COUNTER_KEYS} counters sum to ${res.drain.sum}), drained ${r1(res.drain.ms)} ms after the window`;
        } else {
          check = `drained: the queue was empty ${r1(res.drain.ms)} ms after the window`;
        }
      }

      let redis: Row['redis'];
      let errors = res.errors;
      const errorSamples = [...res.errorSamples];
      if (redisRow && before && after) {
        const delta = diff(after, before);
        const commands = sum(delta);
        const idleSubtracted = idleTotalRate * windowMs;
        const totalPerInvocation = nCost > 0 ? (commands - idleSubtracted) / nCost : NaN;
        let share: ((command: string) => number) | undefined = shareByRow.get(
          `${scenario}/${concurrency}`,
        );
        let sampled: Partial<NonNullable<Row['redis']>> = {};
        if (opt.sampleMs > 0 && system !== 'latchkey-ws') {
          // Untimed sample with MONITOR: splits top-level from inside-script commands.
          await sleep(settleMs);
          const sBefore = await commandStats(statsNodes);
          const mon = await MonitorSampler.start(statsNodes, names);
          const sample = await load.run(jobFor(system, scenario, concurrency, opt.sampleMs, tag()));
          await sleep(settleMs);
          const sAfter = await commandStats(statsNodes);
          const m = mon.stop();
          errors += sample.errors;
          errorSamples.push(...sample.errorSamples);
          const sN = sample.ok + probes;
          const monTop = sum(m.top);
          const monLua = sum(m.lua);
          if (m.available && idle?.monitor.available) {
            share = topLevelShares(m, idle.monitor);
            if (system === 'latchkey') shareByRow.set(`${scenario}/${concurrency}`, share);
          }
          sampled = {
            topLevelPerInvocationMonitor: r2(
              m.available && sN > 0 ? (monTop - idleTopRate * m.ms) / sN : NaN,
            ),
            insideScriptsPerInvocationMonitor: r2(
              m.available && sN > 0 ? (monLua - idleLuaRate * m.ms) / sN : NaN,
            ),
            topLevelByCommand: perInvocation(addScaled(new Map(), m.top, 1), sN),
            scripts: scriptTable(m, sN),
            sample: {
              ms: Math.round(m.ms),
              invocations: sN,
              monitorTop: monTop,
              monitorLua: monLua,
              commandstats: sum(diff(sAfter, sBefore)),
            },
          };
        }
        const topLevelPerInvocation =
          share && nCost > 0 ? (topLevelOf(delta, share) - idleTopRate * windowMs) / nCost : NaN;
        redis = {
          invocations: nCost,
          totalPerInvocation: r2(totalPerInvocation),
          topLevelPerInvocation: r2(topLevelPerInvocation),
          insideScriptsPerInvocation: r2(totalPerInvocation - topLevelPerInvocation),
          ...sampled,
          window: {
            ms: Math.round(windowMs),
            commands,
            idleSubtracted: Math.round(idleSubtracted),
          },
          byCommand: perInvocation(delta, nCost),
        };
      }

      const lat = res.latencies.slice().sort();
      let latSum = 0;
      for (const x of lat) latSum += x;
      const elapsedS = res.elapsedMs / 1000;
      return {
        scenario,
        system,
        concurrency,
        ...(system === 'bullmq' ? { bullmqMode: bullmqMode(scenario) } : {}),
        invocations: n,
        errors,
        errorSamples: errorSamples.slice(0, 5),
        elapsedS: r2(elapsedS),
        throughput: r1(n / elapsedS),
        latencyMs: {
          p50: r2(percentile(lat, 0.5)),
          p90: r2(percentile(lat, 0.9)),
          p99: r2(percentile(lat, 0.99)),
          mean: r2(latSum / Math.max(1, lat.length)),
          max: r2(lat[lat.length - 1] ?? NaN),
        },
        ...(res.drain
          ? {
              drain: {
                ms: Math.round(res.drain.ms),
                completedThroughput: r1(n / ((res.elapsedMs + res.drain.ms) / 1000)),
                ...(res.drain.error ? { error: res.drain.error } : {}),
              },
            }
          : {}),
        cpuMsPerInvocation,
        memoryMiB,
        ...(redis ? { redis } : {}),
        ...(check !== undefined ? { check, checkFailed } : {}),
      };
    };

    const rows: Row[] = [];
    for (const scenario of opt.scenarios) {
      for (const concurrency of opt.concurrency) {
        // Repetitions interleave the systems (A B A B ...), so a slow spell of the machine hits all.
        const measured = new Map<SystemName, Row[]>();
        for (let rep = 0; rep < opt.repeat; rep++) {
          for (const system of opt.systems) {
            if (system === 'bullmq' && bullmqRows.has(`${bullmqMode(scenario)}/${concurrency}`))
              continue;
            const nth = opt.repeat > 1 ? ` (${rep + 1}/${opt.repeat})` : '';
            progress(
              `running ${SCENARIOS[scenario].title} on ${system} at concurrency ${concurrency}${nth}`,
            );
            const row = await measure(system, scenario, concurrency);
            measured.set(system, [...(measured.get(system) ?? []), row]);
            progress(
              `  ${row.throughput} inv/s, p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms` +
                (row.redis
                  ? `, ${row.redis.totalPerInvocation} Redis commands per invocation`
                  : '') +
                (row.errors > 0 ? `, ${row.errors} ERRORS: ${row.errorSamples.join(' | ')}` : ''),
            );
          }
        }
        for (const system of opt.systems) {
          const reuse =
            system === 'bullmq'
              ? bullmqRows.get(`${bullmqMode(scenario)}/${concurrency}`)
              : undefined;
          if (reuse) {
            rows.push({ ...reuse, scenario, reusedFrom: reuse.reusedFrom ?? reuse.scenario });
            continue;
          }
          const all = measured.get(system)!;
          const median = [...all].sort((a, b) => a.throughput - b.throughput)[
            Math.floor((all.length - 1) / 2)
          ]!;
          const row: Row =
            all.length > 1 ? { ...median, runs: all.map((r) => r.throughput) } : median;
          if (system === 'bullmq') bullmqRows.set(`${bullmqMode(scenario)}/${concurrency}`, row);
          rows.push(row);
        }
      }
    }

    // Report.
    const find = (
      scenario: ScenarioName,
      system: SystemName,
      concurrency: number,
    ): Row | undefined =>
      rows.find(
        (r) => r.scenario === scenario && r.system === system && r.concurrency === concurrency,
      );
    const ratios = (r: Row): Record<string, number> => {
      const out: Record<string, number> = {};
      if (r.system !== 'latchkey' && r.system !== 'latchkey-ws') return out;
      for (const [other, label] of [
        ['restate', 'Restate'],
        ['bullmq', 'BullMQ'],
      ] as const) {
        const o = find(r.scenario, other, r.concurrency);
        if (!o || o.invocations === 0 || r.invocations === 0) continue;
        out[`throughputVs${label}`] = r2(r.throughput / o.throughput);
        out[`p50Vs${label}`] = r2(r.latencyMs.p50 / o.latencyMs.p50);
        if (label === 'BullMQ' && r.redis && o.redis) {
          out['redisCommandsVsBullMQ'] = r2(
            r.redis.totalPerInvocation / o.redis.totalPerInvocation,
          );
          const t = r2(r.redis.topLevelPerInvocation / o.redis.topLevelPerInvocation);
          if (Number.isFinite(t)) out['redisTopLevelVsBullMQ'] = t;
        }
      }
      return out;
    };
    const header = [
      'conc',
      'system',
      'inv/s',
      ...(opt.repeat > 1 ? ['runs inv/s'] : []),
      'p50 ms',
      'p99 ms',
      'inv/s ÷Restate',
      'p50 ÷Restate',
      'inv/s ÷BullMQ',
      'p50 ÷BullMQ',
      'cmds/inv',
      'top-level',
      'cmds ÷BullMQ',
      'CPU ms/inv by process',
      'errors',
    ];
    const print = (cells: string[][]): void => {
      const widths = header.map((h, i) =>
        Math.max(h.length, ...cells.map((row) => row[i]!.length)),
      );
      const fmt = (c: string[]): string =>
        c
          .map((s, i) =>
            i === 1 || i === header.length - 2 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!),
          )
          .join('  ')
          .trimEnd();
      console.log(fmt(header));
      console.log(widths.map((w) => '-'.repeat(w)).join('  '));
      for (const c of cells) console.log(fmt(c));
    };
    for (const scenario of opt.scenarios) {
      console.log('');
      console.log(
        `== ${SCENARIOS[scenario].title}: ${SCENARIOS[scenario].request}; BullMQ: ${BULLMQ_MODES[bullmqMode(scenario)]}`,
      );
      const cells = rows
        .filter((r) => r.scenario === scenario)
        .map((r) => {
          const q = ratios(r);
          const cpuText = Object.entries(r.cpuMsPerInvocation)
            .map(([k, v]) => `${k} ${v.toFixed(2)}`)
            .join(', ');
          return [
            String(r.concurrency),
            r.system + (r.reusedFrom ? ` (=${r.reusedFrom})` : ''),
            fx(r.throughput, 1),
            ...(opt.repeat > 1 ? [r.runs ? r.runs.map((t) => Math.round(t)).join('/') : '-'] : []),
            fx(r.latencyMs.p50, 2),
            fx(r.latencyMs.p99, 2),
            fr(q['throughputVsRestate']),
            fr(q['p50VsRestate']),
            fr(q['throughputVsBullMQ']),
            fr(q['p50VsBullMQ']),
            fx(r.redis?.totalPerInvocation, 1),
            fx(r.redis?.topLevelPerInvocation, 1),
            fr(q['redisCommandsVsBullMQ']),
            cpuText,
            String(r.errors),
          ];
        });
      print(cells);
      for (const r of rows.filter((x) => x.scenario === scenario && x.drain)) {
        console.log(
          `  ${r.system} c=${r.concurrency}: ${r.invocations} sends accepted in ${r.elapsedS} s, all run ${fx(r.drain!.ms / 1000, 2)} s later: ${fx(r.drain!.completedThroughput, 1)} completed/s`,
        );
      }
      for (const r of rows.filter((x) => x.scenario === scenario && x.check && !x.reusedFrom))
        console.log(`  ${r.system} c=${r.concurrency}: ${r.check}`);
    }
    console.log('');
    console.log(
      'inv/s        = successful requests / (first sent .. last answered); sends: accepted sends (see "completed/s" for the work behind them)',
    );
    console.log(
      "÷Restate, ÷BullMQ = the Latchkey row divided by that system's row (same scenario, same concurrency): > 1 is faster for inv/s, < 1 is faster for p50",
    );
    console.log(
      'cmds/inv     = INFO commandstats calls in the timed window (commands inside Lua scripts included), idle background subtracted, / invocations',
    );
    console.log(
      'top-level    = commands clients sent (an EVALSHA counts once), via the MONITOR sample split; sends also count the 100 closing add(0) calls as invocations',
    );
    console.log(
      'CPU ms/inv   = CPU time per process in the timed window / invocations (client = the harness process, i.e. the load generator)',
    );
    if (quietWaits.length > 0) {
      const w = [...quietWaits].sort((a, b) => a - b);
      console.log(
        `quiet start  = each timed window began once every system's processes together used < ${QUIET_CPU_SHARE * 100}% of a core ` +
          `(waited median ${Math.round(w[Math.floor(w.length / 2)]!)} ms, longest ${Math.round(w[w.length - 1]!)} ms; cap ${QUIET_MAX_WAIT_MS / 1000} s)`,
      );
    }
    console.log(
      '(=scenario)  = the BullMQ baseline does the same thing for both scenarios: measured once, shown again',
    );

    // The first concurrency level's Latchkey command breakdown.
    console.log('');
    for (const scenario of opt.scenarios) {
      const r = rows.find(
        (x) => x.scenario === scenario && x.system === 'latchkey' && x.redis?.topLevelByCommand,
      );
      if (!r?.redis?.topLevelByCommand) continue;
      const parts = Object.entries(r.redis.topLevelByCommand).map(([k, v]) => `${k} ${v}`);
      console.log(
        `Latchkey, ${SCENARIOS[scenario].title}, concurrency ${r.concurrency}, per invocation (MONITOR sample, idle not subtracted):`,
      );
      console.log(`  top-level commands: ${parts.join(', ')}`);
      const scripts = Object.entries(r.redis.scripts ?? {}).map(
        ([k, v]) => `${k} ${v.calls}×${v.insidePerCall}`,
      );
      console.log(`  script calls × commands inside each: ${scripts.join(', ')}`);
    }

    // Issue 6's targets, where this run measured them.
    const targets: { target: string; value: string; met?: boolean }[] = [];
    const cMax = Math.max(...opt.concurrency);
    const cMin = Math.min(...opt.concurrency);
    const ratioTarget = (scenario: ScenarioName, c: number, min: number, what: string): void => {
      const r = find(scenario, 'latchkey', c);
      const q = r ? ratios(r)['throughputVsRestate'] : undefined;
      if (q !== undefined)
        targets.push({
          target: `${what}: ≥ ${min}× Restate's throughput at c=${c}`,
          value: `${q}×`,
          met: q >= min,
        });
    };
    ratioTarget('workflow', cMax, 5, '3-step workflow');
    {
      const r = find('workflow', 'latchkey', cMin);
      const q = r ? ratios(r)['p50VsRestate'] : undefined;
      if (q !== undefined)
        targets.push({
          target: `3-step workflow: p50 at c=${cMin} ≤ 1/6 of Restate's`,
          value: `${q}×`,
          met: q <= 1 / 6,
        });
    }
    ratioTarget('counter', cMax, 5, 'object add, 100 keys');
    ratioTarget('hot', cMax, 5, 'object add, hot key');
    ratioTarget('send', cMax, 3, 'sends');
    {
      // For reference, not the target: the rate at which accepted sends were also run.
      const l = find('send', 'latchkey', cMax)?.drain;
      const o = find('send', 'restate', cMax)?.drain;
      if (l && o && o.completedThroughput > 0) {
        targets.push({
          target: `sends, for reference: accepted-and-run rate (completed/s) vs Restate's at c=${cMax}`,
          value: `${r2(l.completedThroughput / o.completedThroughput)}× (${fx(l.completedThroughput, 1)} vs ${fx(o.completedThroughput, 1)} completed/s)`,
        });
      }
    }
    for (const c of opt.concurrency) {
      const r = find('workflow', 'latchkey', c);
      if (!r?.redis) continue;
      const top = r.redis.topLevelPerInvocation;
      const total = r.redis.totalPerInvocation;
      // What the engine sends (top-level): needs the MONITOR split.
      if (!Number.isFinite(top)) {
        targets.push({
          target: `3-step workflow: ≤ 10 Redis commands per invocation (top-level) at c=${c}`,
          value: `not measured (--sample 0); ${fx(total, 1)} incl. inside scripts`,
        });
        continue;
      }
      targets.push({
        target: `3-step workflow: ≤ 10 Redis commands per invocation (top-level) at c=${c}`,
        value: `${fx(top, 1)} (${fx(total, 1)} incl. inside scripts)`,
        met: top <= 10,
      });
      const b = find('workflow', 'bullmq', c)?.redis;
      if (b && Number.isFinite(b.topLevelPerInvocation)) {
        const q = top / b.topLevelPerInvocation;
        targets.push({
          target: `3-step workflow: ≤ 2× a raw BullMQ job round trip's Redis commands (top-level) at c=${c}`,
          value: `${fr(q)} (${fx(top, 1)} vs ${fx(b.topLevelPerInvocation, 1)}; incl. inside scripts ${fx(total, 1)} vs ${fx(b.totalPerInvocation, 1)})`,
          met: q <= 2,
        });
      }
    }
    console.log('');
    for (const r of rows.filter(
      (x) => x.scenario === 'workflow' && x.system === 'latchkey' && x.redis,
    )) {
      console.log(
        `3-step workflow: ${fx(r.redis!.topLevelPerInvocation, 1)} Redis commands per invocation (top-level), ` +
          `${fx(r.redis!.totalPerInvocation, 1)} including inside scripts (${r.invocations} invocations, concurrency ${r.concurrency})`,
      );
    }
    // Issue 18's targets for the split layout (the hand-off), where this run measured them.
    const splitTargets: { target: string; value: string; met?: boolean }[] = [];
    if (opt.latchkeySplit) {
      for (const [scenario, what] of [
        ['noop', 'no-op call'],
        ['workflow', '3-step workflow'],
      ] as const) {
        const hi = find(scenario, 'latchkey', cMax);
        const q = hi ? ratios(hi)['throughputVsRestate'] : undefined;
        if (q !== undefined)
          splitTargets.push({
            target: `${what}: ≥ 5× Restate's throughput at c=${cMax}`,
            value: `${q}×`,
            met: q >= 5,
          });
        const lo = find(scenario, 'latchkey', cMin);
        const p = lo ? ratios(lo)['p50VsRestate'] : undefined;
        if (p !== undefined)
          splitTargets.push({
            target: `${what}: p50 at c=${cMin} ≤ 1/4 of Restate's`,
            value: `${p}×`,
            met: p <= 1 / 4,
          });
      }
    }
    if (splitTargets.length > 0) {
      console.log('');
      console.log(`Targets (issue 18, the split layout: ${latchkeyShape(opt)}):`);
      for (const t of splitTargets)
        console.log(`  ${t.met ? 'met   ' : 'MISSED'}  ${t.target}: ${t.value}`);
    }
    if (targets.length > 0) {
      console.log('');
      console.log(
        `Targets (issue 6, set for Latchkey in one process; meaningful only on an otherwise idle machine)${
          opt.latchkeySplit || opt.latchkeyWorkers > 1
            ? `, measured here with ${latchkeyShape(opt)}`
            : ''
        }:`,
      );
      for (const t of targets)
        console.log(
          `  ${t.met === undefined ? 'info  ' : t.met ? 'met   ' : 'MISSED'}  ${t.target}: ${t.value}`,
        );
    }

    const result = {
      date: new Date(started).toISOString(),
      env,
      options: { ...opt, out: undefined },
      systems: Object.fromEntries(opt.systems.map((s) => [s, SYSTEMS[s]])),
      scenarios: Object.fromEntries(
        opt.scenarios.map((s) => [s, { ...SCENARIOS[s], bullmq: BULLMQ_MODES[bullmqMode(s)] }]),
      ),
      method: {
        timedWindow:
          'closed-loop clients (HTTP keep-alive, or one WebSocket each); throughput = successful requests / (first request sent .. last response received)',
        commandsTotal:
          'INFO commandstats after - before (all cmdstat_* calls, commands inside Lua scripts included), minus idle rate x window length, / invocations',
        commandsTopLevel:
          'sum over commands of (cmdstat calls in the timed window x share of that command sent by clients, not run in scripts, per MONITOR on an untimed sample and the idle interval), minus idle top-level rate x window length, / invocations',
        ratios: 'Latchkey row / other system row, same scenario and concurrency',
        excluded: 'INFO, MONITOR and connection set-up commands the benchmark itself sends',
      },
      ...(idle
        ? {
            idle: {
              ms: Math.round(idle.ms),
              commandsPerSecond: r1(idleTotalRate * 1000),
              topLevelPerSecond: r1(idleTopRate * 1000),
              insideScriptsPerSecond: r1(idleLuaRate * 1000),
              byCommand: Object.fromEntries(idle.total),
              topLevelByCommand: Object.fromEntries(idle.monitor.top),
            },
          }
        : {}),
      rows: rows.map((r) => ({ ...r, ratios: ratios(r) })),
      targets,
      splitTargets,
    };
    mkdirSync(dirname(resolve(opt.out)), { recursive: true });
    writeFileSync(opt.out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nJSON written to ${opt.out} (total run ${r1((Date.now() - started) / 1000)} s)`);
    if (rows.some((r) => r.errors > 0 || r.checkFailed)) process.exitCode = 1;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
