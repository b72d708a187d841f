#!/usr/bin/env node
/**
 * Records golden journals from the examples: runs their handlers through serve() against a
 * private redis-server, and writes, for each invocation, what its first attempt started with
 * (input, seed, state), every completion the store delivered to it, its final journal and its
 * outcome (`describe(id, true)`) to packages/core/test/golden/<example>.json. The unit tests in
 * packages/core/test/golden.test.ts replay them (no Redis).
 *
 *   npm run build && node scripts/record-golden.js
 *
 * Re-record only when a journal format change is intended: the fixtures are what existing
 * journals look like, and replaying them must keep working.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TerminalError, serve } from '@latchkey/core';
import { createRedisStore } from '@latchkey/redis-store';
import { startLocalRedis } from '@latchkey/redis-store/testing';
import { counter, greeter, signup } from '../examples/quickstart/dist/services.js';
import { cart, inventory } from '../examples/virtual-objects/dist/shop.js';
import { userSignup } from '../examples/signup/dist/signup.js';
import { subscriptionSaga } from '../examples/subscription-saga/dist/saga.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(root, 'packages/core/test/golden');
const quiet = { ...console, log: () => undefined, info: () => undefined, warn: () => undefined };

/** Deps of the signup example: the mailed link is kept so the scenario can click it. */
export const signupDeps = (mails) => ({
  createUser: async () => undefined,
  activateUser: async () => undefined,
  sendEmail: async (mail) => void mails.push(mail),
});

/** The billing provider of the saga example: the product 'broken' cannot be subscribed to. */
export const billing = {
  createRecurringPayment: async () => undefined,
  removeRecurringPayment: async () => undefined,
  createSubscription: async (req) => {
    if (req.product === 'broken') throw new TerminalError(`no product ${req.product}`);
  },
  removeSubscription: async () => undefined,
};

/** A store whose worker records what each attempt starts with and is delivered. */
function recordingStore(store, seen) {
  const note = (inv) => {
    let rec = seen.get(inv.id);
    if (!rec) {
      rec = {
        id: inv.id,
        target: inv.target,
        mode: inv.mode,
        input: inv.input,
        headers: inv.headers,
        seed: inv.seed,
        state: [...inv.state],
        completions: new Map(),
        now: inv.now,
      };
      seen.set(inv.id, rec);
    }
    rec.now = Math.max(rec.now, inv.now);
    for (const [i, c] of inv.completions) rec.completions.set(i, c);
    return rec;
  };
  const wrap = (a) => {
    const rec = note(a.invocation);
    const keep = (res) => {
      if (res && typeof res === 'object')
        for (const [i, c] of res.completions) rec.completions.set(i, c);
      if (res && typeof res === 'object') rec.now = Math.max(rec.now, res.now);
      return res;
    };
    return {
      invocation: a.invocation,
      signal: a.signal,
      eager: a.eager,
      ...(a.admits ? { admits: (k) => a.admits(k) } : {}),
      storeNow: () => a.storeNow(),
      commit: (...args) => a.commit(...args).then(keep),
      suspend: (...args) => a.suspend(...args).then(keep),
      complete: (...args) => a.complete(...args),
      listen: (l) =>
        a.listen({
          completion: (i, c) => {
            rec.completions.set(i, c);
            l.completion(i, c);
          },
          cancel: () => l.cancel(),
        }),
      childId: (...args) => a.childId(...args),
      retry: (...args) => a.retry(...args),
      pause: (...args) => a.pause(...args),
    };
  };
  return new Proxy(store, {
    get(t, p) {
      if (p === 'startWorker') {
        return (executor, o) =>
          t.startWorker({ run: (a) => executor.run(wrap(a)), hurry: () => executor.hurry() }, o);
      }
      const v = Reflect.get(t, p);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

async function post(base, path, body) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text };
}

async function settled(store, seen) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ids = [...seen.keys()];
    const infos = await Promise.all(ids.map((id) => store.describe(id, true)));
    // Children (calls, sends) count too, started or not.
    const children = infos.flatMap((i) =>
      (i?.journal ?? []).filter((e) => e.k === 'call' || e.k === 'send'),
    );
    const unseen = children.some((e) => !ids.includes(e.id));
    if (!unseen && infos.every((i) => i?.status === 'completed')) return infos;
    if (Date.now() > deadline) throw new Error('invocations did not complete in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function record(name, services, scenario, redisUrl) {
  const seen = new Map();
  const store = recordingStore(createRedisStore({ url: redisUrl, prefix: `golden-${name}` }), seen);
  const server = await serve({
    services,
    store,
    port: 0,
    handleSignals: false,
    logger: quiet,
    inactivityTimeout: 50,
  });
  try {
    await scenario(server.url);
    const infos = await settled(store, seen);
    const invocations = infos.map((info) => {
      const rec = seen.get(info.id);
      return {
        ...rec,
        completions: [...rec.completions].sort((a, b) => a[0] - b[0]),
        journal: info.journal,
        outcome: info.outcome,
      };
    });
    invocations.sort(
      (a, b) =>
        (a.target.service + a.target.handler).localeCompare(b.target.service + b.target.handler) ||
        a.now - b.now,
    );
    writeFileSync(
      join(out, `${name}.json`),
      JSON.stringify({ example: name, invocations }, null, 2) + '\n',
    );
    console.log(`${name}: ${invocations.length} invocations`);
  } finally {
    await server.close();
  }
}

const redis = process.env['REDIS_URL'] ? undefined : await startLocalRedis();
const url = process.env['REDIS_URL'] ?? redis.url;
try {
  await record(
    'quickstart',
    [greeter, counter, signup],
    async (base) => {
      await post(base, '/greeter/greet', { name: 'Ada' });
      for (let i = 1; i <= 3; i++) await post(base, '/counter/apples/add', i);
      await post(base, '/counter/apples/get');
      await post(base, '/signup/ada@example.com/run', 'ada@example.com');
    },
    url,
  );

  await record(
    'virtual-objects',
    [cart, inventory],
    async (base) => {
      await post(base, '/inventory/sku-1/restock', 5);
      await post(base, '/cart/alice/add', { sku: 'sku-1', qty: 2 });
      await post(base, '/cart/alice/add', { sku: 'sku-2', qty: 1 });
      await post(base, '/cart/alice/checkout');
    },
    url,
  );

  const mails = [];
  await record(
    'signup',
    [userSignup(signupDeps(mails))],
    async (base) => {
      await post(base, '/user-signup/ada/run/send', { email: 'ada@example.com', name: 'Ada' });
      const deadline = Date.now() + 10_000;
      while (mails.length === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      const secret = new URL(mails[0].link).searchParams.get('secret');
      await post(base, '/user-signup/ada/click', { secret });
    },
    url,
  );

  await record(
    'subscription-saga',
    [subscriptionSaga(billing)],
    async (base) => {
      await post(base, '/subscription/bob/run', {
        creditCard: '4242',
        products: ['news', 'music'],
      });
      await post(base, '/subscription/eve/run', {
        creditCard: '4242',
        products: ['news', 'broken'],
      });
    },
    url,
  );
} finally {
  await redis?.stop();
}
