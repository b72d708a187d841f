/**
 * startLocalCluster: a private Redis Cluster whose every slot is served as soon as it resolves,
 * whose replicas take over a SIGKILLed master (the failover tests rely on it), and which leaves
 * no redis-server and no data directory behind.
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startLocalCluster, type LocalCluster } from '@latchkey/redis-store/testing';
import { until } from './helpers/harness.js';
import { deletePrefix, masterClients, rawClient, scanKeys } from './helpers/redis.js';

/** The data directory of a redis-server process (it works in it). */
function dirOf(pid: number): string {
  return readlinkSync(`/proc/${pid}/cwd`);
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('startLocalCluster', () => {
  it('serves every slot from 3 masters, spreads a prefix over them, and stops cleanly', async ({
    onTestFinished,
  }) => {
    const cluster = await startLocalCluster({ masters: 3 });
    let stopped = false;
    onTestFinished(async () => {
      if (!stopped) await cluster.stop();
    });
    expect(cluster.masters).toHaveLength(3);
    expect(cluster.replicas).toEqual([]);
    expect(cluster.nodes).toEqual(cluster.masters);
    // A node binds port + 10000 too, and refuses a port above 55535: every port is taken below
    // Linux's ephemeral range, its bus port too (an ephemeral port failed CI once).
    for (const addr of cluster.nodes) expect(Number(addr.split(':')[1])).toBeLessThan(22_768);

    const target = { cluster: [...cluster.masters] };
    const redis = rawClient(target);
    onTestFinished(() => redis.disconnect());
    const nodes = await masterClients(redis);
    expect(nodes.map((n) => `${n.options.host}:${n.options.port}`).sort()).toEqual(
      [...cluster.masters].sort(),
    );
    const info = await nodes[0]!.cluster('INFO');
    expect(info).toMatch(/cluster_state:ok/);
    expect(info).toMatch(/cluster_slots_ok:16384/);

    // Keys of one prefix land on every master; the helpers see and delete all of them.
    const keys = Array.from({ length: 60 }, (_, i) => `t-local:{${i}}:k`);
    await Promise.all(keys.map((k) => redis.set(k, '1')));
    const sizes = await Promise.all(nodes.map((n) => n.dbsize()));
    expect(sizes.every((n) => n > 0)).toBe(true);
    expect((await scanKeys(redis, 't-local')).sort()).toEqual([...keys].sort());
    await deletePrefix(target, 't-local');
    expect(await scanKeys(redis, 't-local')).toEqual([]);

    const pids = cluster.nodes.map((n) => cluster.pid(n)!);
    const dirs = pids.map(dirOf);
    redis.disconnect();
    await cluster.stop();
    stopped = true;
    expect(pids.filter(alive)).toEqual([]);
    await until('the data directories to be removed', () => dirs.every((d) => !existsSync(d)));
  });

  it('with a replica per master, a SIGKILLed master is replaced and its keys stay readable', async ({
    onTestFinished,
  }) => {
    const cluster: LocalCluster = await startLocalCluster({ masters: 3, replicasPerMaster: 1 });
    onTestFinished(() => cluster.stop());
    expect(cluster.nodes).toHaveLength(6);
    expect(cluster.replicas).toHaveLength(3);

    const redis = rawClient({ cluster: [...cluster.nodes] }, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined);
    onTestFinished(() => redis.disconnect());
    // A key, written and replicated (WAIT on its master) before its master is SIGKILLed.
    const key = 't-failover:{a}';
    await redis.set(key, 'kept');
    const nodes = await masterClients(redis);
    const slot = Number(await nodes[0]!.cluster('KEYSLOT', key));
    const counts = await Promise.all(nodes.map((n) => n.cluster('COUNTKEYSINSLOT', slot)));
    const owner = nodes[counts.findIndex((c) => Number(c) === 1)]!;
    expect(await owner.wait(1, 5000)).toBe(1);
    const victim = `${owner.options.host}:${owner.options.port}`;
    expect(cluster.masters).toContain(victim);

    const killedAt = Date.now();
    await cluster.kill(victim);
    expect(cluster.pid(victim)).toBeUndefined();
    // The replica takes over within a few node timeouts (1 s each), with the key.
    expect(await until('a replica to serve the key', () => redis.get(key), 20_000)).toBe('kept');
    expect(Date.now() - killedAt).toBeLessThan(15_000);
  });
});
