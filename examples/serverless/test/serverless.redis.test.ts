/**
 * The saga on a push deployment, end to end: the function (dist/local-function.js, serving
 * function.ts's fetch handler) runs as a separate Node process with no store; an engine in this
 * process with no services of its own registers it, takes the calls on its ingress and pushes
 * every step to it, against the real Redis. Observed:
 * - a subscription completes with its output, the provider's account holding what it created;
 * - a failing one answers the original `TerminalError`, and its compensations ran in reverse
 *   order, each once (the provider's log), the journal holding every step in that order;
 * - with the engine's public key, the function runs what the engine signed and refuses the rest;
 * - the Lambda handler and the fetch handler of the same file answer discovery in process.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, inject, it, type ExpectStatic } from 'vitest';
import { serve, type Entry, type LatchkeyServer } from '@latchkey/core';
import { createRedisStore } from '@latchkey/redis-store';
import { freePort } from '@latchkey/redis-store/testing';
import fetchHandler, { handler as lambdaHandler } from '../src/function.js';
import type { Account } from '../src/saga.js';
import { deletePrefix, newPrefix, post, quietLogger } from '../../../test/helpers/harness.js';

const redisTarget = inject('redisTarget');
const FUNCTION = fileURLToPath(new URL('../dist/local-function.js', import.meta.url));
const READY_MS = 30_000;

interface Env {
  fn: string;
  engine: LatchkeyServer;
  expect: ExpectStatic;
}

/**
 * Spawns the function process on a free port (`env`: more of its environment) and waits for its
 * "listening" line; SIGKILLed when the test ends. Returns its URL.
 */
async function spawnFunction(
  onTestFinished: (fn: () => void) => void,
  env: Record<string, string> = {},
): Promise<string> {
  const port = await freePort();
  const proc = spawn(process.execPath, [FUNCTION], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(() => void proc.kill('SIGKILL'));
  let output = '';
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${output}`)), READY_MS);
    const read = (d: Buffer): void => {
      output += d.toString();
      const m = /^function listening on (http:\/\/\S+)$/m.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout.on('data', read);
    proc.stderr.on('data', read);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the function exited (${code ?? signal}): ${output}`));
    });
  });
}

/** The function process and an engine registering it, on a fresh key prefix. */
async function setup(
  onTestFinished: (fn: () => Promise<void> | void) => void,
  expect: ExpectStatic,
  opts: { functionEnv?: Record<string, string>; signingKey?: string } = {},
): Promise<Env> {
  const fn = await spawnFunction(onTestFinished, opts.functionEnv);
  const prefix = newPrefix();
  const engine = await serve({
    services: [],
    store: createRedisStore({ ...redisTarget, prefix, logger: quietLogger }),
    deployments: [fn],
    port: 0,
    handleSignals: false,
    logger: quietLogger,
    ...(opts.signingKey ? { signingKey: opts.signingKey } : {}),
  });
  onTestFinished(async () => {
    await engine.close();
    await deletePrefix(redisTarget, prefix);
  });
  return { fn, engine, expect };
}

/** Runs the saga for `user` through the engine's ingress: status, body, invocation id. */
async function subscribe(
  env: Env,
  user: string,
  products: string[],
): Promise<{ status: number; body: unknown; id: string }> {
  const r = await post(env.engine.url, `/subscription/${user}/run`, {
    creditCard: '4242',
    products,
  });
  return { status: r.status, body: r.body, id: r.headers.get('x-restate-id') ?? '' };
}

const status = async (env: Env, user: string): Promise<unknown> =>
  (await post(env.engine.url, `/subscription/${user}/getStatus`)).body;

const account = async (env: Env, user: string): Promise<Account> =>
  (await post(env.engine.url, `/billing/${user}/account`)).body as Account;

/** The targets of the saga's calls, in journal order. */
async function calls(env: Env, invocationId: string): Promise<string[]> {
  const journal: Entry[] = (await env.engine.store.describe(invocationId, true))!.journal!;
  return journal.flatMap((e) => (e.k === 'call' ? [e.n] : []));
}

const newUser = (): string => `u${randomUUID().slice(0, 8)}`;

describe('serverless: the saga on a push deployment', () => {
  it('a subscription completes on the function, its output returned through the engine', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect);
    const user = newUser();
    const run = await subscribe(env, user, ['news', 'music']);
    expect(run.status).toBe(200);
    expect(run.body).toEqual({
      paymentId: `pay-${user}`,
      subscriptions: [`sub-${user}-news`, `sub-${user}-music`],
    });
    expect(await status(env, user)).toBe('active');
    expect(await account(env, user)).toEqual({
      live: [`pay-${user}`, `sub-${user}-news`, `sub-${user}-music`],
      log: [`created pay-${user}`, `created sub-${user}-news`, `created sub-${user}-music`],
    });
    expect(await calls(env, run.id)).toEqual([
      'billing/createRecurringPayment',
      'billing/createSubscription',
      'billing/createSubscription',
    ]);
  });

  it('a failing subscription answers the TerminalError; its compensations ran in reverse, each once', async ({
    onTestFinished,
    expect,
  }) => {
    const env = await setup(onTestFinished, expect);
    const user = newUser();
    const run = await subscribe(env, user, ['news', 'music', 'sold-out', 'films']);
    expect(run.status).toBe(409);
    expect(run.body).toMatchObject({ code: 409, message: 'sold-out is not available' });
    expect(await status(env, user)).toBe('rolled_back');
    // Registered before its step, the sold-out compensation found nothing; films was never tried.
    expect(await account(env, user)).toEqual({
      live: [],
      log: [
        `created pay-${user}`,
        `created sub-${user}-news`,
        `created sub-${user}-music`,
        `nothing to remove: sub-${user}-sold-out`,
        `removed sub-${user}-music`,
        `removed sub-${user}-news`,
        `removed pay-${user}`,
      ],
    });
    expect(await calls(env, run.id)).toEqual([
      'billing/createRecurringPayment',
      'billing/createSubscription',
      'billing/createSubscription',
      'billing/createSubscription',
      'billing/removeSubscription',
      'billing/removeSubscription',
      'billing/removeSubscription',
      'billing/removeRecurringPayment',
    ]);
  });

  it('with the engine’s public key, the function runs what the engine signed and refuses the rest', async ({
    onTestFinished,
    expect,
  }) => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const env = await setup(onTestFinished, expect, {
      functionEnv: {
        LATCHKEY_IDENTITY_KEYS: publicKey
          .export({ type: 'spki', format: 'der' })
          .toString('base64'),
      },
      signingKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    });
    const user = newUser();
    const run = await subscribe(env, user, ['news']);
    expect(run.status).toBe(200);
    expect(run.body).toEqual({ paymentId: `pay-${user}`, subscriptions: [`sub-${user}-news`] });

    // Anyone else who learns the URL: refused, nothing served.
    const unsigned = await fetch(`${env.fn}/discover`);
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toMatchObject({ code: 401, errorCode: 'UNAUTHORIZED' });
  });

  it('the same file’s Lambda and fetch handlers answer discovery with the saga’s services', async ({
    expect,
  }) => {
    const res = await lambdaHandler({
      rawPath: '/discover',
      requestContext: { http: { method: 'GET' } },
      headers: {},
      isBase64Encoded: false,
    });
    expect(res.statusCode).toBe(200);
    const manifest = JSON.parse(res.body) as { services: { name: string }[] };
    expect(manifest.services.map((s) => s.name).sort()).toEqual(['billing', 'subscription']);

    const fetched = await fetchHandler.fetch(new Request('https://fn.example/discover'));
    expect(fetched.status).toBe(200);
    expect(await fetched.json()).toEqual(manifest);
  });
});
