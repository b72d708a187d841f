/**
 * `node bench/dist/background.js`: what idle Latchkey worker processes cost Redis.
 *
 * For each count in `--processes` (default 1,4,16): that many worker processes (plus one
 * ingress-only process, the same for every count) against a fresh key prefix, left idle for
 * `--warmup-s` (the partition duties settle), then measured for `--window-s`: the commands
 * clients sent per second (MONITOR: each script call once, named), and every command Redis ran per
 * second, those inside scripts included (`INFO commandstats`).
 *
 * Options: --processes 1,4,16 --warmup-s 10 --window-s 10 --redis-url <url> (else a private
 * redis-server).
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { MonitorSampler, commandStats, diff, scriptNames, sum } from './redis-stats.js';
import { startLatchkey } from './systems.js';

const { values } = parseArgs({
  options: {
    processes: { type: 'string', default: '1,4,16' },
    'warmup-s': { type: 'string', default: '10' },
    'window-s': { type: 'string', default: '10' },
    'redis-url': { type: 'string' },
  },
});
const WARMUP_MS = Number(values['warmup-s']) * 1000;
const WINDOW_MS = Number(values['window-s']) * 1000;

interface Row {
  processes: number;
  /** Commands clients sent per second, and the top ones (scripts by name). */
  topLevelPerS: number;
  top: [string, number][];
  /** Every command Redis ran per second (inside scripts too). */
  allPerS: number;
}

const perS = (n: number, ms: number): number => Math.round((n / ms) * 1000 * 10) / 10;

let local: LocalRedis | undefined;
const redisUrl = values['redis-url'] ?? (local = await startLocalRedis({})).url;
const admin = new Redis(redisUrl);
const names = scriptNames();
const rows: Row[] = [];
try {
  for (const n of values.processes.split(',').map(Number)) {
    const sys = await startLatchkey({
      redisUrl,
      prefix: `bg${n}x${Date.now().toString(36)}`,
      processes: n,
      split: true,
      storeOptions: {},
    });
    try {
      await sleep(WARMUP_MS);
      const before = await commandStats(admin);
      const mon = await MonitorSampler.start(admin, names);
      const t0 = performance.now();
      await sleep(WINDOW_MS);
      const seen = mon.stop();
      const ms = performance.now() - t0;
      const all = diff(await commandStats(admin), before);
      all.delete('monitor');
      const top = [...seen.top]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([c, k]) => [c, perS(k, seen.ms)] as [string, number]);
      rows.push({
        processes: n,
        topLevelPerS: perS(sum(seen.top), seen.ms),
        top,
        allPerS: perS(sum(all), ms),
      });
      const r = rows.at(-1)!;
      console.log(
        `${n} idle worker process(es): ${r.topLevelPerS} commands/s sent, ${r.allPerS} commands/s run ` +
          `(inside scripts too)\n  ${r.top.map(([c, k]) => `${c} ${k}`).join(', ')}`,
      );
    } finally {
      await sys.stop();
    }
  }
  console.log(
    `\n${JSON.stringify({ warmupS: WARMUP_MS / 1000, windowS: WINDOW_MS / 1000, rows })}`,
  );
} finally {
  admin.disconnect();
  await local?.stop();
}
