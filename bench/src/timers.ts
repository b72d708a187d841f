/**
 * `node bench/dist/timers.js`: durable timers at scale, Latchkey and Restate in one run.
 *
 * N `timer` workflows (bench-services.ts: a journaled time, then a durable sleep until a given
 * time, suspending after 100 ms) are submitted at `--rate` per second through each system's HTTP
 * ingress (`/timer/<key>/run/send`). Their wake times are spaced `1/--fire-rate` s apart and start
 * after the whole submission (with a margin), so every workflow sleeps at once before the first
 * wakes, and they then come due at the fire rate (2,000/s by default) whatever the submission
 * rate was. Reported per system:
 * - timer lateness p50/p99/max: each workflow's result, the time it woke minus its wake time (an
 *   upper bound: the sleep is due a little after it, counted from a time journaled before it);
 * - Latchkey: Redis bytes per sleeping workflow (`INFO memory` used_memory at the peak minus
 *   before, / N) and where they are (`MEMORY USAGE` of every key under the run's prefix, grouped
 *   by pattern, / N), and the Latchkey processes' RSS growth at the peak;
 * - Restate: the restate-server's and its endpoint's RSS growth at the peak.
 *
 * Options: --n 20000 --rate 600 --fire-rate 2000 --systems latchkey,restate --processes 1
 * --redis-url <url> (else a private redis-server) --restate-bin <path> --concurrency 128
 * --cpu-prof <dir> (a CPU profile of each Latchkey process) --dump <path> (each sleeper's lateness,
 * in wake order, to <path>.<system>.json) --warmup 0 (unmeasured sleepers due at the fire rate
 * before the measured ones, ending 5 s before them) --client-headers none|browser (browser: each
 * submission carries the headers a browser's `fetch` sends, which the invocation keeps; none: only
 * Node's own) --redis-config <name>=<value>[,...] (CONFIG SET on the Redis before the run, e.g.
 * `hash-max-listpack-value=1024`).
 *
 * Latchkey's lateness is also split: the deadline in `due` past the wake time asked (the commit
 * between the journaled time and the sleep), and each timer's own lateness past that deadline.
 */
import { Agent, request } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { commandStats, diff, sum, type Counts } from './redis-stats.js';
import { startLatchkey, startRestate, type System } from './systems.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    rate: { type: 'string', default: '600' },
    'fire-rate': { type: 'string', default: '2000' },
    systems: { type: 'string', default: 'latchkey,restate' },
    processes: { type: 'string', default: '1' },
    'redis-url': { type: 'string' },
    'restate-bin': { type: 'string' },
    concurrency: { type: 'string', default: '128' },
    'cpu-prof': { type: 'string' },
    dump: { type: 'string' },
    warmup: { type: 'string', default: '0' },
    'client-headers': { type: 'string', default: 'none' },
    'redis-config': { type: 'string' },
  },
});
const N = Number(values.n);
const RATE = Number(values.rate);
const FIRE_RATE = Number(values['fire-rate']);
const CONCURRENCY = Number(values.concurrency);
const WARMUP = Number(values.warmup);

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

/** What a browser's `fetch` adds to a POST (Chromium 131 on Linux), for `--client-headers browser`. */
const BROWSER_HEADERS: Record<string, string> = {
  'user-agent':
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  accept: '*/*',
  'accept-language': 'en-US,en;q=0.9',
  'accept-encoding': 'gzip, deflate, br, zstd',
  origin: 'http://localhost:5173',
  referer: 'http://localhost:5173/',
  'sec-fetch-mode': 'cors',
  'sec-fetch-site': 'same-site',
  'sec-fetch-dest': 'empty',
};
if (values['client-headers'] !== 'none' && values['client-headers'] !== 'browser')
  throw new Error(`--client-headers: none or browser, not '${values['client-headers']}'`);
const clientHeaders = values['client-headers'] === 'browser' ? BROWSER_HEADERS : {};

function http(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  body?: string,
): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {
      ...clientHeaders,
      'content-length': Buffer.byteLength(body ?? ''),
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const req = request(
      { agent, host: url.hostname, port: url.port, path, method, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error('no reply within 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs `fn(i)` for i in [0, n), at most `limit` at once, started no faster than `rate` per second. */
async function paced(
  n: number,
  rate: number,
  limit: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  const t0 = performance.now();
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const all: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    const now = performance.now();
    if (due > now + 1) await sleep(due - now);
    while (inFlight >= limit) await new Promise<void>((r) => (wake = r));
    inFlight++;
    all.push(
      fn(i).finally(() => {
        inFlight--;
        wake?.();
      }),
    );
  }
  await Promise.all(all);
}

function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

const usedMemory = async (r: Redis): Promise<number> =>
  Number(/used_memory:(\d+)/.exec(await r.info('memory'))?.[1] ?? 0);

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A key's pattern: partitions, shards, invocation ids, job ids and workflow keys replaced. */
function patternOf(key: string, prefix: string): string {
  return key
    .slice(prefix.length + 1)
    .replace(/\{\d+(\.\d+)?\}/g, '{p}')
    .replace(/\{q\d+\}/g, '{q<n>}')
    .replace(/inv_[0-9A-Za-z]+(-\d+)?/g, '<id>')
    .replace(/k-\d+/g, '<key>')
    .replace(/:\d+$/, ':<n>');
}

/** MEMORY USAGE of every key under the prefix, summed by pattern, largest first. */
async function breakdown(r: Redis, prefix: string): Promise<[string, number, number][]> {
  const by = new Map<string, { keys: number; bytes: number }>();
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 2000);
    cursor = next;
    const pipe = r.pipeline();
    for (const k of keys) pipe.call('MEMORY', 'USAGE', k, 'SAMPLES', '0');
    const res = (await pipe.exec()) ?? [];
    keys.forEach((k, i) => {
      const p = patternOf(k, prefix);
      const e = by.get(p) ?? { keys: 0, bytes: 0 };
      e.keys++;
      e.bytes += Number(res[i]?.[1] ?? 0);
      by.set(p, e);
    });
  } while (cursor !== '0');
  return [...by]
    .map(([p, e]) => [p, e.keys, e.bytes] as [string, number, number])
    .sort((a, b) => b[2] - a[2]);
}

/**
 * How far each sleeper's deadline (its score in its partition's `due` zset) lies past the wake
 * time it asked for: the part of its lateness that comes before the timer, from the journaled time
 * to the sleep's commit (the workflow measures the sleep from that time).
 */
async function scheduledLateness(
  r: Redis,
  prefix: string,
  wakeOf: (i: number) => number,
  byIndex: Float64Array,
): Promise<{ p50: number; p99: number; max: number }> {
  const skew: number[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:{*}:due`, 'COUNT', 1000);
    cursor = next;
    for (const due of keys) {
      const part = due.slice(0, -'due'.length);
      const entries = await r.zrange(due, 0, -1, 'WITHSCORES');
      const pipe = r.pipeline();
      for (let i = 0; i < entries.length; i += 2) pipe.hget(`${part}inv:${entries[i]}`, 'key');
      const keysOf = (await pipe.exec()) ?? [];
      keysOf.forEach(([, key], j) => {
        const m = /^k-(\d+)$/.exec(String(key));
        if (!m) return;
        const i = Number(m[1]);
        byIndex[i] = Number(entries[2 * j + 1]) - wakeOf(i);
        skew.push(byIndex[i]);
      });
    }
  } while (cursor !== '0');
  skew.sort((a, b) => a - b);
  return { p50: pct(skew, 50), p99: pct(skew, 99), max: skew.at(-1) ?? NaN };
}

interface Result {
  system: string;
  submitted: number;
  submitS: number;
  late: { p50: number; p99: number; max: number; n: number; missing: number };
  redisBytesPerSleeper?: number;
  keyBytesPerSleeper?: [string, number, number][];
  rssGrowthMiB: Record<string, number>;
  lateByTenth?: number[];
  /** Latchkey: how far each timer's deadline in `due` lies past its requested wake time (ms), p50/p99/max. */
  scheduledLate?: { p50: number; p99: number; max: number };
  /** Latchkey: each timer's lateness from its deadline in `due` (ms): the timer's own part. */
  firedLate?: { p50: number; p99: number; max: number };
  /** While the timers fired (Latchkey): Redis scripts and commands (inside scripts too) and mailbox jobs, per timer. */
  firing?: { scriptsPerTimer: number; commandsPerTimer: number; jobsPerTimer: number; top: string };
}

async function probe(
  name: string,
  system: System,
  url: string,
  redis: Redis | undefined,
  prefix: string,
): Promise<Result> {
  const pids = system.procs.map((p) => [p.name, p.pid] as const);
  const rss0 = Object.fromEntries(pids.map(([n, pid]) => [n, rssMiB(pid)]));
  const mem0 = redis ? await usedMemory(redis) : 0;
  const t0 = performance.now();
  // The first wake: after twice the planned submission and 10 s more (a loaded machine submits
  // slower than planned; a workflow submitted after its wake time would not measure its timer).
  const firstWake = Date.now() + ((N + WARMUP) / RATE) * 2000 + 10_000;
  const wakeOf = (i: number): number => Math.round(firstWake + (i * 1000) / FIRE_RATE);
  let refused = 0;
  let short = 0;
  // Warm-up sleepers (`--warmup n`, not measured): due at the fire rate, ending 5 s before the
  // first measured one, so the process has resumed workflows before the measured burst.
  await paced(WARMUP, RATE, CONCURRENCY, async (i) => {
    const at = firstWake - 5000 - ((WARMUP - i) * 1000) / FIRE_RATE;
    await http(url, 'POST', `/timer/w-${i}/run/send`, String(Math.round(at))).catch(
      () => undefined,
    );
  });
  await paced(N, RATE, CONCURRENCY, async (i) => {
    if (wakeOf(i) - Date.now() < 1000) short++;
    const r = await http(url, 'POST', `/timer/k-${i}/run/send`, String(wakeOf(i))).catch(
      () => undefined,
    );
    if (r?.status !== 200 && r?.status !== 202) refused++;
  });
  const submitS = (performance.now() - t0) / 1000;
  if (refused > 0) process.stderr.write(`[${name}] ${refused} submissions refused\n`);
  if (short > 0)
    process.stderr.write(`[${name}] ${short} submitted less than 1 s before their wake time\n`);
  // Every workflow has started and suspended (100 ms inactivity) before the first wakes.
  await sleep(Math.min(2000, Math.max(0, firstWake - Date.now() - 3000)));
  const rss1 = Object.fromEntries(pids.map(([n, pid]) => [n, rssMiB(pid)]));
  const result: Result = {
    system: name,
    submitted: N - refused,
    submitS,
    late: { p50: NaN, p99: NaN, max: NaN, n: 0, missing: 0 },
    rssGrowthMiB: Object.fromEntries(
      Object.entries(rss1).map(([n, v]) => [n, Math.round((v - rss0[n]!) * 10) / 10]),
    ),
  };
  if (redis) {
    result.redisBytesPerSleeper = Math.round((await usedMemory(redis)) - mem0) / N;
    result.keyBytesPerSleeper = (await breakdown(redis, prefix)).map(([p, keys, bytes]) => [
      p,
      keys,
      Math.round((bytes / N) * 10) / 10,
    ]);
  }
  const skewOf = new Float64Array(N).fill(NaN);
  if (redis) result.scheduledLate = await scheduledLateness(redis, prefix, wakeOf, skewOf);
  // Redis commands while the timers fire (from 1 s before the first is due until the last has
  // been due for 3 s), and mailbox jobs added meanwhile (BullMQ's job id counters).
  await sleep(Math.max(0, firstWake - Date.now() - 1000));
  const jobsAdded = async (): Promise<number> => {
    if (!redis) return 0;
    const ids = await Promise.all(
      [0, 1, 2, 3, 4, 5, 6, 7].map((q) => redis.get(`${prefix}:{q${q}}:jobs:id`)),
    );
    return ids.reduce((a, v) => a + Number(v ?? 0), 0);
  };
  const cmd0 = redis ? await commandStats(redis) : undefined;
  const jobs0 = await jobsAdded();
  await sleep(Math.max(0, wakeOf(N - 1) - Date.now() + 3000));
  if (redis && cmd0) {
    const d: Counts = diff(await commandStats(redis), cmd0);
    d.delete('memory|usage');
    result.firing = {
      scriptsPerTimer:
        Math.round((((d.get('evalsha') ?? 0) + (d.get('eval') ?? 0)) / N) * 100) / 100,
      commandsPerTimer: Math.round((sum(d) / N) * 100) / 100,
      jobsPerTimer: Math.round((((await jobsAdded()) - jobs0) / N) * 1000) / 1000,
      top: [...d]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 12)
        .map(([c, n]) => `${c} ${Math.round((n / N) * 100) / 100}`)
        .join(', '),
    };
  }
  // Then read every result (470: not yet).
  await sleep(Math.max(0, wakeOf(N - 1) - Date.now() + 1000));
  const late: number[] = [];
  const byIndex = new Float64Array(N).fill(NaN);
  const deadline = performance.now() + 120_000;
  let missing = 0;
  await paced(N, 1e9, 64, async (i) => {
    for (;;) {
      const r = await http(url, 'GET', `/restate/workflow/timer/k-${i}/output`).catch(
        () => undefined,
      );
      if (r?.status === 200) {
        late.push(Number(r.body));
        byIndex[i] = Number(r.body);
        return;
      }
      if (performance.now() > deadline) {
        missing++;
        return;
      }
      await sleep(200);
    }
  });
  if (values.dump)
    writeFileSync(`${values.dump}.${name.split(' ')[0]}.json`, JSON.stringify([...byIndex]));
  late.sort((a, b) => a - b);
  if (redis) {
    // Each timer's own lateness: from its deadline in `due`, not from the wake time asked.
    const own = [...byIndex]
      .map((l, i) => l - skewOf[i]!)
      .filter((x) => !Number.isNaN(x))
      .sort((a, b) => a - b);
    result.firedLate = { p50: pct(own, 50), p99: pct(own, 99), max: own.at(-1) ?? NaN };
  }
  // The median lateness of each tenth of the wake order: a backlog grows along it.
  result.lateByTenth = Array.from({ length: 10 }, (_, t) => {
    const part = [...byIndex.subarray((t * N) / 10, ((t + 1) * N) / 10)]
      .filter((x) => !Number.isNaN(x))
      .sort((a, b) => a - b);
    return pct(part, 50);
  });
  result.late = {
    p50: pct(late, 50),
    p99: pct(late, 99),
    max: late.at(-1) ?? NaN,
    n: late.length,
    missing,
  };
  return result;
}

function print(r: Result): void {
  const l = r.late;
  console.log(
    `\n${r.system}: ${r.submitted} sleepers submitted in ${r.submitS.toFixed(1)} s ` +
      `(${Math.round(r.submitted / r.submitS)}/s), due ${FIRE_RATE}/s`,
  );
  console.log(
    `  lateness: p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms (${l.n} results, ${l.missing} missing)`,
  );
  console.log(`  median lateness by tenth of the wake order (ms): ${r.lateByTenth?.join(' ')}`);
  if (r.scheduledLate)
    console.log(
      `  of which before the timer (its deadline past the wake time asked): p50 ` +
        `${r.scheduledLate.p50} ms, p99 ${r.scheduledLate.p99} ms, max ${r.scheduledLate.max} ms`,
    );
  if (r.firedLate)
    console.log(
      `  the timers themselves (woken past their deadline): p50 ${r.firedLate.p50} ms, ` +
        `p99 ${r.firedLate.p99} ms, max ${r.firedLate.max} ms`,
    );
  console.log(`  RSS growth at the peak (MiB): ${JSON.stringify(r.rssGrowthMiB)}`);
  if (r.firing)
    console.log(
      `  while firing, per timer: ${r.firing.scriptsPerTimer} scripts, ${r.firing.commandsPerTimer} ` +
        `Redis commands (inside scripts too), ${r.firing.jobsPerTimer} mailbox jobs\n    (${r.firing.top})`,
    );
  if (r.redisBytesPerSleeper !== undefined) {
    console.log(`  Redis used_memory per sleeper: ${Math.round(r.redisBytesPerSleeper)} B`);
    console.log('  MEMORY USAGE per sleeper, by key pattern (keys, bytes / sleeper):');
    for (const [p, keys, b] of r.keyBytesPerSleeper ?? [])
      if (b >= 1)
        console.log(`    ${p.padEnd(40)} ${String(keys).padStart(7)} ${b.toFixed(1).padStart(8)}`);
  }
}

let local: LocalRedis | undefined;
const redisUrl = values['redis-url'] ?? (local = await startLocalRedis({})).url;
const redis = new Redis(redisUrl);
for (const setting of values['redis-config']?.split(',') ?? []) {
  const eq = setting.indexOf('=');
  if (eq < 1) throw new Error(`--redis-config: <name>=<value>, not '${setting}'`);
  await redis.config('SET', setting.slice(0, eq), setting.slice(eq + 1));
}
const results: Result[] = [];
try {
  for (const name of values.systems.split(',')) {
    if (name === 'latchkey') {
      const prefix = `tm${Date.now().toString(36)}`;
      const sys = await startLatchkey({
        redisUrl,
        prefix,
        processes: Number(values.processes),
        storeOptions: {},
        cpuProfDir: values['cpu-prof'],
      });
      try {
        results.push(await probe('latchkey', sys, sys.urls[0]!, redis, prefix));
      } finally {
        await sys.stop();
      }
    } else if (name === 'restate') {
      const sys = await startRestate({ binary: values['restate-bin'] });
      try {
        results.push(await probe(`restate ${sys.version}`, sys, sys.url, undefined, ''));
      } finally {
        await sys.stop();
      }
    } else throw new Error(`unknown system ${name}`);
    print(results.at(-1)!);
  }
  console.log(`\n${JSON.stringify({ n: N, rate: RATE, fireRate: FIRE_RATE, results })}`);
} finally {
  redis.disconnect();
  agent.destroy();
  await local?.stop();
}
