// Headless Chromium from Debian (/usr/bin/chromium), driven through playwright-core over the
// DevTools protocol: no browser is downloaded. Shared by the UI's browser tests
// (test/ui.redis.test.ts) and the screenshot script (scripts/ui-screenshots.js).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--hide-scrollbars',
  '--font-render-hinting=none',
];

/** Starts Chromium in its own process group with a fresh profile; resolves with its DevTools URL. */
function launch(userDataDir) {
  const proc = spawn(
    CHROMIUM,
    [...ARGS, `--user-data-dir=${userDataDir}`, '--remote-debugging-port=0', 'about:blank'],
    { detached: true, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const output = [];
  const endpoint = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`chromium did not start: ${output.join('')}`)),
      60_000,
    );
    proc.stderr.on('data', (d) => {
      output.push(d.toString());
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(output.join(''));
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${CHROMIUM} (apt-get install -y chromium): ${e.message}`));
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`chromium exited (${code ?? signal}): ${output.join('')}`));
    });
  });
  return { proc, endpoint };
}

/** Ends Chromium and every process of its group; resolves once the leader has exited. */
async function kill(proc) {
  if (proc.pid === undefined) return;
  const exited =
    proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve()
      : new Promise((r) => proc.once('exit', () => r()));
  try {
    process.kill(-proc.pid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
  await exited;
}

/**
 * Launches headless Chromium and connects playwright-core to it. `close()` disconnects, ends the
 * browser's process group and removes its profile.
 */
export async function openChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  }
  const userDataDir = mkdtempSync(join(tmpdir(), 'latchkey-ui-'));
  const { proc, endpoint } = launch(userDataDir);
  let browser;
  try {
    browser = await chromium.connectOverCDP(await endpoint);
  } catch (e) {
    await kill(proc);
    rmSync(userDataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    browser,
    async close() {
      await browser.close().catch(() => undefined);
      await kill(proc);
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
