/**
 * The load generator, run in a worker thread so that the clients have their
 * own event loop (as a separate client process would) and do not queue
 * behind the harness's bookkeeping on the main thread.
 *
 * It runs `concurrency` closed loops, each sending one request at a time
 * until the deadline, and reports every latency. Three transports:
 *
 * - `http`: Restate-style ingress requests (Latchkey's or Restate's: the
 *   same paths), one keep-alive connection per client, on undici (Node's own
 *   HTTP client library, which takes less CPU per request than `node:http`'s:
 *   the load generator shares the two cores with the systems it measures);
 * - `ws`: Latchkey's WebSocket ingress (`/ws`, docs/PROTOCOL.md) through
 *   Latchkey's own client (`@latchkey/client`), one client and socket per loop;
 * - `bullmq`: the raw BullMQ baseline: `queue.add` of a no-op job, then
 *   `job.waitUntilFinished` (QueueEvents), or `add` alone for sends.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parentPort } from 'node:worker_threads';
import { Queue, QueueEvents } from 'bullmq';
import { Client } from 'undici';
import { connect, type LatchkeyClient } from '@latchkey/client';
import { SLEEP_MS } from './bench-services.js';

export type ScenarioName = 'noop' | 'workflow' | 'counter' | 'hot' | 'send' | 'sleep';
export type Transport = 'http' | 'ws' | 'bullmq';

/** What the main thread asks for: a timed load. */
export interface LoadJob {
  kind: 'load';
  transport: Transport;
  /** Ingress base URLs (http/ws); client i uses bases[i % length]. */
  bases: string[];
  scenario: ScenarioName;
  concurrency: number;
  /** Stop starting new requests after this long (ms). */
  durationMs: number;
  /** Unique per job: workflow ids and counter keys are made from it. */
  tag: string;
  /** Number of counter keys (counter and send scenarios). */
  keys: number;
  /** For `bullmq`. */
  bullmq?: { redisUrl: string; queue: string; prefix: string };
  /**
   * For sends over http/ws: an HTTP ingress on which the closing `add(0)`
   * calls drain the keys (see {@link drainKeys}).
   */
  drainBase?: string;
  /** Per-request timeout (ms). */
  requestTimeoutMs: number;
}

/** What the main thread asks for: `add(0)` on each counter key, over HTTP; answers the sum of the counts. */
export interface CheckJob {
  kind: 'check';
  base: string;
  keys: string[];
  requestTimeoutMs: number;
}

/** What the worker answers to a {@link LoadJob}. */
export interface LoadResult {
  ok: number;
  errors: number;
  /** A few error descriptions (status and body, or the exception). */
  errorSamples: string[];
  /** From the first request sent to the last response received (ms). */
  elapsedMs: number;
  /** Latency of every successful request (ms). */
  latencies: Float64Array;
  /**
   * Sends only: how long after the window it took until every accepted send
   * had run (ms), and (http/ws) the sum of the counters then.
   */
  drain?: { ms: number; sum?: number; error?: string };
}

export interface CheckResult {
  sum: number;
  errors: string[];
}

/** The counter keys of a job. */
export function counterKeys(tag: string, scenario: ScenarioName, keys: number): string[] {
  if (scenario === 'hot') return [`${tag}-hot`];
  return Array.from({ length: keys }, (_, k) => `${tag}-k${k}`);
}

/** One request, transport-neutral. */
interface Req {
  service: string;
  handler: string;
  key?: string;
  input?: unknown;
  send?: boolean;
  /** The expected result (call) — `undefined` accepts null/none. */
  expect: (value: unknown) => boolean;
}

const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0;

function nth(job: LoadJob, n: number): Req {
  switch (job.scenario) {
    case 'noop':
      return { service: 'bench', handler: 'noop', expect: (v) => v === undefined || v === null };
    case 'workflow':
      return {
        service: 'threeSteps',
        key: `${job.tag}-${n}`,
        handler: 'run',
        expect: (v) => v === 6,
      };
    case 'sleep':
      return { service: 'sleeper', key: `${job.tag}-${n}`, handler: 'run', expect: (v) => v === 1 };
    case 'counter':
      return {
        service: 'counter',
        key: `${job.tag}-k${n % job.keys}`,
        handler: 'add',
        input: 1,
        expect: isCount,
      };
    case 'hot':
      return {
        service: 'counter',
        key: `${job.tag}-hot`,
        handler: 'add',
        input: 1,
        expect: isCount,
      };
    case 'send':
      return {
        service: 'counter',
        key: `${job.tag}-k${n % job.keys}`,
        handler: 'add',
        input: 1,
        send: true,
        expect: () => true,
      };
  }
}

// ---------------------------------------------------------------- HTTP

interface Reply {
  status: number;
  body: string;
}

/** One POST on a keep-alive connection; the whole reply body as text. */
async function post(
  client: Client,
  path: string,
  body: string | undefined,
  timeoutMs: number,
): Promise<Reply> {
  const res = await client.request({
    path,
    method: 'POST',
    headers:
      body === undefined ? { 'content-length': '0' } : { 'content-type': 'application/json' },
    ...(body !== undefined ? { body } : {}),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  return { status: res.statusCode, body: await res.body.text() };
}

const pathOf = (r: Req): string =>
  `/${encodeURIComponent(r.service)}/${r.key !== undefined ? `${encodeURIComponent(r.key)}/` : ''}${r.handler}${r.send ? '/send' : ''}`;

/** Checks an HTTP reply; returns an error description or undefined. */
function checkHttp(r: Req, reply: Reply): string | undefined {
  if (r.send) {
    if (reply.status !== 202 && reply.status !== 200)
      return `HTTP ${reply.status} ${reply.body.slice(0, 200)}`;
    return /invocationId/.test(reply.body)
      ? undefined
      : `no invocationId in ${reply.body.slice(0, 200)}`;
  }
  if (reply.status !== 200) return `HTTP ${reply.status} ${reply.body.slice(0, 200)}`;
  let v: unknown;
  try {
    v = reply.body === '' ? undefined : JSON.parse(reply.body);
  } catch {
    return `not JSON: ${reply.body.slice(0, 200)}`;
  }
  return r.expect(v) ? undefined : `unexpected result ${reply.body.slice(0, 200)}`;
}

/** `add(0)` on each key (exclusive, so it queues behind every earlier add of that key); the sum of the counts. */
export async function drainKeys(
  base: string,
  keys: string[],
  timeoutMs: number,
): Promise<CheckResult> {
  const clients: Client[] = [];
  let sum = 0;
  const errors: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    const client = new Client(base);
    clients.push(client);
    while (next < keys.length) {
      const key = keys[next++]!;
      const r: Req = {
        service: 'counter',
        key,
        handler: 'add',
        input: 0,
        expect: (v) => typeof v === 'number',
      };
      try {
        const reply = await post(client, pathOf(r), '0', timeoutMs);
        const err = checkHttp(r, reply);
        if (err) errors.push(`${key}: ${err}`);
        else sum += Number(JSON.parse(reply.body));
      } catch (e) {
        errors.push(`${key}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, keys.length) }, worker));
  await Promise.all(clients.map((c) => c.destroy()));
  return { sum, errors };
}

// ---------------------------------------------------------------- WebSocket

/**
 * Latchkey's own WebSocket client (`@latchkey/client`), one per closed loop, one socket each. It is
 * given the same work as the HTTP rows: no generated idempotency keys (the HTTP requests carry none,
 * and neither do Restate's) and no reconnection (a dropped socket is an error of the row).
 */
function openWs(base: string, timeoutMs: number): Promise<LatchkeyClient> {
  const client = connect(`${base}/ws`, {
    idempotencyKeys: false,
    reconnect: false,
    timeout: timeoutMs,
  });
  return client.ready().then(() => client);
}

/** One request through the client; an error description or undefined. */
async function requestWs(client: LatchkeyClient, r: Req): Promise<string | undefined> {
  const req = {
    service: r.service,
    handler: r.handler,
    ...(r.key !== undefined ? { key: r.key } : {}),
    ...(r.input !== undefined ? { input: r.input } : {}),
  };
  if (r.send) {
    const res = await client.send(req);
    return typeof res.invocationId === 'string'
      ? undefined
      : `no invocationId in ${JSON.stringify(res).slice(0, 200)}`;
  }
  const value = await client.call(req);
  return r.expect(value) ? undefined : `unexpected result ${JSON.stringify(value)}`;
}

// ---------------------------------------------------------------- the loops

type Sender = (client: number, r: Req) => Promise<string | undefined>;

async function closedLoops(job: LoadJob, send: Sender): Promise<Omit<LoadResult, 'drain'>> {
  const latencies: number[] = [];
  const errorSamples: string[] = [];
  let ok = 0;
  let errors = 0;
  let seq = 0;
  const start = performance.now();
  const deadline = start + job.durationMs;
  const loop = async (client: number): Promise<void> => {
    while (performance.now() < deadline) {
      const r = nth(job, seq++);
      const t0 = performance.now();
      let err: string | undefined;
      try {
        err = await send(client, r);
      } catch (e) {
        err = (e as Error).message;
      }
      const t1 = performance.now();
      if (err === undefined) {
        ok++;
        latencies.push(t1 - t0);
      } else {
        errors++;
        if (errorSamples.length < 5)
          errorSamples.push(
            `${r.service}/${r.key ?? ''}/${r.handler}${r.send ? '/send' : ''}: ${err}`,
          );
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, (_, i) => loop(i)));
  const elapsedMs = performance.now() - start;
  return { ok, errors, errorSamples, elapsedMs, latencies: Float64Array.from(latencies) };
}

async function runHttp(job: LoadJob): Promise<Omit<LoadResult, 'drain'>> {
  // One client per closed loop: one keep-alive connection each, fresh per job (no socket the
  // server closed while we were idle gets reused).
  const clients = Array.from(
    { length: job.concurrency },
    (_, i) => new Client(job.bases[i % job.bases.length]!, { pipelining: 1 }),
  );
  try {
    return await closedLoops(job, async (client, r) => {
      const reply = await post(
        clients[client]!,
        pathOf(r),
        r.input === undefined ? undefined : JSON.stringify(r.input),
        job.requestTimeoutMs,
      );
      return checkHttp(r, reply);
    });
  } finally {
    await Promise.all(clients.map((c) => c.destroy()));
  }
}

async function runWs(job: LoadJob): Promise<Omit<LoadResult, 'drain'>> {
  const clients = await Promise.all(
    Array.from({ length: job.concurrency }, (_, i) =>
      openWs(job.bases[i % job.bases.length]!, job.requestTimeoutMs),
    ),
  );
  try {
    return await closedLoops(job, (client, r) => requestWs(clients[client]!, r));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

function bullConnection(redisUrl: string): { host: string; port: number; password?: string } {
  const u = new URL(redisUrl);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

async function runBullmq(job: LoadJob): Promise<LoadResult> {
  const b = job.bullmq!;
  const connection = bullConnection(b.redisUrl);
  const queue = new Queue(b.queue, { connection, prefix: b.prefix });
  const events = new QueueEvents(b.queue, { connection, prefix: b.prefix });
  // waitUntilFinished adds listeners per job in flight (one per client).
  queue.setMaxListeners(0);
  events.setMaxListeners(0);
  await queue.waitUntilReady();
  await events.waitUntilReady();
  // The last 1000 completed jobs are kept, as a production queue would: each
  // completion trims one, a steady cost. (Age-based removal would make the first
  // completions of a row delete every job of earlier rows at once; immediate
  // removal races waitUntilFinished's "is it finished already?" check.)
  const jobOpts = { removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } };
  try {
    const res = await closedLoops(job, async (_client, r) => {
      if (r.send) {
        await queue.add('noop', {}, jobOpts);
        return undefined;
      }
      const added = await queue.add(
        'noop',
        {},
        job.scenario === 'sleep' ? { ...jobOpts, delay: SLEEP_MS } : jobOpts,
      );
      await added.waitUntilFinished(events, job.requestTimeoutMs);
      return undefined;
    });
    let drain: LoadResult['drain'];
    if (job.scenario === 'send') {
      // Until the worker has taken and finished every job.
      const t0 = performance.now();
      const deadline = t0 + 120_000;
      for (;;) {
        const c = await queue.getJobCounts(
          'waiting',
          'active',
          'delayed',
          'prioritized',
          'waiting-children',
        );
        const left = Object.values(c).reduce((a, x) => a + x, 0);
        if (left === 0) {
          drain = { ms: performance.now() - t0 };
          break;
        }
        if (performance.now() > deadline) {
          drain = { ms: performance.now() - t0, error: `${left} jobs still queued after 120 s` };
          break;
        }
        await sleep(20);
      }
    }
    return { ...res, ...(drain ? { drain } : {}) };
  } finally {
    await events.close();
    await queue.close();
  }
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  if (job.transport === 'bullmq') return runBullmq(job);
  const res = job.transport === 'ws' ? await runWs(job) : await runHttp(job);
  if (job.scenario !== 'send') return res;
  // Sends: the window ends when the last send is accepted; the work behind them
  // is done when an exclusive add(0) on every key (queued behind the earlier
  // adds of that key) has answered.
  const t0 = performance.now();
  const c = await drainKeys(
    job.drainBase ?? job.bases[0]!,
    counterKeys(job.tag, 'send', job.keys),
    300_000,
  );
  return {
    ...res,
    drain: {
      ms: performance.now() - t0,
      sum: c.sum,
      ...(c.errors.length > 0 ? { error: c.errors.slice(0, 3).join(' | ') } : {}),
    },
  };
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (job: LoadJob | CheckJob) => {
    if (job.kind === 'check') {
      drainKeys(job.base, job.keys, job.requestTimeoutMs).then(
        (res) => port.postMessage({ ok: true, res }),
        (e: unknown) => port.postMessage({ ok: false, error: String((e as Error)?.stack ?? e) }),
      );
      return;
    }
    runLoad(job).then(
      (res) => port.postMessage({ ok: true, res }, [res.latencies.buffer as ArrayBuffer]),
      (e: unknown) => port.postMessage({ ok: false, error: String((e as Error)?.stack ?? e) }),
    );
  });
}
