import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LatchkeyServer } from '@latchkey/core';
import { ensureDebianPackage } from '@latchkey/redis-store/testing';
import { deletePrefix, newPrefix, post, startServer, until } from './helpers/harness.js';
import { wsServices } from './helpers/ws-services.js';

const redisTarget = inject('redisTarget');

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** The built @latchkey/client, served to the page as ES modules. */
const CLIENT_DIST = fileURLToPath(new URL('../packages/client/dist/', import.meta.url));

/**
 * The page: submits workflow `job` over the browser's native WebSocket (through
 * @latchkey/client, loaded unbundled), renders every progress event as an
 * `<li>` and the result into `#result`.
 */
const PAGE = `<!doctype html>
<html>
<head><meta charset="utf-8"><title>Latchkey progress</title></head>
<body>
<h1>Workflow <span id="invocation"></span></h1>
<ol id="events"></ol>
<p>Result: <output id="result"></output></p>
<p>Error: <output id="error"></output></p>
<script type="module">
  // Count the sockets the client opens through the browser's own WebSocket.
  const Native = window.WebSocket;
  window.socketsOpened = 0;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.socketsOpened++;
    }
  };
  const { connect } = await import('/client/index.js');
  const params = new URLSearchParams(location.search);
  const client = connect(params.get('ws'));
  const events = document.getElementById('events');
  try {
    const { invocationId } = await client.workflowSubmit({ name: 'job' }, params.get('key'), params.get('input'));
    document.getElementById('invocation').textContent = invocationId;
    for await (const ev of client.subscribe(invocationId)) {
      const li = document.createElement('li');
      li.dataset.kind = ev.kind;
      if (ev.kind === 'status') li.textContent = 'status ' + ev.status;
      else if (ev.kind === 'journal') li.textContent = 'journal ' + ev.index + ' ' + ev.entry.k + (ev.entry.n ? ':' + ev.entry.n : '');
      else li.textContent = ev.ok ? 'result ' + JSON.stringify(ev.value) : 'failed ' + ev.error.message;
      events.append(li);
      if (ev.kind === 'journal' && ev.entry.k === 'pget') document.body.dataset.waiting = 'yes';
      if (ev.kind === 'result') document.getElementById('result').textContent = ev.ok ? ev.value : 'failed: ' + ev.error.message;
    }
  } catch (e) {
    document.getElementById('error').textContent = String(e);
  } finally {
    await client.close();
    document.body.dataset.done = 'yes';
  }
</script>
</body>
</html>`;

/** Starts the test's own HTTP server: the page at `/`, the client's modules at `/client/*.js`. */
async function startPageServer(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://page').pathname;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
      return;
    }
    const m = /^\/client\/([a-z]+\.js)$/.exec(path);
    if (m && existsSync(join(CLIENT_DIST, m[1]!))) {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(readFileSync(join(CLIENT_DIST, m[1]!)));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Launches headless Chromium in its own process group with a fresh profile; returns its DevTools endpoint. */
async function launchChromium(
  userDataDir: string,
): Promise<{ proc: ChildProcess; endpoint: string; output: string[] }> {
  const proc = spawn(
    CHROMIUM,
    [
      ...CHROMIUM_ARGS,
      `--user-data-dir=${userDataDir}`,
      '--remote-debugging-port=0',
      'about:blank',
    ],
    {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const output: string[] = [];
  const endpoint = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`chromium did not start: ${output.join('')}`)),
      30_000,
    );
    proc.stderr.on('data', (d: Buffer) => {
      output.push(d.toString());
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(output.join(''));
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(
        new Error(
          `cannot start ${CHROMIUM} (install it: apt-get install -y chromium): ${e.message}`,
        ),
      );
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`chromium exited (${code ?? signal}): ${output.join('')}`));
    });
  });
  return { proc, endpoint, output };
}

/** Ends Chromium and every process of its group. */
async function killChromium(proc: ChildProcess): Promise<void> {
  if (proc.pid === undefined) return;
  const exited =
    proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => proc.once('exit', () => r()));
  try {
    process.kill(-proc.pid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
  await exited;
  await until(
    'chromium processes are gone',
    () => {
      try {
        process.kill(-proc.pid!, 0);
        return false;
      } catch {
        return true;
      }
    },
    10_000,
  );
}

describe('headless Chromium over the native WebSocket', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer;
  let page: { server: Server; url: string } | undefined;
  /** A page server at an origin the ingress does not allow. */
  let other: { server: Server; url: string } | undefined;
  let chrome: { proc: ChildProcess; endpoint: string } | undefined;
  let browser: Browser | undefined;
  let userDataDir: string | undefined;

  beforeAll(async () => {
    ensureDebianPackage('chromium', () => existsSync(CHROMIUM));
    page = await startPageServer();
    other = await startPageServer();
    // Pages of the test's page server may open sockets; no other origin may.
    server = await startServer(redisTarget, prefix, wsServices, {
      serve: { webSocket: { allowedOrigins: [page.url] } },
    });
    userDataDir = mkdtempSync(join(tmpdir(), 'latchkey-chromium-'));
    chrome = await launchChromium(userDataDir);
    browser = await chromium.connectOverCDP(chrome.endpoint);
  }, 600_000);
  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    if (chrome) await killChromium(chrome.proc);
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    for (const p of [page, other]) {
      if (!p) continue;
      const s = p.server;
      const closed = new Promise<void>((r) => s.close(() => r()));
      s.closeAllConnections();
      await closed;
    }
    await server?.close();
    await deletePrefix(redisTarget, prefix);
  });

  it('a page submits a workflow over the native WebSocket and renders its streamed progress and result', async () => {
    const context = browser!.contexts()[0] ?? (await browser!.newContext());
    const tab = await context.newPage();
    const origin = page!.url;
    const pageErrors: string[] = [];
    tab.on('pageerror', (e) => pageErrors.push(e.message));
    const key = `browser-${Date.now()}`;
    const wsUrl = `${server.url.replace('http', 'ws')}/ws`;
    await tab.goto(
      `${origin}/?ws=${encodeURIComponent(wsUrl)}&key=${encodeURIComponent(key)}&input=browser`,
    );

    // Progress is rendered while the workflow runs: it waits for its promise, no result yet.
    await tab.waitForSelector('body[data-waiting="yes"]', { timeout: 30_000 });
    const invocationId = await tab.textContent('#invocation');
    expect(invocationId).toMatch(/^inv_/);
    expect(await tab.textContent('#result')).toBe('');
    const before = await tab.$$eval('#events li', (lis) => lis.map((li) => li.textContent));
    expect(before).toEqual(
      expect.arrayContaining(['journal 0 run:a', 'journal 1 sleep', 'journal 2 pget:go']),
    );

    expect((await post(server.url, `/job/${key}/release`, 'go')).status).toBe(200);
    await tab.waitForSelector('body[data-done="yes"]', { timeout: 30_000 });

    expect(await tab.textContent('#error')).toBe('');
    expect(await tab.textContent('#result')).toBe('A:browser|go|B');
    const items = await tab.$$eval('#events li', (lis) =>
      lis.map((li) => ({ kind: (li as HTMLElement).dataset['kind'], text: li.textContent })),
    );
    // Every journal entry once, in order, as the store has it; then `completed`; the result last.
    const info = await server.store.describe(invocationId!, true);
    const expected = info!.journal!.map(
      (e, i) => `journal ${i} ${e.k}${'n' in e && e.n !== undefined ? `:${e.n}` : ''}`,
    );
    expect(items.filter((i) => i.kind === 'journal').map((i) => i.text)).toEqual(expected);
    expect(expected).toEqual([
      'journal 0 run:a',
      'journal 1 sleep',
      'journal 2 pget:go',
      'journal 3 run:b',
    ]);
    const statuses = items.filter((i) => i.kind === 'status').map((i) => i.text);
    expect(statuses[statuses.length - 1]).toBe('status completed');
    expect(items[items.length - 1]).toEqual({ kind: 'result', text: 'result "A:browser|go|B"' });
    expect(items.filter((i) => i.kind === 'result')).toHaveLength(1);
    // One socket, the browser's own.
    expect(
      await tab.evaluate(() => (window as unknown as { socketsOpened: number }).socketsOpened),
    ).toBe(1);
    expect(pageErrors).toEqual([]);
    await tab.close();
  });

  it('a page from an origin the ingress does not allow cannot open a socket (cross-site WebSocket hijacking)', async () => {
    const context = browser!.contexts()[0] ?? (await browser!.newContext());
    const tab = await context.newPage();
    const wsUrl = `${server.url.replace('http', 'ws')}/ws`;
    const open = (url: string): Promise<string> =>
      tab.evaluate(
        (u) =>
          new Promise<string>((resolve) => {
            const w = new WebSocket(u);
            w.onopen = () => {
              w.close();
              resolve('open');
            };
            w.onerror = () => resolve('refused');
          }),
        url,
      );
    await tab.goto(`${other!.url}/`);
    expect(await open(wsUrl)).toBe('refused');
    // The allowed origin still connects (the refusal is about the origin, not the socket).
    await tab.goto(`${page!.url}/`);
    expect(await open(wsUrl)).toBe('open');
    await tab.close();
  });
});
