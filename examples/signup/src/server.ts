/**
 * Serves the signup workflow the way a Restate program does: `endpoint().bind(...).listen(9080)`.
 * On Latchkey the handlers run in this process and the ingress answers on port 8080 (Restate's
 * ingress port; `LATCHKEY_PORT` changes it), so Restate's clients reach it unchanged. Redis comes
 * from REDIS_URL; without one, a private redis-server is started (for development: its data goes
 * with it). Users and emails go to SIGNUP_DIR (default ./signup-data).
 *
 *   node examples/signup/dist/server.js
 *   node examples/signup/dist/submit.js ada ada@example.com      # in another shell
 *   node examples/signup/dist/latch.js ada                       # and another: waits for the click
 *   cat signup-data/outbox/ada.json                              # the link's secret
 *   curl -X POST localhost:8080/user-signup/ada/click -H 'content-type: application/json' -d '{"secret":"<secret>"}'
 */
import * as restate from '@latchkey/core';
import { startLocalRedis } from '@latchkey/redis-store/testing';
import { fileDeps } from './file-deps.js';
import { userSignup } from './signup.js';

if (!process.env['REDIS_URL']) process.env['REDIS_URL'] = (await startLocalRedis()).url;
const dir = process.env['SIGNUP_DIR'] ?? 'signup-data';

const port = await restate
  .endpoint()
  .bind(userSignup(fileDeps(dir)))
  .listen(9080);
console.log(`signup workflow served; ingress on http://127.0.0.1:${port}; data in ${dir}`);
