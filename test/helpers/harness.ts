/**
 * Test harness: unique key prefixes, in-process servers with short timings,
 * worker child processes that can be SIGKILLed at chosen points, HTTP helpers
 * and polling with deadlines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { serve, type AnyDefinition, type LatchkeyServer, type ServeOptions } from '@latchkey/core';
import { createRedisStore, type RedisStoreOptions } from '@latchkey/redis-store';
import { redisEnv, type RedisTarget } from './redis.js';

export { deletePrefix } from './redis.js';

/** Short lease/stall timings so crash recovery happens within a few seconds in tests. */
export const FAST_TIMINGS: RedisStoreOptions = {
  leaseMs: 2000,
  graceMs: 1500,
  reconcileIntervalMs: 250,
  lockDurationMs: 2000,
  stalledIntervalMs: 1000,
};

/** A fresh key prefix for one test. */
export function newPrefix(): string {
  return `t-${randomUUID().slice(0, 12)}`;
}

/** Starts workers + ingress in this process against the test Redis. */
export async function startServer(
  redisTarget: RedisTarget,
  prefix: string,
  services: AnyDefinition[],
  opts: {
    workers?: boolean;
    port?: number | false;
    store?: RedisStoreOptions;
    serve?: Partial<ServeOptions>;
  } = {},
): Promise<LatchkeyServer> {
  const store = createRedisStore({
    ...redisTarget,
    prefix,
    ...FAST_TIMINGS,
    ...opts.store,
    logger: quietLogger,
  });
  return serve({
    services,
    store,
    port: opts.port ?? 0,
    host: '127.0.0.1',
    handleSignals: false,
    ...(opts.workers === false ? { workers: false } : {}),
    logger: quietLogger,
    ...opts.serve,
  });
}

/** A logger that keeps test output readable (set LK_DEBUG=1 to see everything). */
export const quietLogger = process.env['LK_DEBUG']
  ? console
  : {
      ...console,
      log: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      debug: () => undefined,
    };

/** POSTs JSON and returns status, parsed body and headers. */
export async function post(
  base: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined
      ? {}
      : { body: typeof body === 'string' && headers['x-raw'] ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** GETs a path and returns status and parsed body. */
export async function get(base: string, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${base}${path}`);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed };
}

/** Polls `fn` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const WORKER_SCRIPT = fileURLToPath(new URL('../fixtures/worker.mjs', import.meta.url));

/** A worker process running the fixture services. */
export interface WorkerProcess {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Ingress port of the process (0 if it runs no ingress). */
  readonly port: number;
  /** Lines the process printed. */
  readonly output: string[];
  /** Resolves with the exit signal/code when the process has ended and its output was read. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Spawns `test/fixtures/worker.mjs` (workers for the fixture services, plus an
 * ingress when `ingress` is set). `fault` names a point where the process
 * SIGKILLs itself (see worker.mjs).
 */
export async function spawnWorker(
  redisTarget: RedisTarget,
  prefix: string,
  opts: {
    fault?: string;
    ingress?: boolean;
    env?: Record<string, string>;
    store?: RedisStoreOptions;
    /** The fixture to run instead of worker.mjs (e.g. `deployment.mjs`). */
    script?: string;
  } = {},
): Promise<WorkerProcess> {
  const env: Record<string, string> = {
    ...redisEnv(redisTarget),
    LK_PREFIX: prefix,
    LK_FAULT: opts.fault ?? '',
    LK_INGRESS: opts.ingress ? '1' : '',
    LK_STORE: JSON.stringify({ ...FAST_TIMINGS, ...opts.store }),
    ...opts.env,
  };
  const script = opts.script
    ? fileURLToPath(new URL(`../fixtures/${opts.script}`, import.meta.url))
    : WORKER_SCRIPT;
  const proc = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  // 'close', not 'exit': it comes once the process ended and its stdout/stderr were read to the end,
  // so a line printed just before a SIGKILL (a fault point's FAULT line) is in `output` by then.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('close', (code, signal) => resolve({ code, signal })),
  );
  let buf = '';
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        output.push(line);
        if (process.env['LK_DEBUG']) process.stderr.write(`[worker ${proc.pid}] ${line}\n`);
        const m = /^READY (\d+)$/.exec(line);
        if (m) resolve(Number(m[1]));
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (d: Buffer) => {
      output.push(d.toString());
      if (process.env['LK_DEBUG']) process.stderr.write(`[worker ${proc.pid} err] ${d.toString()}`);
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`worker exited before ready (${code ?? signal}): ${output.join('\n')}`)),
    );
  });
  return {
    proc,
    pid: proc.pid!,
    port,
    output,
    exited,
    kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
    },
  };
}
