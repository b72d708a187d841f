/**
 * Serves the signup workflow (workers + ingress on PORT, default 8080). Users
 * and emails go to SIGNUP_DIR (default ./signup-data). Uses REDIS_URL, or
 * starts a private redis-server.
 *
 *   node examples/signup/dist/server.js
 *   node examples/signup/dist/submit.js ada ada@example.com      # in another shell
 *   node examples/signup/dist/latch.js ada                       # and another: waits
 *   cat signup-data/outbox/ada.json                              # the link's secret
 *   curl -X POST localhost:8080/user-signup/ada/click -H 'content-type: application/json' -d '"<secret>"'
 */
import { serve } from '@latchkey/core';
import { startLocalRedis } from '@latchkey/redis-store';
import { fileDeps } from './file-deps.js';
import { userSignup } from './signup.js';

const dir = process.env['SIGNUP_DIR'] ?? 'signup-data';
const redis = process.env['REDIS_URL'] ? undefined : await startLocalRedis();
const server = await serve({
  services: [userSignup(fileDeps(dir))],
  redis: process.env['REDIS_URL'] ?? redis!.url,
  port: Number(process.env['PORT'] ?? 8080),
  handleSignals: false,
});
console.log(`signup workflow served on ${server.url}; data in ${dir}`);
const stop = (): void => void server.close().then(() => redis?.stop()).then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
