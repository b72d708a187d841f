/**
 * The web UI at `/ui` of the admin port, in headless Chromium (Debian's, driven by playwright-core;
 * test/helpers/chromium.mjs), against a served program on Redis with an admin token:
 *
 * - the token form (a wrong token refused, the right one kept for the tab) and `#token=…`;
 * - the invocations list shows a failing workflow run live, without reload;
 * - its page shows the failing step `charge` with its stack (needs the detail's `failure`);
 * - a state edit saved in the UI is what the handler reads next;
 * - cancel from the UI ends a run;
 * - markup in an error message or a state value is shown as text, never run;
 * - following `GET /events`, counts per status, keys, a workflow's promises, the invoke form and
 *   bulk actions (each needs its route of docs/ADMIN-API.md).
 *
 * Every wait polls the DOM with a deadline; nothing sleeps.
 */
import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { deletePrefix, newPrefix, post, until } from './helpers/harness.js';
import { admin, startAdminServer } from './helpers/control.js';
import { ensureDebianPackage } from '@latchkey/redis-store/testing';
import { CHROMIUM, openChromium } from './helpers/chromium.mjs';
import { XSS, uiServices } from './helpers/ui-services.js';

const redisTarget = inject('redisTarget');
const TOKEN = 'ui-test-token';
/** Generous: the machine is shared and Chromium is slow to start pages under load. */
const WAIT = 60_000;

describe('the web UI in Chromium', () => {
  const prefix = newPrefix();
  let server: Awaited<ReturnType<typeof startAdminServer>>;
  let chrome: { browser: Browser; close(): Promise<void> } | undefined;
  const contexts: BrowserContext[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    ensureDebianPackage('chromium', () => existsSync(CHROMIUM));
    server = await startAdminServer(redisTarget, prefix, uiServices, { token: TOKEN });
    chrome = await openChromium();
  }, 120_000);
  // Each test's tabs close after it (a page left open keeps re-reading the API).
  afterEach(async () => {
    for (const c of contexts.splice(0)) await c.close().catch(() => undefined);
  });
  afterAll(async () => {
    await chrome?.close();
    if (!server) return;
    // Stop the runs that would retry or sleep on.
    const list = await admin<{ invocations: Array<{ id: string; status: string }> }>(
      server.adminUrl,
      'GET',
      '/invocations?limit=1000',
      { token: TOKEN },
    );
    for (const inv of list.body.invocations ?? [])
      if (inv.status !== 'completed')
        await admin(server.adminUrl, 'PATCH', `/invocations/${inv.id}/kill`, { token: TOKEN });
    await server.close();
    await deletePrefix(redisTarget, prefix);
  });

  /** A new tab in its own browser context (its own sessionStorage). */
  async function tab(): Promise<Page> {
    const context = await chrome!.browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    return page;
  }

  /** A tab already past the token form, showing `route` (e.g. `/invocations`). */
  async function signedIn(route: string): Promise<Page> {
    const page = await tab();
    await page.goto(`${server.adminUrl}/ui/#token=${encodeURIComponent(TOKEN)}`);
    await page.waitForSelector('#invocations', { timeout: WAIT });
    await page.evaluate((r) => (location.hash = `#${r}`), route);
    return page;
  }

  async function send(path: string, body: unknown): Promise<string> {
    const r = await post(server.url, path, body);
    expect(r.status).toBe(202);
    return (r.body as { invocationId: string }).invocationId;
  }

  it('asks for the token, refuses a wrong one and keeps the right one for the tab', async () => {
    const page = await tab();
    await page.goto(`${server.adminUrl}/ui/`);
    await page.waitForSelector('#token-form', { timeout: WAIT });
    await page.fill('#token-input', 'wrong-token');
    await page.click('#token-form button[type=submit]');
    await page.waitForFunction(
      () => document.getElementById('token-error')?.textContent?.includes('refused'),
      null,
      { timeout: WAIT },
    );
    expect(await page.$('#invocations')).toBeNull();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button[type=submit]');
    await page.waitForSelector('#invocations table, #invocations .empty', { timeout: WAIT });
    expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([TOKEN]);
    // Asked once: a reload of the tab goes straight to the list.
    await page.reload();
    await page.waitForSelector('#invocations', { timeout: WAIT });
    expect(await page.$('#token-form')).toBeNull();
  });

  it('takes #token=… from the address and removes it from the address bar', async () => {
    const page = await tab();
    await page.goto(`${server.adminUrl}/ui/#token=${encodeURIComponent(TOKEN)}`);
    await page.waitForSelector('#invocations', { timeout: WAIT });
    expect(page.url()).not.toContain(TOKEN);
    expect(await page.evaluate(() => location.hash)).toBe('#/invocations');
    expect(await page.$('#token-form')).toBeNull();
  });

  it('shows a failing workflow run in the list live, without reload, its error as text', async () => {
    const page = await signedIn('/invocations?service=ui_payment');
    await page.waitForSelector('#invocations table, #invocations .empty', { timeout: WAIT });
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));

    const id = await send('/ui_payment/live-1/run/send', { amount: 42 });
    const row = `#invocations tr[data-id="${id}"][data-status="backing-off"]`;
    await page.waitForSelector(row, { timeout: WAIT });
    // The same document all along: the list was re-read, not the page reloaded.
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    const failure = await page.textContent(`${row} td.failure`);
    expect(failure).toContain('gateway down');
    expect(failure).toContain('<img src=x onerror=');
    expect(
      await page.evaluate(() => document.querySelectorAll('img, script:not([src])').length),
    ).toBe(0);
    expect(
      await page.evaluate(() => (window as unknown as { __xss?: number }).__xss),
    ).toBeUndefined();
  });

  it("shows the failing step 'charge' with its error and stack on the run's page", async () => {
    const id = await send('/ui_payment/detail-1/run/send', { amount: 7 });
    const page = await signedIn('/invocations?service=ui_payment');
    await page.click(`#invocations tr[data-id="${id}"] a.id`, { timeout: WAIT });
    await page.waitForFunction(
      () => document.querySelector('#failure .step-name')?.textContent === 'charge',
      null,
      { timeout: WAIT },
    );
    expect(page.url()).toContain(`#/invocations/${id}`);
    expect(await page.textContent('#failure')).toContain('gateway down');
    expect(await page.textContent('#failure pre.stack')).toMatch(/Error: gateway down/);
    // The step before it is in the journal timeline.
    await page.waitForSelector('#timeline tr[data-index="0"][data-kind="run"]', { timeout: WAIT });
    expect(await page.textContent('#timeline tr[data-index="0"]')).toContain('reserve');
    expect(await page.evaluate(() => document.querySelectorAll('img').length)).toBe(0);
  });

  it("shows the trace id of a run accepted under a client's traceparent", async () => {
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const r = await post(
      server.url,
      '/ui_payment/traced-1/run/send',
      { amount: 3 },
      { traceparent: `00-${traceId}-1122334455667788-01` },
    );
    expect(r.status).toBe(202);
    const id = (r.body as { invocationId: string }).invocationId;
    const page = await signedIn(`/invocations/${id}`);
    await page.waitForSelector('#detail .trace-id', { timeout: WAIT });
    expect(await page.textContent('#detail .trace-id')).toBe(traceId);
  });

  it('saves a state edit that the handler reads next', async () => {
    expect((await post(server.url, '/ui_counter/c1/add', 1)).body).toBe(1);
    const page = await signedIn('/objects/ui_counter/c1');
    await page.waitForSelector('#state tr[data-name="count"]', { timeout: WAIT });
    await page.waitForFunction(
      () =>
        (document.getElementById('state-editor') as HTMLTextAreaElement | null)?.value.includes(
          '"count": 1',
        ),
      null,
      { timeout: WAIT },
    );
    await page.fill('#state-editor', '{ "count": 41 }');
    await page.click('#save-state');
    await page.waitForSelector('#state-saved', { timeout: WAIT });
    expect(await page.textContent('#state-saved')).toContain('count');
    // What the handler reads next is the edited value.
    expect((await post(server.url, '/ui_counter/c1/add', 1)).body).toBe(42);
    expect((await post(server.url, '/ui_counter/c1/get', undefined)).body).toBe(42);
  });

  it('cancels a run from its page', async () => {
    const id = await send('/restate/send/ui_napper/nap', undefined);
    const page = await signedIn(`/invocations/${id}`);
    await page.click('#actions [data-action="cancel"]', { timeout: WAIT });
    await page.click('#actions [data-confirm="cancel"]', { timeout: WAIT });
    await page.waitForSelector('#action-result .ok', { timeout: WAIT });
    const done = await until(
      'the cancelled run to complete',
      async () => {
        const r = await admin<{ status: string; outcome?: { ok: boolean; error?: unknown } }>(
          server.adminUrl,
          'GET',
          `/invocations/${id}`,
          { token: TOKEN },
        );
        return r.body.status === 'completed' ? r.body : undefined;
      },
      WAIT,
    );
    expect(done.outcome?.ok).toBe(false);
    expect(JSON.stringify(done.outcome?.error)).toMatch(/cancel/i);
    // The page follows: completed, its failure shown as the outcome.
    await page.waitForSelector('#detail[data-status="completed"] #outcome[data-ok="false"]', {
      timeout: WAIT,
    });
  });

  it('shows markup in a key and a state value as text', async () => {
    const key = '<b>k</b>';
    const patch = await admin(
      server.adminUrl,
      'POST',
      `/services/ui_counter/state/${encodeURIComponent(key)}`,
      {
        token: TOKEN,
        body: { note: XSS },
      },
    );
    expect(patch.status).toBe(200);
    const page = await signedIn(`/objects/ui_counter/${encodeURIComponent(key)}`);
    await page.waitForSelector('#state tr[data-name="note"]', { timeout: WAIT });
    // The value is a JSON string, shown as JSON text: quotes escaped, markup as characters.
    expect(await page.textContent('#state tr[data-name="note"] pre')).toBe(JSON.stringify(XSS));
    expect(await page.textContent('h1')).toContain(key);
    expect(
      await page.evaluate(() => document.querySelectorAll('img, b, script:not([src])').length),
    ).toBe(0);
    expect(
      await page.evaluate(() => (window as unknown as { __xss?: number }).__xss),
    ).toBeUndefined();
  });

  // ---- Parts that need routes of docs/ADMIN-API.md beyond the v1 admin API.

  it('follows GET /events, not a poll (live mode)', async () => {
    const page = await signedIn('/invocations');
    await page.waitForSelector('#live[data-mode="live"]', { timeout: WAIT });
  });

  it('shows counts per status (GET /invocations/counts)', async () => {
    await send('/ui_payment/counts-1/run/send', { amount: 1 });
    const page = await signedIn('/invocations');
    await page.waitForFunction(
      () =>
        Number(document.querySelector('#counts [data-count="backing-off"] b')?.textContent) >= 1,
      null,
      { timeout: WAIT },
    );
  });

  it('lists the keys of an object with their holder and inbox (GET /services/{s}/keys)', async () => {
    expect((await post(server.url, '/ui_counter/k-listed/add', 5)).body).toBe(5);
    const page = await signedIn('/objects/ui_counter');
    await page.waitForSelector('#keys tr[data-key="k-listed"]', { timeout: WAIT });
  });

  it("shows a workflow run's pending promise (GET /services/{w}/keys/{k}/promises)", async () => {
    const id = await send('/ui_approval/a1/run/send', undefined);
    await post(server.url, '/ui_approval/a1/approve', 'ops');
    const page = await signedIn('/workflows/ui_approval/a1');
    await page.waitForSelector(`#run [data-id="${id}"]`, { timeout: WAIT });
    await page.waitForSelector('#promises tr[data-promise="approved"][data-state="resolved"]', {
      timeout: WAIT,
    });
  });

  it('checks the input against the schema before invoking a handler (GET /services/{s})', async () => {
    const page = await signedIn('/services/ui_greeter');
    const form = 'form.invoke[data-handler="greet"]';
    await page.waitForSelector(form, { timeout: WAIT });
    await page.fill(`${form} textarea`, '{ "name": "" }');
    await page.click(`${form} button[type=submit]`);
    await page.waitForSelector(`${form} .issues li`, { timeout: WAIT });
    expect(await page.textContent(`${form} .issues`)).toContain('$.name');
    // Nothing was sent.
    const before = await admin<{ invocations: unknown[] }>(
      server.adminUrl,
      'GET',
      '/invocations?service=ui_greeter',
      { token: TOKEN },
    );
    expect(before.body.invocations).toHaveLength(0);

    await page.fill(`${form} textarea`, '{ "name": "Ada" }');
    await page.click(`${form} button[type=submit]`);
    await page.waitForSelector(`${form} .invoke-result .ok a.id`, { timeout: WAIT });
    await page.click(`${form} .invoke-result .ok a.id`);
    await page.waitForSelector('#detail[data-status="completed"] #outcome[data-ok="true"]', {
      timeout: WAIT,
    });
    expect(await page.textContent('#outcome')).toContain('Hello Ada');
  });

  it('kills every match of the filters after a dry run (POST /invocations/bulk/{op})', async () => {
    const ids = [
      await send('/restate/send/ui_sleepy/nap', undefined),
      await send('/restate/send/ui_sleepy/nap', undefined),
    ];
    const page = await signedIn('/invocations?service=ui_sleepy');
    await page.click('#page details.bulk-box summary', { timeout: WAIT });
    await page.selectOption('#bulk-op', 'kill');
    await page.click('#bulk-preview');
    await page.waitForSelector('#bulk-apply', { timeout: WAIT });
    expect(await page.textContent('#bulk-apply')).toBe('kill 2');
    // The dry run changed nothing.
    for (const id of ids) {
      const r = await admin<{ status: string }>(server.adminUrl, 'GET', `/invocations/${id}`, {
        token: TOKEN,
      });
      expect(r.body.status).not.toBe('completed');
    }
    await page.click('#bulk-apply');
    await page.waitForSelector('#bulk-result .ok', { timeout: WAIT });
    expect(await page.textContent('#bulk-result .ok')).toBe('kill: 2 done');
    for (const id of ids) {
      await until(`${id} to be killed`, async () => {
        const r = await admin<{ status: string }>(server.adminUrl, 'GET', `/invocations/${id}`, {
          token: TOKEN,
        });
        return r.body.status === 'completed';
      });
    }
  });

  it('threw no script errors in any page', () => {
    expect(errors).toEqual([]);
  });
});
