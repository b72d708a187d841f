/**
 * Test and quickstart tooling, kept out of the main entry (`@latchkey/redis-store/testing`): a
 * private redis-server on a free port, and the apt-get based installers it may use.
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
