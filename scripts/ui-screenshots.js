#!/usr/bin/env node
// Screenshots of the web UI for the README: serves a small demo program (a payment workflow whose
// `charge` step keeps failing, a cart object with state, an approval workflow waiting on a durable
// promise, a greeter with a zod schema, an order workflow that completes), makes some invocations,
// and writes a PNG of each page to docs/ui/ with Debian's headless Chromium (playwright-core, no
// browser download).
//
//   npm run build && node scripts/ui-screenshots.js
//
// Redis: REDIS_URL, else a private redis-server started for the run. Needs /usr/bin/chromium.
import { mkdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { handlers, object, serve, service, workflow } from '@latchkey/core';
import { createRedisStore } from '@latchkey/redis-store';
import { startLocalRedis } from '@latchkey/redis-store/testing';
import { openChromium } from '../test/helpers/chromium.mjs';

const OUT = new URL('../docs/ui/', import.meta.url);
const TOKEN = 'demo-token';

const payment = workflow({
  name: 'payment',
  handlers: {
    run: async (ctx, order) => {
      await ctx.run('reserve', () => ({ reserved: order.amount }));
      await ctx.run('charge', () => {
        throw new Error(`card gateway timed out after 3000 ms (order ${order.id})`);
      });
      return 'paid';
    },
  },
});

const order = workflow({
  name: 'order',
  handlers: {
    run: async (ctx, o) => {
      const stock = await ctx.run('check-stock', async () => {
        await new Promise((r) => setTimeout(r, 120));
        return { available: true, sku: o.sku };
      });
      await ctx.sleep(300, 'cool-down');
      const label = await ctx.run('print-label', async () => {
        await new Promise((r) => setTimeout(r, 60));
        return `LBL-${o.sku}`;
      });
      ctx.set('label', label);
      return { shipped: stock.available, label };
    },
  },
});

const cart = object({
  name: 'cart',
  handlers: {
    add: async (ctx, item) => {
      const items = (await ctx.get('items')) ?? [];
      items.push(item);
      ctx.set('items', items);
      ctx.set('updatedBy', 'add');
      return items.length;
    },
    checkout: async (ctx) => {
      await ctx.sleep(3_600_000, 'hold-for-payment');
      return 'done';
    },
  },
});

const approval = workflow({
  name: 'approval',
  handlers: {
    run: async (ctx, doc) => {
      ctx.set('document', doc);
      const by = await ctx.promise('approved');
      return `approved by ${by}`;
    },
    approve: handlers.workflow.shared(async (ctx, by) => ctx.promise('approved').resolve(by)),
  },
});

const greeter = service({
  name: 'greeter',
  description: 'Says hello',
  handlers: {
    greet: handlers.handler(
      { input: z.object({ name: z.string().min(1), times: z.number().int().min(1).optional() }) },
      async (_ctx, p) => `Hello ${p.name}`.repeat(p.times ?? 1),
    ),
  },
});

async function post(base, path, body) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return res.json();
}

async function until(what, fn, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const redis = process.env['REDIS_URL'] ? undefined : await startLocalRedis();
const store = createRedisStore({
  url: process.env['REDIS_URL'] ?? redis.url,
  prefix: `ui-shots-${randomUUID().slice(0, 8)}`,
});
const quiet = { ...console, log() {}, info() {}, warn() {}, debug() {} };
const server = await serve({
  services: [payment, order, cart, approval, greeter],
  store,
  port: 0,
  handleSignals: false,
  admin: { port: 0, token: TOKEN },
  logger: quiet,
});
const adminHeaders = { authorization: `Bearer ${TOKEN}` };
const chrome = await openChromium();
try {
  for (const name of ['Ada', 'Grace', 'Edsger']) await post(server.url, '/greeter/greet', { name });
  await post(server.url, '/cart/alice/add', { sku: 'tea', qty: 2 });
  await post(server.url, '/cart/alice/add', { sku: 'cups', qty: 6 });
  await post(server.url, '/cart/bob/add', { sku: 'coffee', qty: 1 });
  await post(server.url, '/cart/bob/checkout/send', null);
  await post(server.url, '/cart/bob/add/send', { sku: 'milk', qty: 1 });
  await post(server.url, '/order/o-17/run', { sku: 'tea' });
  await post(server.url, '/approval/doc-9/run/send', { title: 'Q4 budget' });
  const failing = await post(server.url, '/payment/p-42/run/send', { id: 'p-42', amount: 1999 });
  await post(server.url, '/payment/p-43/run/send', { id: 'p-43', amount: 250 });
  await until('the failing payment to retry', async () => {
    const r = await fetch(`${server.adminUrl}/invocations/${failing.invocationId}`, {
      headers: adminHeaders,
    });
    const inv = await r.json();
    return inv.attempts >= 3;
  });

  mkdirSync(OUT, { recursive: true });
  const context = await chrome.browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await page.goto(`${server.adminUrl}/ui/#token=${TOKEN}`);
  await page.waitForSelector('#invocations table', { timeout: 30_000 });
  // [file, route, what to do on the page first]
  const shots = [
    ['invocations', '/invocations'],
    ['invocation', `/invocations/${failing.invocationId}`],
    ['objects', '/objects/cart'],
    ['object-key', '/objects/cart/alice'],
    ['workflows', '/workflows/approval/doc-9'],
    [
      'services',
      '/services/greeter',
      async () => {
        // The form checks the input against the schema before sending anything.
        await page.click('form.invoke button[type=submit]', { timeout: 15_000 });
        await page.waitForSelector('form.invoke .issues', { timeout: 15_000 });
      },
    ],
  ];
  for (const [name, route, act] of shots) {
    await page.evaluate(`location.hash = ${JSON.stringify(`#${route}`)}`);
    // Every section has answered (or shown why not).
    await page
      .waitForFunction(
        "!document.getElementById('page')?.textContent?.includes('Loading…')",
        null,
        {
          timeout: 15_000,
        },
      )
      .catch(() => undefined);
    if (act) await act().catch((e) => console.error(`${name}: ${e.message}`));
    const file = new URL(`${name}.png`, OUT);
    await page.screenshot({ path: file.pathname, fullPage: true });
    console.log(`wrote docs/ui/${name}.png`);
  }
  await context.close();
} finally {
  await chrome.close();
  // Stop what would go on retrying or sleeping, then leave nothing behind.
  const r = await fetch(`${server.adminUrl}/invocations?limit=1000`, { headers: adminHeaders });
  for (const inv of (await r.json()).invocations ?? [])
    if (inv.status !== 'completed')
      await fetch(`${server.adminUrl}/invocations/${inv.id}/kill`, {
        method: 'PATCH',
        headers: adminHeaders,
      });
  await server.close();
  await redis?.stop();
}
