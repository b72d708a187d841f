/**
 * Connections: one Redis server (`url`) or a Redis Cluster (`cluster` seed nodes), and the few
 * places where the two differ: a batch of commands on several partitions (one pipeline on a
 * server; on a cluster each partition is its own slot, so each command goes to its own node),
 * and the masters a start-up check must ask.
 */
import { Cluster, Redis, type ChainableCommander, type RedisOptions } from 'ioredis';
import { coalesceWrites } from './coalesce.js';
import { StoreError } from './errors.js';

/** Where the store's data lives: one Redis server, or a Redis Cluster by its seed nodes. */
export type RedisTarget = { url: string } | { cluster: { host: string; port: number }[] };

/**
 * The target of a store: `cluster` (seed nodes `host:port`), else `url`, else the environment:
 * `REDIS_URL`, else `REDIS_CLUSTER_NODES` (`host:port,host:port,…`).
 */
export function redisTarget(options: { url?: string; cluster?: readonly string[] }): RedisTarget {
  if (options.cluster !== undefined && options.url !== undefined)
    throw new StoreError('pass either `url` or `cluster`, not both', 'REDIS_NOT_CONFIGURED');
  if (options.cluster !== undefined) return { cluster: seedNodes(options.cluster, '`cluster`') };
  const url = options.url ?? (process.env['REDIS_URL'] || undefined);
  if (url !== undefined) return { url };
  const nodes = process.env['REDIS_CLUSTER_NODES'];
  if (nodes)
    return {
      cluster: seedNodes(
        nodes.split(',').map((s) => s.trim()),
        'REDIS_CLUSTER_NODES',
      ),
    };
  throw new StoreError(
    'no Redis configured: pass `url` or `cluster`, or set REDIS_URL or REDIS_CLUSTER_NODES',
    'REDIS_NOT_CONFIGURED',
  );
}

function seedNodes(nodes: readonly string[], what: string): { host: string; port: number }[] {
  const out = nodes
    .filter((n) => n !== '')
    .map((n) => {
      const m = /^(.+):(\d{1,5})$/.exec(n);
      const port = m ? Number(m[2]) : NaN;
      if (!m || port < 1 || port > 65535)
        throw new StoreError(`${what}: '${n}' is not host:port`, 'REDIS_NOT_CONFIGURED');
      return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
    });
  if (out.length === 0) throw new StoreError(`${what} names no seed node`, 'REDIS_NOT_CONFIGURED');
  return out;
}

/**
 * Opens a (lazy) connection to the target. A cluster connection is typed as `Redis`: every
 * command the store sends names its keys, so ioredis' `Cluster` routes it to the slot's master;
 * what only a single server has (its socket) the store reaches through {@link isCluster}.
 * `subscriber`: the connection for sharded pub/sub (on a cluster, one subscriber per master).
 * `coalesce`: the writes of one event-loop turn leave in one socket write (`coalesceWrites`).
 */
export function connect(
  target: RedisTarget,
  options: RedisOptions,
  subscriber = false,
  coalesce = false,
): Redis {
  if ('url' in target) {
    const redis = new Redis(target.url, options);
    return coalesce ? coalesceWrites(redis) : redis;
  }
  const cluster = new Cluster(target.cluster, {
    redisOptions: options,
    lazyConnect: options.lazyConnect ?? false,
    // Commands wait (instead of failing) while the cluster is down or a failover promotes a replica.
    enableOfflineQueue: true,
    clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    maxRedirections: 32,
    shardedSubscribers: subscriber,
    slotsRefreshTimeout: 2000,
  });
  // Each master's connection coalesces its own writes.
  if (coalesce) cluster.on('+node', (node: Redis) => coalesceWrites(node));
  return cluster as unknown as Redis;
}

/** True when the connection is a Redis Cluster's. */
export function isCluster(redis: Redis): boolean {
  return (redis as unknown) instanceof Cluster;
}

/** The connections of the masters (one for a single server): what start-up checks must ask. */
export function masters(redis: Redis): Redis[] {
  return isCluster(redis) ? (redis as unknown as Cluster).nodes('master') : [redis];
}

/**
 * A batch of commands on several partitions, answered as a pipeline answers (`[error, reply]`
 * per command, in order). On one server it is a pipeline. On a cluster a pipeline may not span
 * slots, so each command is sent on its own (ioredis routes it to its slot's master; they are
 * all in flight together).
 */
export function partitionBatch(redis: Redis): ChainableCommander {
  if (!isCluster(redis)) return redis.pipeline();
  const cluster = redis as unknown as Cluster;
  const calls: [string, unknown[]][] = [];
  const batch: ChainableCommander = new Proxy({} as ChainableCommander, {
    get(_, name) {
      if (name === 'exec')
        return () =>
          Promise.all(
            calls.map(([command, args]) => {
              const pipe = cluster.pipeline() as unknown as Record<
                string,
                (...a: unknown[]) => void
              >;
              pipe[command]!(...args);
              return (pipe as unknown as ChainableCommander)
                .exec()
                .then((r): [Error | null, unknown] => r?.[0] ?? [null, null]);
            }),
          );
      if (name === 'length') return calls.length;
      if (typeof name !== 'string' || name === 'then') return undefined;
      return (...args: unknown[]) => {
        calls.push([name, args]);
        return batch;
      };
    },
  });
  return batch;
}
