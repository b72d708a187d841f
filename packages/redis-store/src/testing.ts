/**
 * Test and quickstart tooling, kept out of the main entry (`@latchkey/redis-store/testing`): a
 * private redis-server on a free port, a private Redis Cluster on free ports
 * (`startLocalCluster`), the apt-get based installers they may use, and seeding a store with many
 * invocations (`seedInvocations`, for load tests of the admin listing).
 *
 * @module
 */
export {
  startLocalRedis,
  ensureDebianPackage,
  ensureRedisServer,
  freePort,
} from './local-redis.js';
export type { LocalRedis, LocalRedisOptions } from './local-redis.js';
export { startLocalCluster } from './local-cluster.js';
export type { LocalCluster, LocalClusterOptions } from './local-cluster.js';
export { seedInvocations } from './seed.js';
export type { SeedOptions, SeedTarget } from './seed.js';
