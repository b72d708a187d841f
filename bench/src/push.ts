/**
 * `node bench/dist/push.js`: issue 19's bench. A 3-step workflow (`threeSteps/run`, the main
 * bench's `workflow` scenario) whose handler runs on a push deployment on loopback, against
 * Restate's request-response endpoint (HTTP/1.1, as on Lambda) in one run. Prints throughput,
 * p50/p99 latency, function invocations per workflow and (Latchkey) Redis commands per workflow.
 *
 * Systems: `latchkey` (request-response: the deployment has no store; one request per step),
 * `latchkey-direct` (the deployment reaches Redis and runs each attempt itself; its requests signed,
 * as direct mode requires) and `restate`
 * (restate-server 1.7 with the SDK's `http1Handler()`, registered with `use_http_11`). Each is an
 * engine process plus a function process; the load comes from a worker thread of this process.
 *
 * Options: --concurrency 1,64 --duration-ms 10000 --warmup-ms 3000
 * --systems latchkey,latchkey-direct,restate --redis-url <url> (else a private redis-server)
 */
import { generateKeyPairSync } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import type { LoadJob, LoadResult } from './load.js';
import { LoadWorker, percentile, procCpuMs, waitQuiet } from './measure.js';
import { commandStats, sum } from './redis-stats.js';
import { askCount, forkReady, startRestate } from './systems.js';

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,64' },
    'duration-ms': { type: 'string', default: '10000' },
    'warmup-ms': { type: 'string', default: '3000' },
    systems: { type: 'string', default: 'latchkey,latchkey-direct,restate' },
    'redis-url': { type: 'string' },
  },
});
const concurrencies = values.concurrency.split(',').map(Number);
const durationMs = Number(values['duration-ms']);
const warmupMs = Number(values['warmup-ms']);
const systems = values.systems.split(',').filter(Boolean);
for (const s of systems) {
  if (!['latchkey', 'latchkey-direct', 'restate'].includes(s))
    throw new Error(`unknown system ${s}`);
}

interface Started {
  url: string;
  pids: (number | undefined)[];
  /** Function invocations so far. */
  invokes(): Promise<number>;
  /** Redis commands so far (Latchkey only). */
  commands?(): Promise<number>;
  stop(): Promise<void>;
}

interface Row {
  system: string;
  concurrency: number;
  throughput: number;
  p50: number;
  p99: number;
  errors: number;
  invokesPerWorkflow: number;
  commandsPerWorkflow?: number;
  cpuMsPerWorkflow: number;
}

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

async function startLatchkey(redisUrl: string, direct: boolean): Promise<Started> {
  const prefix = `pb${Date.now().toString(36)}${direct ? 'd' : 'r'}`;
  // Direct mode takes signed requests only: the engine signs, the function checks.
  const keys = generateKeyPairSync('ed25519');
  const env = {
    LK_REDIS_URL: redisUrl,
    LK_PREFIX: prefix,
    ...(direct
      ? {
          LATCHKEY_SIGNING_KEY: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
          LATCHKEY_IDENTITY_KEYS: keys.publicKey
            .export({ type: 'spki', format: 'der' })
            .toString('base64'),
        }
      : {}),
  };
  const fn = await forkReady<{ ready: true; port: number }>(
    'function',
    here('./push-function.js'),
    {
      ...env,
      ...(direct ? { BENCH_DIRECT: '1' } : {}),
    },
  );
  const engine = await forkReady<{ ready: true; url: string }>('engine', here('./push-engine.js'), {
    ...env,
    LK_DEPLOYMENT: `http://127.0.0.1:${fn.msg.port}`,
  });
  const redis = new Redis(redisUrl);
  return {
    url: engine.msg.url,
    pids: [fn.child.pid, engine.child.pid],
    invokes: () => askCount(fn.child),
    commands: async () => sum(await commandStats(redis)),
    stop: async () => {
      redis.disconnect();
      await kill(engine.child);
      await kill(fn.child);
    },
  };
}

async function start(system: string, redisUrl: string): Promise<Started> {
  if (system !== 'restate') return startLatchkey(redisUrl, system === 'latchkey-direct');
  const r = await startRestate({ http1: true });
  return {
    url: r.url,
    pids: r.procs.map((p) => p.pid),
    invokes: () => r.invokes(),
    stop: () => r.stop(),
  };
}

async function measure(load: LoadWorker, s: Started, system: string, c: number): Promise<Row> {
  const job = (tag: string, ms: number): LoadJob => ({
    kind: 'load',
    transport: 'http',
    bases: [s.url],
    scenario: 'workflow',
    concurrency: c,
    durationMs: ms,
    tag,
    keys: 1,
    requestTimeoutMs: 60_000,
  });
  await load.run(job(`w${system}${c}${Date.now()}`, warmupMs));
  await waitQuiet(s.pids);
  const inv0 = await s.invokes();
  const cmd0 = s.commands ? await s.commands() : undefined;
  const cpu0 = s.pids.map((p) => procCpuMs(p) ?? 0);
  const res: LoadResult = await load.run(job(`m${system}${c}${Date.now()}`, durationMs));
  let cpu = 0;
  s.pids.forEach((p, i) => (cpu += (procCpuMs(p) ?? 0) - (cpu0[i] ?? 0)));
  const inv = (await s.invokes()) - inv0;
  const cmds = s.commands && cmd0 !== undefined ? (await s.commands()) - cmd0 : undefined;
  const lat = Float64Array.from(res.latencies).sort();
  const n = Math.max(1, res.ok);
  return {
    system,
    concurrency: c,
    throughput: res.ok / (res.elapsedMs / 1000),
    p50: percentile(lat, 0.5),
    p99: percentile(lat, 0.99),
    errors: res.errors,
    invokesPerWorkflow: inv / n,
    ...(cmds !== undefined ? { commandsPerWorkflow: cmds / n } : {}),
    cpuMsPerWorkflow: cpu / n,
  };
}

let local: LocalRedis | undefined;
const redisUrl = values['redis-url'] ?? (local = await startLocalRedis({})).url;
const load = new LoadWorker();
const rows: Row[] = [];
try {
  for (const system of systems) {
    const s = await start(system, redisUrl);
    try {
      for (const c of concurrencies) {
        const row = await measure(load, s, system, c);
        rows.push(row);
        process.stderr.write(`${system} c=${c}: ${row.throughput.toFixed(0)}/s\n`);
      }
    } finally {
      await s.stop();
    }
  }
} finally {
  await load.close();
  await local?.stop();
}

const fmt = (v: number | undefined, d = 1): string => (v === undefined ? '—' : v.toFixed(d));
console.log(
  `\n3-step workflow on a push deployment (loopback), ${durationMs / 1000} s per row\n` +
    'system            c   wf/s    p50 ms  p99 ms  fn calls/wf  redis cmds/wf  cpu ms/wf  errors',
);
for (const r of rows) {
  const restate = rows.find((x) => x.system === 'restate' && x.concurrency === r.concurrency);
  const ratio =
    restate && r.system !== 'restate'
      ? ` (${(r.throughput / restate.throughput).toFixed(2)}× Restate)`
      : '';
  console.log(
    `${r.system.padEnd(16)} ${String(r.concurrency).padStart(3)} ${fmt(r.throughput, 0).padStart(6)}  ` +
      `${fmt(r.p50).padStart(6)}  ${fmt(r.p99).padStart(6)}  ${fmt(r.invokesPerWorkflow, 2).padStart(11)}  ` +
      `${fmt(r.commandsPerWorkflow).padStart(13)}  ${fmt(r.cpuMsPerWorkflow, 2).padStart(9)}  ${r.errors}${ratio}`,
  );
}
console.log(JSON.stringify({ durationMs, rows }));
