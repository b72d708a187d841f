import type { TestProject } from 'vitest/node';
import { startLocalCluster, type LocalCluster } from '@latchkey/redis-store/testing';

/**
 * The `redis-cluster` project's Redis: REDIS_CLUSTER_NODES (`host:port,host:port`, seed nodes)
 * when set; otherwise a private 3-master Redis Cluster, stopped when the project is done.
 * Tests read the target with `inject('redisTarget')` (test/helpers/redis.ts).
 */
export async function setup(project: TestProject): Promise<() => Promise<void>> {
  let cluster: LocalCluster | undefined;
  let nodes = (process.env['REDIS_CLUSTER_NODES'] ?? '').split(',').filter(Boolean);
  if (nodes.length === 0) {
    cluster = await startLocalCluster({ masters: 3 });
    nodes = [...cluster.masters];
  }
  project.provide('redisTarget', { cluster: nodes });
  return async () => {
    await cluster?.stop();
  };
}
