/**
 * What tracing costs Latchkey (issue 17): the same scenarios as `run.ts` (no-op call, 3-step
 * workflow), HTTP, one Latchkey process per configuration, the configurations interleaved in one
 * sitting and repeated, the median round reported:
 *
 * - `off`: `serve({ tracing: false })`, no tracing call at all (the baseline);
 * - `noop`: the default with no provider registered, every call into the API's no-op;
 * - `api`: an SDK provider registered globally, spans batched and dropped (`tracing-provider.ts`);
 * - `metrics`: as `noop`, with `metrics: true` (what the admin port turns on by default).
 *
 *   node bench/dist/tracing.js [--duration 5] [--concurrency 1,64] [--rounds 3]
 *
 * See bench/README.md ("Tracing overhead") for what each number means.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import type { ScenarioName } from './load.js';
import { LoadWorker, percentile, procCpuMs, waitQuiet } from './measure.js';
import { startLatchkey, type LatchkeySystem } from './systems.js';

/** The configurations, in the order they are reported; `off` is the baseline. */
const CONFIGS = {
  off: { env: 'off', label: '(a) off', meaning: 'serve({ tracing: false }): no tracing calls' },
  noop: { env: 'default', label: '(b) noop', meaning: 'default options, no provider: API no-op' },
  api: {
    env: 'api',
    label: '(c) api',
    meaning: 'global BasicTracerProvider + BatchSpanProcessor, exporter drops spans',
  },
  metrics: {
    env: 'default',
    label: '(d) metrics',
    meaning: 'as (b), and metrics: true (Prometheus counters and histograms, no scrape)',
  },
} as const;
type ConfigName = keyof typeof CONFIGS;

const SCENARIOS = {
  noop: 'no-op call (POST /bench/noop)',
  workflow: '3-step workflow (POST /threeSteps/<new id>/run)',
} as const satisfies Partial<Record<ScenarioName, string>>;
type Scenario = keyof typeof SCENARIOS;

const HELP = `Usage: node bench/dist/tracing.js [options]

  --duration <s>         timed window per configuration, scenario, concurrency and round (default 5)
  --concurrency <list>   concurrent clients, comma-separated (default 1,64)
  --scenarios <list>     any of ${Object.keys(SCENARIOS).join(',')} (default both)
  --configs <list>       any of ${Object.keys(CONFIGS).join(',')} (default all; the comparisons need off)
  --rounds <n>           windows per row, configurations interleaved; the median one is reported (default 3)
  --warmup <s>           warm-up per configuration and scenario (default 1)
  --request-timeout <s>  a request without an answer after this long is an error (default 30)
  --out <file>           JSON results (default bench/results/tracing.json)
  --help

Set REDIS_URL to use an existing Redis instead of a private redis-server.
`;

interface Options {
  durationMs: number;
  concurrency: number[];
  scenarios: Scenario[];
  configs: ConfigName[];
  rounds: number;
  warmupMs: number;
  requestTimeoutMs: number;
  out: string;
}

function listOf<T extends string>(flag: string, v: string, allowed: readonly T[]): T[] {
  const items = v.split(',').filter((s) => s !== '');
  const bad = items.filter((s) => !allowed.includes(s as T));
  if (bad.length > 0 || items.length === 0)
    throw new Error(`--${flag}: expected some of ${allowed.join(',')}, got ${JSON.stringify(v)}`);
  return items as T[];
}

function number(flag: string, v: string, integer: boolean): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    throw new Error(`--${flag} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
  return n;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      concurrency: { type: 'string', default: '1,64' },
      scenarios: { type: 'string', default: Object.keys(SCENARIOS).join(',') },
      configs: { type: 'string', default: Object.keys(CONFIGS).join(',') },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      'request-timeout': { type: 'string', default: '30' },
      out: {
        type: 'string',
        default: fileURLToPath(new URL('../results/tracing.json', import.meta.url)),
      },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const configs = listOf('configs', values.configs, Object.keys(CONFIGS) as ConfigName[]);
  return {
    durationMs: Math.round(number('duration', values.duration, false) * 1000),
    concurrency: values.concurrency.split(',').map((c) => number('concurrency', c, true)),
    scenarios: listOf('scenarios', values.scenarios, Object.keys(SCENARIOS) as Scenario[]),
    // Reported in CONFIGS' order, whatever order they were given in.
    configs: (Object.keys(CONFIGS) as ConfigName[]).filter((c) => configs.includes(c)),
    rounds: number('rounds', values.rounds, true),
    warmupMs: Math.round(number('warmup', values.warmup, false) * 1000),
    requestTimeoutMs: Math.round(
      number('request-timeout', values['request-timeout'], false) * 1000,
    ),
    out: values.out,
  };
}

/** One timed window. */
interface Window {
  throughput: number;
  /** CPU time of the Latchkey process per invocation (µs), from /proc. */
  cpuUs: number;
  p50: number;
  p99: number;
  ok: number;
  errors: number;
  errorSamples: string[];
}

/** A configuration's row: the median-throughput window of its rounds, and every round's rate. */
interface Row extends Window {
  config: ConfigName;
  runs: number[];
  /** (fastest − slowest round) / median, in %: how far this machine moved between rounds. */
  spreadPercent: number;
  /** Throughput against `off`'s row, in % (negative = slower). */
  vsOffPercent?: number;
  /** The median over rounds of this round's throughput against `off`'s in the same round, in %. */
  pairedVsOffPercent?: number;
  /** 1/throughput − 1/throughput of `off`, in µs of wall time per invocation. */
  addedUsPerInvocation?: number;
  /** Every round's Latchkey CPU µs per invocation, and their median. */
  cpuRuns: number[];
  cpuMedianUs: number;
  /** The median CPU µs per invocation against `off`'s, in %. */
  cpuVsOffPercent?: number;
}

const r1 = (x: number): number => Math.round(x * 10) / 10;
const r2 = (x: number): number => Math.round(x * 100) / 100;
const signed = (x: number | undefined, digits: number, unit: string): string =>
  x === undefined || !Number.isFinite(x) ? '-' : `${x >= 0 ? '+' : ''}${x.toFixed(digits)}${unit}`;

/** The window with the median throughput (the lower middle one for an even count). */
function median(windows: Window[]): Window {
  const sorted = [...windows].sort((a, b) => a.throughput - b.throughput);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** Asks the Latchkey process for the spans its exporter has seen (0 unless `api`). */
function spansOf(system: LatchkeySystem): Promise<number> {
  const child = system.children[0]!;
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no answer to { spans: true }')), 10_000);
    const onMessage = (m: { spans?: number }): void => {
      if (m.spans === undefined) return;
      clearTimeout(t);
      child.off('message', onMessage);
      resolve(m.spans);
    };
    child.on('message', onMessage);
    child.send({ spans: true });
  });
}

function table(rows: Row[]): string {
  const head = [
    'config',
    'inv/s',
    'runs inv/s',
    'spread',
    'p50 ms',
    'p99 ms',
    'inv/s vs (a)',
    'paired',
    'µs/inv vs (a)',
    'CPU µs/inv',
    'CPU vs (a)',
  ];
  const body = rows.map((r) => [
    CONFIGS[r.config].label,
    r.throughput.toFixed(1),
    r.runs.map((x) => x.toFixed(0)).join('/'),
    `${r.spreadPercent.toFixed(0)} %`,
    r.p50.toFixed(2),
    r.p99.toFixed(2),
    r.config === 'off' ? 'baseline' : signed(r.vsOffPercent, 1, ' %'),
    r.config === 'off' ? '' : signed(r.pairedVsOffPercent, 1, ' %'),
    r.config === 'off' ? 'baseline' : signed(r.addedUsPerInvocation, 1, ' µs'),
    r.cpuMedianUs.toFixed(1),
    r.config === 'off' ? 'baseline' : signed(r.cpuVsOffPercent, 1, ' %'),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const fmt = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt)].join('\n');
}

async function main(): Promise<void> {
  const opt = options();
  const started = Date.now();
  let redis: LocalRedis | undefined;
  let redisUrl = process.env['REDIS_URL'];
  if (!redisUrl) {
    redis = await startLocalRedis();
    redisUrl = redis.url;
  }
  const run = randomBytes(3).toString('hex');
  const systems = new Map<ConfigName, LatchkeySystem>();
  const load = new LoadWorker();
  const invocations = new Map<ConfigName, number>(opt.configs.map((c) => [c, 0]));
  const results: { scenario: Scenario; concurrency: number; rows: Row[] }[] = [];
  let failed = false;
  try {
    for (const config of opt.configs) {
      process.stderr.write(`starting Latchkey (${CONFIGS[config].meaning})\n`);
      systems.set(
        config,
        await startLatchkey({
          redisUrl,
          prefix: `lkt-${run}-${config}`,
          processes: 1,
          storeOptions: {},
          env: { LK_TRACING: CONFIGS[config].env, LK_METRICS: config === 'metrics' ? '1' : '' },
        }),
      );
    }
    const pids = [...systems.values()].flatMap((s) => s.procs.map((p) => p.pid));
    let seq = 0;
    const window = async (
      config: ConfigName,
      scenario: Scenario,
      concurrency: number,
      durationMs: number,
    ): Promise<Window> => {
      const pid = systems.get(config)!.procs[0]?.pid;
      const cpu0 = procCpuMs(pid);
      const res = await load.run({
        kind: 'load',
        transport: 'http',
        bases: systems.get(config)!.urls,
        scenario,
        concurrency,
        durationMs,
        tag: `${run}-${config}-${seq++}`,
        keys: 1,
        requestTimeoutMs: opt.requestTimeoutMs,
      });
      const cpu1 = procCpuMs(pid);
      invocations.set(config, invocations.get(config)! + res.ok);
      const lat = res.latencies.sort();
      return {
        throughput: (res.ok / res.elapsedMs) * 1000,
        cpuUs:
          cpu0 !== undefined && cpu1 !== undefined && res.ok > 0
            ? ((cpu1 - cpu0) * 1000) / res.ok
            : NaN,
        p50: percentile(lat, 0.5),
        p99: percentile(lat, 0.99),
        ok: res.ok,
        errors: res.errors,
        errorSamples: res.errorSamples,
      };
    };
    for (const scenario of opt.scenarios)
      for (const config of opt.configs) await window(config, scenario, 8, opt.warmupMs);

    for (const scenario of opt.scenarios) {
      for (const concurrency of opt.concurrency) {
        const windows = new Map<ConfigName, Window[]>(opt.configs.map((c) => [c, []]));
        for (let round = 0; round < opt.rounds; round++) {
          // Each round starts with the next configuration, so none is always first after a pause.
          const order = opt.configs.map((_, i) => opt.configs[(i + round) % opt.configs.length]!);
          for (const config of order) {
            await waitQuiet(pids);
            const w = await window(config, scenario, concurrency, opt.durationMs);
            windows.get(config)!.push(w);
            process.stderr.write(
              `${scenario} c=${concurrency} round ${round + 1}/${opt.rounds} ${config}: ` +
                `${w.throughput.toFixed(0)} inv/s, ${w.errors} errors\n`,
            );
          }
        }
        const rows: Row[] = opt.configs.map((config) => {
          const runs = windows.get(config)!.map((w) => w.throughput);
          const m = median(windows.get(config)!);
          const spreadPercent = ((Math.max(...runs) - Math.min(...runs)) / m.throughput) * 100;
          const cpuRuns = windows.get(config)!.map((w) => w.cpuUs);
          const cpuMedianUs = [...cpuRuns].sort((a, b) => a - b)[
            Math.floor((cpuRuns.length - 1) / 2)
          ]!;
          return { config, ...m, runs, spreadPercent, cpuRuns, cpuMedianUs };
        });
        const off = rows.find((r) => r.config === 'off');
        for (const r of rows) {
          if (!off || r === off) continue;
          r.vsOffPercent = (r.throughput / off.throughput - 1) * 100;
          r.addedUsPerInvocation = (1 / r.throughput - 1 / off.throughput) * 1e6;
          r.cpuVsOffPercent = (r.cpuMedianUs / off.cpuMedianUs - 1) * 100;
          const ratios = r.runs.map((x, i) => x / off.runs[i]!).sort((a, b) => a - b);
          r.pairedVsOffPercent = (ratios[Math.floor((ratios.length - 1) / 2)]! - 1) * 100;
        }
        results.push({ scenario, concurrency, rows });
      }
    }
    const spans = systems.has('api') ? await spansOf(systems.get('api')!) : undefined;

    console.log(
      `Tracing overhead: Node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model.trim() ?? '?'}), ` +
        `${redis ? 'private redis-server' : 'REDIS_URL'}, one Latchkey process per configuration (all up throughout)`,
    );
    for (const c of opt.configs)
      console.log(`  ${CONFIGS[c].label.padEnd(8)} ${CONFIGS[c].meaning}`);
    console.log(
      `each row: ${opt.durationMs / 1000} s windows, HTTP keep-alive closed loops, ${opt.rounds} rounds ` +
        `(configurations interleaved), the median-throughput round shown\n`,
    );
    for (const { scenario, concurrency, rows } of results) {
      console.log(`== ${SCENARIOS[scenario]}, concurrency ${concurrency}`);
      console.log(table(rows));
      const off = rows.find((r) => r.config === 'off');
      const noop = rows.find((r) => r.config === 'noop');
      if (off && noop?.pairedVsOffPercent !== undefined) {
        const noise = Math.max(off.spreadPercent, noop.spreadPercent);
        const verdict = noise > 2 ? 'not resolved' : noop.pairedVsOffPercent >= -2 ? 'yes' : 'NO';
        console.log(
          `issue 17, (b) no provider within 2 % of (a): ${verdict} ` +
            `(paired ${signed(noop.pairedVsOffPercent, 1, ' %')}, ` +
            `rounds spread up to ${noise.toFixed(0)} %)`,
        );
        // CPU per invocation moves far less with the machine than throughput does.
        console.log(
          `  by CPU of the Latchkey process: (b) ${noop.cpuMedianUs.toFixed(1)} vs (a) ` +
            `${off.cpuMedianUs.toFixed(1)} µs/inv = ${signed(noop.cpuVsOffPercent, 1, ' %')}`,
        );
      }
      const errors = rows.reduce((n, r) => n + r.errors, 0);
      if (errors > 0) {
        failed = true;
        console.log(`errors: ${rows.flatMap((r) => r.errorSamples).join(' | ')}`);
      }
      console.log('');
    }
    console.log(
      'spread        = (fastest − slowest round) / median round: the noise of this machine between windows\n' +
        "inv/s vs (a)  = the median round against (a)'s median round, in % (negative = slower)\n" +
        "paired        = the median over rounds of (round r ÷ (a)'s round r) − 1: the rounds are interleaved, so\n" +
        '                this cancels drifts of the machine; issue 17 wants (b) within 2 %\n' +
        'µs/inv vs (a) = 1/inv/s − 1/inv/s of (a), in µs of wall time per invocation at that concurrency: the cost\n' +
        '                a configuration adds to each invocation (at c=64 invocations overlap, so it is throughput\n' +
        '                cost, not latency; below the spread it is noise)\n' +
        "CPU µs/inv    = CPU time (user + system, /proc) of the configuration's Latchkey process in the window,\n" +
        "                per invocation (the median round); CPU vs (a): against (a)'s, in %",
    );
    if (spans !== undefined) {
      const n = invocations.get('api')!;
      console.log(
        `(c) spans exported: ${spans} for ${n} invocations (${r1(spans / Math.max(1, n))} per invocation)` +
          (spans === 0
            ? ': Latchkey made no spans, so (c) measured a registered provider only'
            : ''),
      );
    }
    console.log(`total ${r1((Date.now() - started) / 1000)} s`);
    mkdirSync(dirname(opt.out), { recursive: true });
    const rounded = results.map((x) => ({
      ...x,
      rows: x.rows.map((r) => ({
        ...r,
        throughput: r1(r.throughput),
        runs: r.runs.map(r1),
        p50: r2(r.p50),
        p99: r2(r.p99),
      })),
    }));
    writeFileSync(
      opt.out,
      JSON.stringify({ date: new Date().toISOString(), options: opt, spans, results: rounded }),
    );
    console.log(`JSON written to ${opt.out}`);
  } finally {
    await load.close();
    await Promise.all([...systems.values()].map((s) => s.stop()));
    await redis?.stop();
  }
  if (failed) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
