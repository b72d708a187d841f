/**
 * What WebSocket subscriptions cost Redis: thousands of subscriptions on in-flight workflows
 * (suspended, waiting for a durable promise), idle and while their runs move on.
 *
 *   node bench/dist/subscribe.js [--subscriptions 3300] [--per-socket 100] [--window 10] [--releases 200] [--settle 1]
 *
 * Prints Redis commands per second (INFO commandstats, everything Redis ran, scripts' commands
 * included) idle without subscriptions and idle with them, and the commands the subscriptions
 * add per status change when runs move on: the same number of runs released without and with
 * subscribers, the difference divided by the status changes of the subscribed runs (heard on the
 * events channel). Uses REDIS_URL, else a private redis-server.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { connect, type LatchkeyClient } from '@latchkey/client';
import {
  handlers,
  serve,
  workflow,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';
import { Keys } from '@latchkey/redis-store';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { commandStats, diff, sum } from './redis-stats.js';

const { values: args } = parseArgs({
  options: {
    subscriptions: { type: 'string', default: '3300' },
    'per-socket': { type: 'string', default: '100' },
    window: { type: 'string', default: '10' },
    releases: { type: 'string', default: '200' },
    settle: { type: 'string', default: '1' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'node bench/dist/subscribe.js [--subscriptions 3300] [--per-socket 100] [--window 10 (s)] [--releases 200] [--settle 1 (s)]',
  );
  process.exit(0);
}
const N = Number(args.subscriptions);
const PER_SOCKET = Number(args['per-socket']);
const WINDOW_MS = Number(args.window) * 1000;
const RELEASES = Number(args.releases);
/** Wait after subscribing before the idle window (90 s or more: the safety re-reads are in it). */
const SETTLE_MS = Number(args.settle) * 1000;

/** A run that commits a step, waits for its `go` promise (suspended), then commits another. */
const gate = workflow({
  name: 'gate',
  handlers: {
    run: async (ctx: WorkflowContext) => {
      await ctx.run('a', () => 'a');
      const go = await ctx.promise<string>('go').get();
      await ctx.run('b', () => 'b');
      return go;
    },
    release: handlers.workflow.shared(async (ctx: WorkflowSharedContext) => {
      await ctx.promise<string>('go').resolve('go');
    }),
  },
});

let local: LocalRedis | undefined;
let url = process.env['REDIS_URL'];
if (!url) {
  local = await startLocalRedis();
  url = local.url;
}
const prefix = `lksub-${randomBytes(4).toString('hex')}`;
const server = await serve({
  services: [gate],
  redis: url,
  port: 0,
  host: '127.0.0.1',
  handleSignals: false,
  inactivityTimeout: 0,
  storeOptions: { prefix },
  logger: { ...console, log: () => undefined, info: () => undefined, warn: () => undefined },
});
const admin = new Redis(url);
const clients: LatchkeyClient[] = [];

/** Runs `fn` over `items`, `width` at a time. */
async function pool<T>(items: T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function post(path: string): Promise<void> {
  const r = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: 'null',
  });
  if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  await r.arrayBuffer();
}

/** Redis commands per second over the window (everything Redis ran). */
async function rate(ms: number): Promise<number> {
  const before = await commandStats(admin);
  await sleep(ms);
  return (sum(diff(await commandStats(admin), before)) * 1000) / ms;
}

try {
  const stamp = Date.now().toString(36);
  const subscribed = Array.from({ length: N }, (_, i) => `s${stamp}-${i}`);
  const unsubscribed = Array.from({ length: RELEASES }, (_, i) => `u${stamp}-${i}`);
  const all = [...subscribed, ...unsubscribed];
  console.log(`starting ${all.length.toLocaleString('en-US')} runs…`);
  await pool(all, 64, (k) => post(`/gate/${k}/run/send`));
  const ids = new Map<string, string>();
  await pool(all, 64, async (k) => {
    for (;;) {
      const id = await server.store.lookup({ workflow: 'gate', key: k });
      const info = id ? await server.store.describe(id) : undefined;
      if (id && info?.status === 'suspended') {
        ids.set(k, id);
        return;
      }
      await sleep(100);
    }
  });
  await sleep(1000);
  const idle = await rate(WINDOW_MS);

  console.log(
    `subscribing ${N.toLocaleString('en-US')} times over ${Math.ceil(N / PER_SOCKET)} sockets…`,
  );
  const heard = new Set<string>();
  for (let i = 0; i < N; i += PER_SOCKET) {
    const c = connect(`${server.url}/ws`);
    clients.push(c);
    for (const k of subscribed.slice(i, i + PER_SOCKET)) {
      const sub = c.subscribe({ workflow: 'gate', key: k });
      void (async () => {
        try {
          for await (const ev of sub) {
            if (ev.kind === 'status') heard.add(k);
          }
        } catch {
          // the benchmark closes the clients at the end
        }
      })();
    }
  }
  while (heard.size < N) await sleep(100);
  await sleep(SETTLE_MS);
  const idleSubscribed = await rate(WINDOW_MS);

  // Status changes of the released runs, as the scripts publish them.
  const listener = new Redis(url);
  const published = { status: 0, journal: 0 };
  const keys = new Keys(prefix);
  for (let p = 0; p < 16; p++) await listener.ssubscribe(keys.eventsChannel(p));
  listener.on('smessage', (_ch: string, msg: string) => {
    if (msg.startsWith('s\n')) published.status++;
    else published.journal++;
  });
  const release = async (keys: string[]): Promise<number> => {
    const before = await commandStats(admin);
    await pool(keys, 32, (k) => post(`/gate/${k}/release`));
    await pool(keys, 32, async (k) => {
      const id = ids.get(k)!;
      await server.store.awaitOutcome(id);
    });
    await sleep(500);
    return sum(diff(await commandStats(admin), before));
  };
  const withoutSubscribers = await release(unsubscribed);
  const publishedBefore = published.status;
  const withSubscribers = await release(subscribed.slice(0, RELEASES));
  const changes = published.status - publishedBefore;
  listener.disconnect();

  const f = (x: number): string => x.toLocaleString('en-US', { maximumFractionDigits: 1 });
  console.log('');
  console.log(`subscriptions: ${f(N)} (${clients.length} sockets), window ${WINDOW_MS / 1000} s`);
  console.log(`idle, no subscriptions:        ${f(idle)} Redis commands/s`);
  console.log(
    `idle, ${f(N)} subscriptions:    ${f(idleSubscribed)} Redis commands/s (${f(idleSubscribed - idle)}/s for the subscriptions)`,
  );
  if (SETTLE_MS < 90_000)
    console.log(
      `  (the safety re-reads start 30 to 90 s after subscribing: with --settle 90 they are in the window; 2 commands per subscription per 60 s on average = ${f((N * 2) / 60)}/s)`,
    );
  console.log(
    `${RELEASES} runs released without subscribers: ${f(withoutSubscribers)} commands (${f(withoutSubscribers / RELEASES)} per run)`,
  );
  console.log(
    `${RELEASES} runs released with subscribers:    ${f(withSubscribers)} commands (${f(withSubscribers / RELEASES)} per run)`,
  );
  console.log(
    `per status change (${f(changes)} published): ${f((withSubscribers - withoutSubscribers) / Math.max(1, changes))} more commands`,
  );
  console.log(
    'before (a poll per subscription every 200 ms, issue 16): 4,500 commands/s for 3,300 idle subscriptions',
  );
} finally {
  await Promise.all(clients.map((c) => c.close()));
  await server.close();
  admin.disconnect();
  await local?.stop();
}
