/**
 * `--memory`: issue 6's memory target. A long run of short-retention
 * invocations through the Latchkey process (HTTP ingress), sampling the
 * Latchkey process's RSS and Redis `used_memory`/`DBSIZE` every
 * `sampleEvery` invocations, then again once the retention has passed (when
 * `DBSIZE` stops falling). Memory is "flat" when the value after retention is
 * within a tolerance of the value after the first `sampleEvery` invocations
 * (the warm-up). The keys left in Redis are listed by pattern.
 *
 * The service is `memory` (bench/src/services.ts, Latchkey only): `noop` and
 * `step` (one `ctx.run`), both with `journalRetention` and
 * `idempotencyRetention` of 1 s; every third call carries an idempotency key.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { MEMORY_RETENTION_MS } from './services.js';

export interface MemoryOptions {
  invocations: number;
  concurrency: number;
  sampleEvery: number;
  /** Longest wait after the load for DBSIZE to stop falling (ms). */
  settleMaxMs: number;
  requestTimeoutMs: number;
}

export interface MemorySample {
  /** `before load`, `after N`, `load end`, `after retention`. */
  label: string;
  invocations: number;
  /** Seconds since the first request. */
  atS: number;
  /** Invocations per second since the previous sample (load samples only). */
  throughput?: number;
  /** RSS (MiB) of each Latchkey process and of the private redis-server. */
  rssMiB: Record<string, number>;
  redisUsedMemoryMiB: number;
  dbsize: number;
}

export interface KeyPattern {
  pattern: string;
  type: string;
  count: number;
  /** boot marker, object fence, BullMQ housekeeping, or unexpected. */
  kind: string;
}

export interface Growth {
  what: string;
  warmupMiB: number;
  endMiB: number;
  growthMiB: number;
  growthPct: number;
  toleranceMiB: number;
  flat: boolean;
}

export interface MemoryResult {
  service: string;
  retentionMs: number;
  options: MemoryOptions;
  mix: string;
  invocations: number;
  errors: number;
  errorSamples: string[];
  loadS: number;
  throughput: number;
  retentionWait: { ms: number; settled: boolean; dbsizeAtLoadEnd: number; dbsizeAfter: number };
  samples: MemorySample[];
  growth: Growth[];
  keysLeft: KeyPattern[];
  unexpectedKeys: number;
  flat: boolean;
  verdict: string;
}

/** Tolerance: RSS may grow by max(20 %, 8 MiB), Redis used_memory by max(20 %, 2 MiB). */
const TOL_PCT = 20;
const RSS_TOL_MIB = 8;
const REDIS_TOL_MIB = 2;

const r1 = (x: number): number => Math.round(x * 10) / 10;

interface Reply {
  status: number;
  body: string;
}

function post(
  agent: Agent,
  url: URL,
  path: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path,
        method: 'POST',
        headers: { ...headers, 'content-length': 0 },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no reply within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Groups a key into a pattern: partitions, shards, ids, numbers and this run's names replaced. */
function patternOf(key: string, tag: string): string {
  return key
    .split(':')
    .map((seg) => {
      if (/^\{\d+\}$/.test(seg)) return '{p}';
      if (/^\{q\d+\}$/.test(seg)) return '{q<n>}';
      if (seg.startsWith('inv_')) return '<id>';
      if (/^\d+$/.test(seg)) return '<n>';
      if (seg.includes(tag)) return '<name>';
      return seg;
    })
    .join(':');
}

function kindOf(pattern: string, prefix: string): string {
  const rest = pattern.startsWith(`${prefix}:`) ? pattern.slice(prefix.length + 1) : pattern;
  if (rest === 'boot') return 'boot marker';
  if (/^\{p\}:k:/.test(rest)) return 'object fence';
  if (/^\{q<n>\}:jobs:[^:<]+$/.test(rest)) return 'BullMQ housekeeping';
  return 'unexpected';
}

export async function runMemory(args: {
  bases: string[];
  admin: Redis;
  prefix: string;
  tag: string;
  opts: MemoryOptions;
  /** RSS (MiB) of the processes to watch. */
  rss: () => Record<string, number>;
  progress: (s: string) => void;
}): Promise<MemoryResult> {
  const { admin, opts, progress } = args;
  const urls = args.bases.map((b) => new URL(b));
  const agents = urls.map(() => new Agent({ keepAlive: true, maxSockets: opts.concurrency }));
  const samples: MemorySample[] = [];
  const usedMemory = async (): Promise<number> =>
    Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1] ?? NaN) / 1048576;
  let t0 = performance.now();
  let lastAt = 0;
  let lastN = 0;
  const sample = async (
    label: string,
    invocations: number,
    load: boolean,
  ): Promise<MemorySample> => {
    const [used, dbsize] = await Promise.all([usedMemory(), admin.dbsize()]);
    const at = (performance.now() - t0) / 1000;
    const s: MemorySample = {
      label,
      invocations,
      atS: r1(at),
      ...(load ? { throughput: r1((invocations - lastN) / Math.max(0.001, at - lastAt)) } : {}),
      rssMiB: args.rss(),
      redisUsedMemoryMiB: r1(used),
      dbsize,
    };
    if (load) {
      lastAt = at;
      lastN = invocations;
    }
    samples.push(s);
    progress(
      `  ${label}: ${Object.entries(s.rssMiB)
        .map(([k, v]) => `${k} RSS ${v} MiB`)
        .join(', ')}, redis used_memory ${s.redisUsedMemoryMiB} MiB, dbsize ${dbsize}` +
        (s.throughput !== undefined ? `, ${s.throughput} inv/s` : ''),
    );
    return s;
  };

  // The load: `concurrency` closed loops over the ingresses until `invocations` were sent.
  let next = 0;
  let done = 0;
  let ok = 0;
  let errors = 0;
  const errorSamples: string[] = [];
  const pending: Promise<unknown>[] = [];
  const client = async (c: number): Promise<void> => {
    const url = urls[c % urls.length]!;
    const agent = agents[c % agents.length]!;
    for (;;) {
      const i = next++;
      if (i >= opts.invocations) return;
      const step = i % 2 === 1;
      const headers: Record<string, string> =
        i % 3 === 0 ? { 'idempotency-key': `${args.tag}-${i}` } : {};
      let err: string | undefined;
      try {
        const reply = await post(
          agent,
          url,
          `/memory/${step ? 'step' : 'noop'}`,
          headers,
          opts.requestTimeoutMs,
        );
        if (reply.status !== 200) err = `HTTP ${reply.status} ${reply.body.slice(0, 200)}`;
        else if (step ? reply.body !== '1' : reply.body !== '' && reply.body !== 'null')
          err = `unexpected result ${reply.body.slice(0, 200)}`;
      } catch (e) {
        err = (e as Error).message;
      }
      if (err) {
        errors++;
        if (errorSamples.length < 5) errorSamples.push(err);
      } else ok++;
      done++;
      if (done % opts.sampleEvery === 0 && done < opts.invocations)
        pending.push(sample(`after ${done}`, done, true));
    }
  };
  await sample('before load', 0, false);
  progress(
    `memory: ${opts.invocations} invocations of memory/noop and memory/step at concurrency ${opts.concurrency}, a sample every ${opts.sampleEvery}`,
  );
  t0 = performance.now();
  await Promise.all(Array.from({ length: opts.concurrency }, (_, c) => client(c)));
  const loadS = (performance.now() - t0) / 1000;
  await Promise.all(pending);
  for (const a of agents) a.destroy();
  const loadEnd = await sample('load end', done, true);

  // Past the retention: poll until DBSIZE stops falling (unchanged for 5 s, at least 2× the retention after the load), with a deadline.
  progress(
    `memory: waiting for the ${MEMORY_RETENTION_MS} ms retention to pass (DBSIZE stable for 5 s, at most ${opts.settleMaxMs / 1000} s)`,
  );
  const w0 = performance.now();
  let last = loadEnd.dbsize;
  let lastChange = w0;
  let settled = false;
  while (performance.now() - w0 < opts.settleMaxMs) {
    await sleep(500);
    const n = await admin.dbsize();
    const now = performance.now();
    if (n !== last) {
      last = n;
      lastChange = now;
    } else if (now - lastChange >= 5000 && now - w0 >= 2 * MEMORY_RETENTION_MS) {
      settled = true;
      break;
    }
  }
  const waitMs = performance.now() - w0;
  const after = await sample('after retention', done, false);

  // What is left, by pattern.
  const byPattern = new Map<string, { count: number; sample: string }>();
  let cursor = '0';
  do {
    const [c, keys] = await admin.scan(cursor, 'MATCH', `${args.prefix}:*`, 'COUNT', 1000);
    cursor = c;
    for (const k of keys) {
      const p = patternOf(k, args.tag);
      const e = byPattern.get(p);
      if (e) e.count++;
      else byPattern.set(p, { count: 1, sample: k });
    }
  } while (cursor !== '0');
  const keysLeft: KeyPattern[] = [];
  for (const [pattern, e] of [...byPattern].sort((a, b) => a[0].localeCompare(b[0]))) {
    keysLeft.push({
      pattern,
      type: await admin.type(e.sample),
      count: e.count,
      kind: kindOf(pattern, args.prefix),
    });
  }
  const unexpectedKeys = keysLeft
    .filter((k) => k.kind === 'unexpected')
    .reduce((a, k) => a + k.count, 0);

  // Verdict: after retention vs after the warm-up (the first sample).
  const warm = samples.find((s) => s.throughput !== undefined) ?? loadEnd;
  const growth: Growth[] = [];
  const grow = (
    what: string,
    a: number | undefined,
    b: number | undefined,
    tolMiB: number,
  ): void => {
    if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b)) return;
    const d = b - a;
    const tol = Math.max((a * TOL_PCT) / 100, tolMiB);
    growth.push({
      what,
      warmupMiB: a,
      endMiB: b,
      growthMiB: r1(d),
      growthPct: r1((100 * d) / a),
      toleranceMiB: r1(tol),
      flat: d <= tol,
    });
  };
  for (const name of Object.keys(after.rssMiB)) {
    if (name === 'redis')
      grow('redis-server RSS', warm.rssMiB[name], after.rssMiB[name], RSS_TOL_MIB);
    else grow(`${name} RSS`, warm.rssMiB[name], after.rssMiB[name], RSS_TOL_MIB);
  }
  grow('redis used_memory', warm.redisUsedMemoryMiB, after.redisUsedMemoryMiB, REDIS_TOL_MIB);
  // redis-server RSS is shown but not judged: the allocator keeps freed pages.
  const judged = growth.filter((g) => g.what !== 'redis-server RSS');
  const flat =
    judged.length > 0 && judged.every((g) => g.flat) && errors === 0 && unexpectedKeys === 0;
  const verdict =
    `${flat ? 'FLAT' : 'NOT FLAT'}: ` +
    judged
      .map(
        (g) =>
          `${g.what} ${g.warmupMiB} → ${g.endMiB} MiB (${g.growthMiB >= 0 ? '+' : ''}${g.growthMiB} MiB, ${g.growthPct >= 0 ? '+' : ''}${g.growthPct}%; ${g.flat ? 'flat' : 'GREW'})`,
      )
      .join('; ') +
    `; ${after.dbsize} keys left after retention (${unexpectedKeys === 0 ? 'only boot marker, fences and BullMQ housekeeping' : `${unexpectedKeys} UNEXPECTED`})` +
    (errors > 0 ? `; ${errors} ERRORS` : '');

  return {
    service: 'memory (noop, step: one ctx.run)',
    retentionMs: MEMORY_RETENTION_MS,
    options: opts,
    mix: 'even i: memory/noop, odd i: memory/step; every third (i % 3 == 0) with an idempotency-key header',
    invocations: ok,
    errors,
    errorSamples,
    loadS: r1(loadS),
    throughput: r1(ok / loadS),
    retentionWait: {
      ms: Math.round(waitMs),
      settled,
      dbsizeAtLoadEnd: loadEnd.dbsize,
      dbsizeAfter: after.dbsize,
    },
    samples,
    growth,
    keysLeft,
    unexpectedKeys,
    flat,
    verdict,
  };
}

/** The memory report for the terminal. */
export function printMemory(m: MemoryResult): void {
  const procs = Object.keys(m.samples[0]?.rssMiB ?? {});
  const header = [
    'sample',
    'invocations',
    'at s',
    'inv/s',
    ...procs.map((p) => `${p} RSS MiB`),
    'used_memory MiB',
    'dbsize',
  ];
  const cells = m.samples.map((s) => [
    s.label,
    String(s.invocations),
    s.atS.toFixed(1),
    s.throughput !== undefined ? s.throughput.toFixed(0) : '-',
    ...procs.map((p) => (s.rssMiB[p] !== undefined ? s.rssMiB[p].toFixed(1) : '-')),
    s.redisUsedMemoryMiB.toFixed(1),
    String(s.dbsize),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const fmt = (c: string[]): string =>
    c.map((s, i) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ');
  console.log('');
  console.log(
    `== memory: ${m.options.invocations} invocations of ${m.service}, journal and idempotency retention ${m.retentionMs} ms, concurrency ${m.options.concurrency}`,
  );
  console.log(`   ${m.mix}`);
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(fmt(c));
  console.log(
    `  load: ${m.invocations} ok, ${m.errors} errors in ${m.loadS} s (${m.throughput} inv/s)${m.errorSamples.length ? `: ${m.errorSamples.join(' | ')}` : ''}; ` +
      `retention wait ${(m.retentionWait.ms / 1000).toFixed(1)} s (${m.retentionWait.settled ? 'DBSIZE stable' : 'DEADLINE, DBSIZE still changing'}), ` +
      `dbsize ${m.retentionWait.dbsizeAtLoadEnd} → ${m.retentionWait.dbsizeAfter}`,
  );
  console.log('  keys left after retention, by pattern:');
  for (const k of m.keysLeft)
    console.log(
      `    ${String(k.count).padStart(6)}  ${k.type.padEnd(6)}  ${k.pattern}  (${k.kind})`,
    );
  console.log(
    `  flat = after retention vs after the first ${m.options.sampleEvery} (warm-up): growth ≤ max(${TOL_PCT}%, ${RSS_TOL_MIB} MiB) for the Latchkey RSS, ` +
      `≤ max(${TOL_PCT}%, ${REDIS_TOL_MIB} MiB) for used_memory; redis-server RSS shown, not judged (the allocator keeps freed pages)`,
  );
  console.log('');
  console.log(`Memory (issue 6): ${m.verdict}`);
}
