/**
 * The project's Redis as tests see it, a standalone server (`redis`, `redis-suspend`) or a Redis
 * Cluster (`redis-cluster`) alike, so the same files run on both:
 *
 * - `inject('redisTarget')` (test/setup/) is `{ url }` or `{ cluster: ['host:port', ...] }`, to
 *   spread into `createRedisStore({ ...redisTarget, prefix })`;
 * - {@link rawClient} opens an ioredis `Redis` or `Cluster` for a test's own reads and writes;
 * - {@link redisEnv} is a child process's environment (REDIS_URL or REDIS_CLUSTER_NODES);
 * - {@link scanKeys}, {@link deletePrefix} and {@link masterClients} look at every master, since
 *   on a cluster one connection sees only its own node's keys.
 */
import { once } from 'node:events';
import calculateSlot from 'cluster-key-slot';
import { inject } from 'vitest';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { openRedis, type RedisTarget } from '../fixtures/redis.mjs';

export type { RedisTarget };

/** A test's own connection: a `Redis` on a standalone server, a `Cluster` on a cluster. */
export type RawRedis = Redis | Cluster;

/** True when the target is a cluster. */
export function isCluster(target: RedisTarget): target is { cluster: string[] } {
  return target.cluster !== undefined;
}

/**
 * True on the `redis-cluster` pass. The only skip condition there, for files that never use the
 * project's Redis because they need a standalone server of their own (one they restart, reconfigure,
 * or that the CLI starts): on the cluster pass they would only repeat the `redis` pass.
 */
export const onClusterPass: boolean = isCluster(inject('redisTarget'));

/**
 * Opens a connection to the target: `new Redis(url, options)`, or a `Cluster` over the seed nodes
 * with `options` for each node connection (`lazyConnect` and `enableOfflineQueue` also apply to
 * the cluster as a whole). The same code serves the worker processes (test/fixtures/redis.mjs).
 */
export function rawClient(target: RedisTarget, options: RedisOptions = {}): RawRedis {
  return openRedis(target, options);
}

/**
 * `env` for a child process that reads the Redis to use from its environment: REDIS_URL for a
 * standalone server, REDIS_CLUSTER_NODES (`host:port,host:port`) for a cluster; the other one is
 * left out (an inherited value would otherwise win or conflict).
 */
export function redisEnv(
  target: RedisTarget,
  env: Record<string, string | undefined> = process.env,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && k !== 'REDIS_URL' && k !== 'REDIS_CLUSTER_NODES') out[k] = v;
  }
  if (isCluster(target)) out['REDIS_CLUSTER_NODES'] = target.cluster.join(',');
  else out['REDIS_URL'] = target.url;
  return out;
}

/**
 * A connection to each master (the connection itself on a standalone server), for commands that
 * concern one node's keyspace or server: SCAN, KEYS, DBSIZE, INFO, CONFIG, MONITOR, ECHO...
 */
export async function masterClients(redis: RawRedis): Promise<Redis[]> {
  if (!redis.isCluster) return [redis as Redis];
  const cluster = redis as Cluster;
  if (cluster.status === 'wait') await cluster.connect();
  else if (cluster.status !== 'ready') await once(cluster, 'ready');
  return cluster.nodes('master');
}

/**
 * The connection a key's commands are written to: `redis` itself, or on a cluster the connection
 * to the master serving the key's slot (for tests that look at a socket).
 */
export async function connectionFor(redis: RawRedis, key: string): Promise<Redis> {
  if (!redis.isCluster) return redis as Redis;
  const cluster = redis as Cluster;
  // A node's connection opens with its first command: send one for the key.
  await cluster.exists(key);
  const nodes = await masterClients(cluster);
  const [addr] = cluster.slots[calculateSlot(key)] ?? [];
  const node = nodes.find((n) => `${n.options.host}:${n.options.port}` === addr);
  if (!node) throw new Error(`no master known for ${key}`);
  return node;
}

/** Runs `fn` on each master's connection (see {@link masterClients}); its answers in master order. */
export async function onEveryMaster<T>(
  redis: RawRedis,
  fn: (node: Redis) => Promise<T>,
): Promise<T[]> {
  return Promise.all((await masterClients(redis)).map(fn));
}

/** Every key matching a glob `pattern` on every master (SCAN; each key once). */
export async function scanPattern(redis: RawRedis, pattern: string): Promise<string[]> {
  const out = new Set<string>();
  for (const node of await masterClients(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) out.add(k);
    } while (cursor !== '0');
  }
  return [...out];
}

/** KEYS `pattern` on every master: exact, for the small keyspaces of a test prefix. */
export async function keysOnMasters(redis: RawRedis, pattern: string): Promise<string[]> {
  const nodes = await masterClients(redis);
  return (await Promise.all(nodes.map((n) => n.keys(pattern)))).flat();
}

/** Every key under a test prefix (`<prefix>:*`) on every master. */
export function scanKeys(redis: RawRedis, prefix: string): Promise<string[]> {
  return scanPattern(redis, `${prefix}:*`);
}

/**
 * Deletes every key under a prefix (the test's own keys only), node by node, one key per command
 * (on a cluster, a command's keys must share a slot).
 */
export async function deletePrefix(target: RedisTarget, prefix: string): Promise<void> {
  const r = rawClient(target);
  r.on('error', () => undefined);
  try {
    for (const node of await masterClients(r)) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await node.pipeline(keys.map((k) => ['unlink', k])).exec();
      } while (cursor !== '0');
    }
  } finally {
    r.disconnect();
  }
}
