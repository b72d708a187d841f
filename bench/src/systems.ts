/**
 * Starting and stopping the systems under test, each in processes of its own
 * (so that each one's CPU can be read from /proc): Latchkey (`serve()`
 * processes), the real Restate server with an SDK endpoint, and a raw BullMQ
 * worker. Everything listens on 127.0.0.1 only.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '@latchkey/redis-store/testing';

/** A process of a system under test. */
export interface Proc {
  /** e.g. `latchkey`, `latchkey#2`, `restate-server`, `restate-endpoint`, `bullmq-worker`. */
  readonly name: string;
  readonly pid: number | undefined;
}

/** A started system: its processes and how to stop them. */
export interface System {
  readonly procs: Proc[];
  stop(): Promise<void>;
}

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

/** Waits for a child's exit, up to `ms`; true when it exited. */
function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(t);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after `graceMs`. */
async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (!(await exited(child, graceMs))) {
    child.kill('SIGKILL');
    await exited(child, 5000);
  }
}

/**
 * Forks a Node script with IPC and waits for its `{ ready: true, ... }`
 * message. Its stdout/stderr go to the harness's stderr, prefixed.
 */
export async function forkReady<M extends { ready: true }>(
  name: string,
  script: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
  execArgv: string[] = [],
): Promise<{ child: ChildProcess; msg: M }> {
  const child = fork(script, [], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    execArgv,
  });
  const prefix = (s: string): string =>
    s
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => `[${name}] ${l}\n`)
      .join('');
  child.stdout?.on('data', (d: Buffer) => process.stderr.write(prefix(d.toString())));
  child.stderr?.on('data', (d: Buffer) => process.stderr.write(prefix(d.toString())));
  try {
    const msg = await new Promise<M>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`${name} did not start within ${timeoutMs} ms`)),
        timeoutMs,
      );
      child.once('message', (m: M) => {
        clearTimeout(t);
        resolve(m);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(t);
        reject(new Error(`${name} exited during start-up (code ${code}, signal ${signal})`));
      });
    });
    return { child, msg };
  } catch (e) {
    await terminate(child, 2000);
    throw e;
  }
}

/**
 * Latchkey: `n` processes, each running workers and an ingress; or, `split`, one ingress process
 * without workers and `n` worker processes without an ingress.
 */
export interface LatchkeySystem extends System {
  /** Ingress base URLs, one per process with an ingress. */
  readonly urls: string[];
  /** The processes themselves, in the order of `procs` (for IPC: `latchkey-server.ts`). */
  readonly children: ChildProcess[];
}

export async function startLatchkey(opts: {
  redisUrl: string;
  prefix: string;
  processes: number;
  /** One ingress-only process plus `processes` worker-only ones. */
  split?: boolean;
  storeOptions: Record<string, unknown>;
  /** Write a CPU profile of each process into this directory. */
  cpuProfDir?: string | undefined;
  /** More environment for the processes (e.g. LK_TRACING, see `latchkey-server.ts`). */
  env?: Record<string, string>;
}): Promise<LatchkeySystem> {
  const children: ChildProcess[] = [];
  const procs: Proc[] = [];
  const urls: string[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => terminate(c, 10_000)));
  };
  // Split: the workers first, so that the ingress's first invocations find someone to run them.
  const roles: { name: string; role: 'all' | 'ingress' | 'worker' }[] = opts.split
    ? [
        ...Array.from({ length: opts.processes }, (_, i) => ({
          name: `latchkey-worker#${i + 1}`,
          role: 'worker' as const,
        })),
        { name: 'latchkey-ingress', role: 'ingress' },
      ]
    : Array.from({ length: opts.processes }, (_, i) => ({
        name: i === 0 ? 'latchkey' : `latchkey#${i + 1}`,
        role: 'all' as const,
      }));
  try {
    for (const { name, role } of roles) {
      const { child, msg } = await forkReady<{ ready: true; url: string }>(
        name,
        here('./latchkey-server.js'),
        {
          LK_REDIS_URL: opts.redisUrl,
          LK_PREFIX: opts.prefix,
          LK_STORE_OPTIONS: JSON.stringify(opts.storeOptions),
          LK_ROLE: role,
          ...opts.env,
        },
        60_000,
        opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [],
      );
      children.push(child);
      procs.push({ name, pid: child.pid });
      if (msg.url !== '') urls.push(msg.url);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { procs, urls, children, stop };
}

/** The raw BullMQ baseline: one worker process with a no-op processor. */
export interface BullmqSystem extends System {
  readonly queue: string;
  readonly prefix: string;
}

export async function startBullmq(opts: {
  redisUrl: string;
  prefix: string;
  concurrency: number;
}): Promise<BullmqSystem> {
  const queue = 'bench';
  const { child } = await forkReady('bullmq-worker', here('./bullmq-worker.js'), {
    BQ_REDIS_URL: opts.redisUrl,
    BQ_PREFIX: opts.prefix,
    BQ_QUEUE: queue,
    BQ_CONCURRENCY: String(opts.concurrency),
  });
  return {
    queue,
    prefix: opts.prefix,
    procs: [{ name: 'bullmq-worker', pid: child.pid }],
    stop: () => terminate(child, 10_000),
  };
}

/** The Restate server (from `@restatedev/restate-server`) and the SDK endpoint serving the bench services. */
export interface RestateSystem extends System {
  /** Ingress base URL. */
  readonly url: string;
  readonly adminUrl: string;
  readonly version: string;
  /** Invoke requests the SDK endpoint received so far. */
  invokes(): Promise<number>;
}

/** Asks a child started by `forkReady` for its `{ count }` of invoke requests. */
export function askCount(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no count from the endpoint')), 10_000);
    const on = (m: { count?: number }): void => {
      if (typeof m.count !== 'number') return;
      clearTimeout(t);
      child.off('message', on);
      resolve(m.count);
    };
    child.on('message', on);
    child.send({ count: true });
  });
}

/** The Restate server version the benchmark compares against. */
export const RESTATE_SERVER_VERSION = '~1.7.12';

/**
 * The restate-server binary shipped in the npm package for this platform. The
 * package (a ~225 MB binary) is not a dependency, so `npm ci` and CI stay lean:
 * the first benchmark run installs it without touching package.json or the lockfile.
 */
export function restateServerBinary(): string {
  const req = createRequire(import.meta.url);
  const pkg = `@restatedev/restate-server-${process.platform}-${process.arch}`;
  const resolve = (): string => req.resolve(`${pkg}/bin/restate-server`);
  try {
    return resolve();
  } catch {
    process.stderr.write(
      `installing @restatedev/restate-server@${RESTATE_SERVER_VERSION} for the comparison (not saved)...\n`,
    );
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const r = spawnSync(
      'npm',
      [
        'install',
        '--no-save',
        '--no-audit',
        '--no-fund',
        `@restatedev/restate-server@${RESTATE_SERVER_VERSION}`,
      ],
      {
        cwd: root,
        stdio: 'inherit',
      },
    );
    if (r.status !== 0)
      throw new Error(`could not install @restatedev/restate-server (npm exited ${r.status})`);
    try {
      createRequire(import.meta.url)(`${pkg}/package.json`);
      return resolve();
    } catch {
      throw new Error(`${pkg} is still not installed after npm install`);
    }
  }
}

async function httpOk(url: string, init?: RequestInit): Promise<Response | undefined> {
  try {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
    return r;
  } catch {
    return undefined;
  }
}

export async function startRestate(opts: {
  binary?: string;
  logLevel?: string;
  /** The endpoint on HTTP/1.1, in request-response mode (as on Lambda). */
  http1?: boolean;
}): Promise<RestateSystem> {
  const binary = opts.binary ?? restateServerBinary();
  const dir = mkdtempSync(join(tmpdir(), 'lkbench-restate-'));
  const logFile = join(dir, 'restate-server.log');
  const [ingressPort, adminPort, nodePort] = [await freePort(), await freePort(), await freePort()];
  const log = openSync(logFile, 'a');
  const server = spawn(
    binary,
    ['--no-logo', '--base-dir', dir, '--listen-mode', 'tcp', '--node-name', 'bench'],
    {
      cwd: dir,
      stdio: ['ignore', log, log],
      env: {
        ...process.env,
        RESTATE_INGRESS__BIND_ADDRESS: `127.0.0.1:${ingressPort}`,
        RESTATE_ADMIN__BIND_ADDRESS: `127.0.0.1:${adminPort}`,
        RESTATE_BIND_ADDRESS: `127.0.0.1:${nodePort}`,
        RESTATE_ADVERTISED_ADDRESS: `http://127.0.0.1:${nodePort}/`,
        RESTATE_LOG_FILTER: opts.logLevel ?? 'warn',
        RESTATE_LOG_DISABLE_ANSI_CODES: 'true',
      },
    },
  );
  closeSync(log);
  let endpoint: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (endpoint) await terminate(endpoint, 5000);
    await terminate(server, 20_000);
    rmSync(dir, { recursive: true, force: true });
  };
  const tail = (): string => {
    try {
      return readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '';
    }
  };
  const url = `http://127.0.0.1:${ingressPort}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  try {
    // Up: admin and ingress answer.
    const deadline = Date.now() + 60_000;
    let version = '?';
    for (;;) {
      if (server.exitCode !== null || server.signalCode !== null)
        throw new Error(`restate-server exited (code ${server.exitCode})`);
      const v = await httpOk(`${adminUrl}/version`);
      const h = await httpOk(`${url}/restate/health`);
      if (v?.ok && h?.ok) {
        version = ((await v.json()) as { version?: string }).version ?? '?';
        break;
      }
      if (Date.now() > deadline) throw new Error('restate-server did not become ready within 60 s');
      await sleep(200);
    }
    // The SDK endpoint, registered as a deployment.
    const started = await forkReady<{ ready: true; port: number }>(
      'restate-endpoint',
      here('./restate-endpoint.js'),
      {
        RESTATE_LOGGING: 'WARN',
        ...(opts.http1 ? { BENCH_HTTP1: '1' } : {}),
        // Should the harness die without stopping it, the endpoint stops the server.
        ...(server.pid !== undefined ? { BENCH_RESTATE_SERVER_PID: String(server.pid) } : {}),
      },
    );
    endpoint = started.child;
    const reg = await fetch(`${adminUrl}/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        uri: `http://127.0.0.1:${started.msg.port}`,
        ...(opts.http1 ? { use_http_11: true } : {}),
      }),
    });
    if (!reg.ok)
      throw new Error(`registering the endpoint failed: HTTP ${reg.status} ${await reg.text()}`);
    await reg.body?.cancel();
    // Until the ingress knows the services: a no-op call succeeds.
    for (;;) {
      const r = await httpOk(`${url}/bench/noop`, { method: 'POST' });
      await r?.body?.cancel();
      if (r?.ok) break;
      if (Date.now() > deadline + 30_000)
        throw new Error(`the Restate ingress does not serve bench/noop (last HTTP ${r?.status})`);
      await sleep(200);
    }
    return {
      url,
      adminUrl,
      version,
      procs: [
        { name: 'restate-server', pid: server.pid },
        { name: 'restate-endpoint', pid: endpoint.pid },
      ],
      invokes: () => askCount(started.child),
      stop,
    };
  } catch (e) {
    const t = tail();
    await stop();
    throw new Error(`${(e as Error).message}${t ? `\nrestate-server log (tail):\n${t}` : ''}`, {
      cause: e,
    });
  }
}
