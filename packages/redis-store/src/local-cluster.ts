import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ensureRedisServer, spawnRedisServer, waitReady } from './local-redis.js';

/** Options of {@link startLocalCluster}. */
export interface LocalClusterOptions {
  /** Masters (each serving an equal share of the 16384 slots); default 3, at least 3. */
  masters?: number;
  /** Replicas of each master; default 0. */
  replicasPerMaster?: number;
  /**
   * `cluster-node-timeout` in ms: how long a node may be unreachable before it counts as failed
   * and a replica takes over; default 1000 (Redis' own default, 15 s, would make failover tests slow).
   */
  nodeTimeoutMs?: number;
  /** AOF fsync policy of every node; default `everysec`. */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** Print the nodes' and redis-cli's output. */
  verbose?: boolean;
}

/** A private Redis Cluster started by {@link startLocalCluster}. */
export interface LocalCluster {
  /** Every node as `host:port`: the masters first (in slot order), then the replicas. */
  readonly nodes: readonly string[];
  /** The masters as `host:port`, in slot order (the first serves slot 0). */
  readonly masters: readonly string[];
  /** The replicas as `host:port` (the i-th `replicasPerMaster` of them replicate `masters[i]`). */
  readonly replicas: readonly string[];
  /** The redis-server process id of a node (undefined once it has stopped). */
  pid(node: string): number | undefined;
  /** SIGKILLs one node (for failover tests); resolves once it has exited. Its data stays. */
  kill(node: string): Promise<void>;
  /**
   * Starts a killed node again on its port and data (SIGKILLing it first if it still runs): it
   * rejoins the cluster with its old identity, as a replica of whoever took its slots over.
   */
  restart(node: string): Promise<void>;
  /** Stops every node and removes their temporary data directories. */
  stop(): Promise<void>;
}

interface Node {
  readonly addr: string;
  readonly port: number;
  readonly dir: string;
  readonly args: string[];
  proc: ChildProcess;
}

/** Whether `port` on 127.0.0.1 can be bound right now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A port for a cluster node: a node also binds its bus port, `port + 10000`, and refuses a port
 * above 55535. The port is drawn from 10000–22767, so it and its bus port (20000–32767) lie below
 * Linux's default ephemeral range (where outgoing connections take theirs); both must be free now.
 * `taken` are ports this cluster already uses.
 */
async function freeClusterPort(taken: ReadonlySet<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 10_000 + Math.floor(Math.random() * 12_768);
    if (taken.has(port) || taken.has(port + 10_000) || taken.has(port - 10_000)) continue;
    if ((await canListen(port)) && (await canListen(port + 10_000))) return port;
  }
  throw new Error('startLocalCluster: found no free port pair (port and port + 10000)');
}

/** `CLUSTER NODES`' line of one node: id, address, flags, master id and served slots. */
interface NodeLine {
  id: string;
  addr: string;
  flags: string[];
  master: string;
  firstSlot: number;
}

function parseClusterNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const f = l.split(' ');
      const slots = f.slice(8).find((s) => /^\d/.test(s));
      return {
        id: f[0]!,
        addr: f[1]!.split('@')[0]!,
        flags: f[2]!.split(','),
        master: f[3]!,
        firstSlot: slots === undefined ? Infinity : Number(slots.split('-')[0]),
      };
    });
}

function exited(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

/** Most a node may take to exit on SIGTERM (saving its AOF) before it is SIGKILLed (ms). */
const STOP_GRACE_MS = 10_000;

async function stopProcess(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (exited(p)) return;
  await new Promise<void>((resolve) => {
    const late =
      signal === 'SIGKILL' ? undefined : setTimeout(() => p.kill('SIGKILL'), STOP_GRACE_MS);
    p.once('exit', () => {
      clearTimeout(late);
      resolve();
    });
    p.kill(signal);
  });
}

/** Runs `redis-cli` with `args`; rejects with its output when it fails. */
function redisCli(args: string[], verbose: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (d: Buffer): void => {
      out += d.toString();
      if (verbose) process.stderr.write(d);
    };
    p.stdout.on('data', take);
    p.stderr.on('data', take);
    p.once('error', reject);
    p.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`redis-cli ${args.join(' ')} failed: ${out}`)),
    );
  });
}

/**
 * Polls every node until the cluster is whole: each says `cluster_state:ok` with every slot served,
 * knows every other node and sees every replica as one (gossip can lag behind a replica's own
 * view), and each replica is in sync with its master.
 */
async function waitClusterOk(nodes: Node[], replicas: number, deadlineMs: number): Promise<void> {
  const clients = nodes.map((n) => {
    const r = new Redis(n.port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: true });
    r.on('error', () => undefined);
    return r;
  });
  const until = Date.now() + deadlineMs;
  try {
    for (;;) {
      const states = await Promise.all(
        clients.map(async (r) => {
          const info = await r.cluster('INFO');
          const seen = parseClusterNodes((await r.cluster('NODES')) as string);
          const ok =
            /cluster_state:ok/.test(info) &&
            /cluster_slots_ok:16384/.test(info) &&
            new RegExp(`cluster_known_nodes:${nodes.length}\\b`).test(info) &&
            seen.filter((l) => l.flags.includes('slave')).length === replicas;
          const repl = await r.info('replication');
          return {
            ok,
            info,
            slave: /role:slave/.test(repl),
            up: /master_link_status:up/.test(repl),
          };
        }),
      );
      const slaves = states.filter((s) => s.slave);
      if (states.every((s) => s.ok) && slaves.length === replicas && slaves.every((s) => s.up))
        return;
      if (Date.now() > until) {
        const seen = states.map((s) => s.info.split('\n').slice(0, 3).join(' ')).join(' | ');
        throw new Error(`the cluster did not become ready: ${seen}`);
      }
      await new Promise((res) => setTimeout(res, 25));
    }
  } finally {
    for (const r of clients) r.disconnect();
  }
}

/**
 * Starts a private Redis Cluster on free loopback ports: `masters × (1 + replicasPerMaster)`
 * `redis-server --cluster-enabled yes` processes, each with its own temporary directory, AOF on
 * and `maxmemory-policy noeviction` (as {@link startLocalRedis}), joined with
 * `redis-cli --cluster create`. Resolves once every node reports `cluster_state:ok` with all
 * 16384 slots served and every replica is in sync: about 2.3 s, with or without replicas (measured
 * 2026-12, 2 cores; redis-server 7.0 keeps a new master's state `fail` for its first 2 s, so that
 * is the floor). Installs the
 * Debian package first when it is missing and the user is root. No node outlives this process:
 * they are stopped on exit, and by a watchdog each when this process is killed outright.
 *
 * @example
 * ```ts
 * const cluster = await startLocalCluster({ masters: 3 });
 * const store = createRedisStore({ cluster: [...cluster.masters] });
 * // ...
 * await cluster.stop();
 * ```
 */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const masters = options.masters ?? 3;
  const perMaster = options.replicasPerMaster ?? 0;
  if (!Number.isInteger(masters) || masters < 3)
    throw new Error('startLocalCluster: a Redis Cluster needs at least 3 masters');
  if (!Number.isInteger(perMaster) || perMaster < 0)
    throw new Error('startLocalCluster: replicasPerMaster must be a whole number ≥ 0');
  ensureRedisServer();
  const verbose = options.verbose ?? false;
  const nodes: Node[] = [];
  const onExit = (): void => {
    for (const n of nodes) n.proc.kill('SIGKILL');
  };
  process.once('exit', onExit);
  const stop = async (): Promise<void> => {
    process.off('exit', onExit);
    await Promise.all(nodes.map((n) => stopProcess(n.proc, 'SIGTERM')));
    for (const n of nodes) rmSync(n.dir, { recursive: true, force: true });
  };

  try {
    const count = masters * (1 + perMaster);
    const taken = new Set<number>();
    const startNode = async (): Promise<void> => {
      // Another process may bind a port between our check and redis-server's bind; a node that
      // exits at startup is started again on another port.
      for (let attempt = 1; ; attempt++) {
        const port = await freeClusterPort(taken);
        taken.add(port);
        const dir = mkdtempSync(join(tmpdir(), 'latchkey-cluster-'));
        const args = [
          ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
          ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
          ...['--cluster-node-timeout', String(options.nodeTimeoutMs ?? 1000)],
          ...['--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'everysec'],
          ...['--save', '', '--maxmemory-policy', 'noeviction', '--daemonize', 'no'],
          ...['--protected-mode', 'yes', '--loglevel', 'warning'],
          // A replica's first sync starts at once, not after the default 5 s wait for more replicas.
          ...['--repl-diskless-sync-delay', '0'],
        ];
        const proc = spawnRedisServer(args, dir, verbose);
        const n: Node = { addr: `127.0.0.1:${port}`, port, dir, args, proc };
        nodes.push(n);
        try {
          await waitReady(`redis://${n.addr}`, proc, 20_000);
          return;
        } catch (e) {
          if (!exited(proc) || attempt >= 5) throw e;
          nodes.splice(nodes.indexOf(n), 1);
          rmSync(dir, { recursive: true, force: true });
        }
      }
    };
    for (let i = 0; i < count; i++) await startNode();
    const addrs = nodes.map((n) => n.addr);
    await redisCli(
      ['--cluster', 'create', ...addrs, '--cluster-replicas', String(perMaster), '--cluster-yes'],
      verbose,
    );
    await waitClusterOk(nodes, masters * perMaster, 30_000);

    // Roles as the cluster assigned them: masters in slot order, then the replicas in their
    // masters' order.
    const probe = new Redis(nodes[0]!.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    let lines: NodeLine[];
    try {
      lines = parseClusterNodes((await probe.cluster('NODES')) as string);
    } finally {
      probe.disconnect();
    }
    const masterLines = lines
      .filter((l) => l.flags.includes('master'))
      .sort((a, b) => a.firstSlot - b.firstSlot);
    const replicaLines = masterLines.flatMap((m) => lines.filter((l) => l.master === m.id));
    const byAddr = new Map(nodes.map((n) => [n.addr, n]));
    const node = (addr: string): Node => {
      const n = byAddr.get(addr);
      if (!n) throw new Error(`startLocalCluster: no node ${addr} in this cluster`);
      return n;
    };
    const masterAddrs = masterLines.map((l) => l.addr);
    const replicaAddrs = replicaLines.map((l) => l.addr);
    return {
      nodes: [...masterAddrs, ...replicaAddrs],
      masters: masterAddrs,
      replicas: replicaAddrs,
      pid: (addr) => {
        const p = node(addr).proc;
        return exited(p) ? undefined : p.pid;
      },
      kill: (addr) => stopProcess(node(addr).proc, 'SIGKILL'),
      restart: async (addr) => {
        const n = node(addr);
        await stopProcess(n.proc, 'SIGKILL');
        n.proc = spawnRedisServer(n.args, n.dir, verbose);
        await waitReady(`redis://${n.addr}`, n.proc, 20_000);
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
