/**
 * The admin listing's benchmark: latency of a page of invocations (filtered and unfiltered) and
 * of the counts, answered from the store's indexes, at growing numbers of invocations; and what
 * the indexes cost in Redis memory per invocation.
 *
 *   node bench/dist/list.js [--counts 100000,1000000] [--samples 200] [--limit 100]
 *
 * The invocations are accepted by the accept script itself (`seedInvocations`: delayed, so
 * nothing runs them): 90% of a service `echo` (handlers `say` and `shout`), 10% of an object
 * `box` over 1,000 keys. Set REDIS_URL to use an existing Redis instead of a private redis-server.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { INVOCATION_STATUSES, type ListQuery } from '@latchkey/core';
import { Keys, createRedisStore } from '@latchkey/redis-store';
import { seedInvocations, startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';

const PARTITIONS = 16;
const STATUSES = INVOCATION_STATUSES;
const BOX_KEYS = 1000;

function target(i: number) {
  return i % 10 === 0
    ? { service: 'box', handler: 'put', mode: 'exclusive' as const, key: `k${i % BOX_KEYS}` }
    : { service: 'echo', handler: i % 3 === 0 ? 'shout' : 'say' };
}

/** Every index key the seeded invocations use (see ARCHITECTURE.md "Indexes"). */
function indexKeys(k: Keys): string[] {
  const out: string[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    out.push(k.ixServices(p), k.ixExpiry(p), k.ixKeys(p, 'box'));
    for (const svc of ['echo', 'box']) {
      out.push(k.ixService(p, svc));
      for (const st of STATUSES) out.push(k.ixServiceStatus(p, svc, st));
    }
  }
  for (let i = 0; i < BOX_KEYS; i++) {
    const key = `k${i}`;
    for (let p = 0; p < PARTITIONS; p++) out.push(k.ixKey(p, 'box', key));
  }
  return out;
}

async function indexBytes(redis: Redis, keys: string[]): Promise<number> {
  let total = 0;
  for (let i = 0; i < keys.length; i += 500) {
    const pipe = redis.pipeline();
    for (const key of keys.slice(i, i + 500)) pipe.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    for (const [, v] of (await pipe.exec()) ?? []) total += Number(v ?? 0);
  }
  return total;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function timeIt(
  samples: number,
  fn: () => Promise<unknown>,
): Promise<{ p50: number; p99: number }> {
  // Warm-up (JIT, connections, Redis's caches), not measured.
  for (let i = 0; i < Math.min(20, samples); i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) };
}

const fmt = (n: number): string => n.toFixed(2).padStart(8);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      counts: { type: 'string', default: '100000,1000000' },
      samples: { type: 'string', default: '200' },
      limit: { type: 'string', default: '100' },
    },
  });
  const counts = values.counts.split(',').map((s) => Number(s.trim()));
  const samples = Number(values.samples);
  const limit = Number(values.limit);
  if (
    counts.some((n) => !Number.isInteger(n) || n < 1) ||
    !(samples >= 1) ||
    !(limit >= 1 && limit <= 1000)
  )
    throw new Error('--counts: positive integers; --samples >= 1; --limit 1..1000');
  let local: LocalRedis | undefined;
  const url = process.env['REDIS_URL'] ?? (local = await startLocalRedis()).url;
  const redis = new Redis(url);
  const seeder = new Redis(url);
  const prefix = `bench-list-${randomUUID().slice(0, 8)}`;
  const keys = new Keys(prefix);
  const store = createRedisStore({
    url,
    prefix,
    partitions: PARTITIONS,
    logger: { warn() {}, error() {}, info() {} },
  });
  await store.init();
  const queries: [string, ListQuery][] = [
    ['unfiltered page', { limit }],
    ['service + handler', { service: 'echo', handler: 'shout', limit }],
    ['status + service', { status: 'delayed', service: 'box', limit }],
    ['object key', { service: 'box', key: 'k10', limit }],
    ['idempotency key (hash-checked)', { service: 'echo', idempotencyKey: 'none', limit }],
  ];
  process.stdout.write(
    `Admin listing from the indexes (${PARTITIONS} partitions, page of ${limit}, ${samples} samples each; ms)\n`,
  );
  try {
    let seeded = 0;
    for (const n of counts.sort((a, b) => a - b)) {
      const t0 = performance.now();
      const more = n - seeded;
      if (more > 0) {
        const offset = seeded;
        await seedInvocations(seeder, {
          prefix,
          count: more,
          target: (i) => target(offset + i),
          batch: 5000,
        });
      }
      seeded = n;
      const seedS = (performance.now() - t0) / 1000;
      const bytes = await indexBytes(redis, indexKeys(keys));
      const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
      process.stdout.write(
        `\n${n.toLocaleString('en-US')} invocations (seeded ${more.toLocaleString('en-US')} in ${seedS.toFixed(1)} s; ` +
          `indexes ${(bytes / n).toFixed(0)} B/invocation, Redis used_memory ${(used / n).toFixed(0)} B/invocation)\n`,
      );
      process.stdout.write(`  ${'query'.padEnd(34)}     p50      p99\n`);
      for (const [name, q] of queries) {
        const r = await timeIt(samples, () => store.list(q));
        process.stdout.write(`  ${name.padEnd(34)}${fmt(r.p50)} ${fmt(r.p99)}\n`);
      }
      const all = await timeIt(samples, () => store.counts());
      process.stdout.write(`  ${'counts'.padEnd(34)}${fmt(all.p50)} ${fmt(all.p99)}\n`);
      const one = await timeIt(samples, () => store.counts({ service: 'box' }));
      process.stdout.write(
        `  ${'counts of a service'.padEnd(34)}${fmt(one.p50)} ${fmt(one.p99)}\n`,
      );
    }
  } finally {
    await store.close();
    // The bench's own keys go with its private server; on a shared Redis, delete them.
    if (!local) {
      let cursor = '0';
      do {
        const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000);
        cursor = next;
        if (found.length > 0) await redis.del(...found);
      } while (cursor !== '0');
    }
    redis.disconnect();
    seeder.disconnect();
    await local?.stop();
  }
}

await main();
