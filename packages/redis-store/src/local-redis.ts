import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** Options of {@link startLocalRedis}. */
export interface LocalRedisOptions {
  /** Port; a free loopback port when absent. */
  port?: number;
  /** AOF fsync policy; default `everysec`. */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** Data directory; a fresh temporary one when absent (removed on stop). */
  dir?: string;
  /** Print redis-server's output. */
  verbose?: boolean;
}

/** A private redis-server started by {@link startLocalRedis}. */
export interface LocalRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** The redis-server process id. */
  pid(): number | undefined;
  /** Stops the server (SIGTERM, or SIGKILL with `hard`), keeping its data directory. */
  kill(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and directory (AOF is replayed). */
  restart(): Promise<void>;
  /** Stops the server and removes a temporary data directory. */
  stop(): Promise<void>;
}

/** Finds a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Makes sure a Debian package is installed: when `present()` is false and we run as root,
 * installs `pkg` with apt-get (running `apt-get update` first if the install fails).
 * `hint` completes the error when it cannot.
 */
export function ensureDebianPackage(pkg: string, present: () => boolean, hint = ''): void {
  if (present()) return;
  if (process.getuid?.() !== 0)
    throw new Error(`${pkg} is not installed; install the ${pkg} package${hint}`);
  process.stderr.write(`${pkg} not found: installing the ${pkg} package with apt-get...\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-q', pkg], { stdio: 'inherit', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '-q', pkg], { stdio: 'inherit', env });
  }
  if (r.status !== 0 || !present()) throw new Error(`could not install ${pkg}`);
}

/**
 * Makes sure `redis-server` exists: when missing and running as root, installs
 * Debian's `redis-server` package with apt-get.
 */
export function ensureRedisServer(): void {
  ensureDebianPackage(
    'redis-server',
    () => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0,
    ' (or set REDIS_URL)',
  );
}

/**
 * Waits until the redis-server at `url` (spawned as `proc`) answers and has loaded its AOF.
 * @internal
 */
export async function waitReady(
  url: string,
  proc: ChildProcess,
  deadlineMs: number,
): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with code ${proc.exitCode}`);
    const r = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    r.on('error', () => undefined);
    try {
      await r.connect();
      // Ready only once the AOF is loaded.
      const info = await r.info('persistence');
      if (/loading:0/.test(info)) {
        r.disconnect();
        return;
      }
    } catch {
      // not yet
    }
    r.disconnect();
    if (Date.now() > until) throw new Error('redis-server did not become ready');
    await new Promise((res) => setTimeout(res, 50));
  }
}

/**
 * Keeps a child from outliving this process even when this process is SIGKILLed (no exit handler
 * runs then): a `sh` blocks reading a pipe from us, the kernel closes the pipe however we die, and
 * the watchdog then terminates the child (and removes its temporary directory).
 * `end()` retires the watchdog without touching either.
 */
function watchdog(pid: number, removeDir: string | undefined): { end(): void } {
  // Then, for a temporary data directory: wait for the child to go, and remove the directory.
  const script =
    'cat >/dev/null; kill -TERM "$0" 2>/dev/null; [ -n "$1" ] || exit 0; while kill -0 "$0" 2>/dev/null; do sleep 0.1; done; rm -rf "$1"';
  const w = spawn('sh', ['-c', script, String(pid), removeDir ?? ''], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  w.on('error', () => undefined);
  w.stdin?.on('error', () => undefined);
  // Neither the watchdog nor its pipe keeps this process's event loop alive.
  w.unref();
  (w.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return {
    end: () => {
      // The shell first (so it never gets to `kill`), then the pipe (so `cat` sees EOF and exits).
      w.kill('SIGKILL');
      w.stdin?.destroy();
    },
  };
}

/**
 * Spawns `redis-server` with `args` under a watchdog, so it never outlives this process (the
 * watchdog also removes `removeDir` after it, when given).
 * @internal
 */
export function spawnRedisServer(
  args: string[],
  removeDir: string | undefined,
  verbose = false,
): ChildProcess {
  const p = spawn('redis-server', args, { stdio: verbose ? 'inherit' : 'ignore' });
  if (p.pid !== undefined) {
    const dog = watchdog(p.pid, removeDir);
    p.once('exit', () => dog.end());
  }
  return p;
}

/**
 * Starts a private redis-server on a free loopback port with AOF on and
 * `maxmemory-policy noeviction`. Installs the Debian package first when it is
 * missing and the user is root. The server never outlives this process: it is
 * stopped on exit, and by a watchdog when this process is killed outright.
 */
export async function startLocalRedis(options: LocalRedisOptions = {}): Promise<LocalRedis> {
  ensureRedisServer();
  const port = options.port ?? (await freePort());
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'latchkey-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let proc: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      options.appendfsync ?? 'everysec',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
      '--loglevel',
      'warning',
    ];
    const p = spawnRedisServer(args, ownDir ? dir : undefined, options.verbose);
    proc = p;
    await waitReady(url, p, 20_000);
  };

  const kill = async (hard = false): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(hard ? 'SIGKILL' : 'SIGTERM');
    });
  };

  await launch();
  const onExit = (): void => {
    proc?.kill('SIGKILL');
  };
  process.once('exit', onExit);

  return {
    url,
    port,
    dir,
    pid: () => proc?.pid,
    kill,
    restart: async () => {
      await kill();
      await launch();
    },
    stop: async () => {
      process.off('exit', onExit);
      await kill();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
