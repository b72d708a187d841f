/**
 * The `latchkey` binary (built, as a child process) against `latchkey serve
 * test/fixtures/cli-services.mjs` (another child process, with its own private redis-server and
 * an admin token):
 *
 * - services ls/describe, tables and JSON (schemas from zod);
 * - state get/set/clear and edit round trips (EDITOR: test/fixtures/cli-editor.mjs), and what a
 *   handler reads next; an invalid edit changes nothing;
 * - `-o json` parseable for every read command;
 * - exit codes: usage 2, unknown invocation or service 3, server down or refused 1;
 * - colour: never on a pipe unless forced, never with NO_COLOR;
 * - a bulk action by filter refused without --yes and without a terminal (exit 2, nothing changed);
 * - serve: a module that exports no services is refused; the private redis-server stops with it.
 *
 * The failing-workflow story is in cli-story.redis.test.ts.
 */
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@latchkey/redis-store/testing';
import { post, until } from './helpers/harness.js';
import { json, runCli, startServe, type Served } from './helpers/cli.js';
import { onClusterPass } from './helpers/redis.js';

const TOKEN = 'cli-test-token';
const EDITOR = `${JSON.stringify(process.execPath)} test/fixtures/cli-editor.mjs`;
// eslint-disable-next-line no-control-regex -- what the test looks for
const ANSI = /\u001b\[\d+m/;

let served: Served;
let env: Record<string, string>;

beforeAll(async () => {
  served = await startServe('test/fixtures/cli-services.mjs', ['--admin-token', TOKEN]);
  env = { LATCHKEY_ADMIN_URL: served.adminUrl, LATCHKEY_ADMIN_TOKEN: TOKEN };
});
afterAll(async () => {
  await served?.stop();
});

/** Whether something accepts TCP connections at a redis:// URL. */
function listening(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = createConnection({ host: u.hostname, port: Number(u.port) });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

// Skipped on the cluster pass (onClusterPass): this file never uses the project's Redis, as the
// CLI's `latchkey serve` starts its own private standalone redis-server; there it would only repeat
// the `redis` pass.
describe.skipIf(onClusterPass)('services', () => {
  it('services ls lists every definition with its kind and handlers; -o json is the API answer', async () => {
    const table = await runCli(['services', 'ls'], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+KIND\s+HANDLERS/);
    expect(table.stdout).toMatch(/shop\s+service\s+quote, audit/);
    expect(table.stdout).toMatch(/cart\s+object\s+add, read/);
    expect(table.stdout).toMatch(/checkout\s+workflow\s+run/);
    const r = await runCli(['services', 'ls', '-o', 'json'], env);
    expect(r.code).toBe(0);
    const body = json(r);
    expect(body.services.map((s: { name: string }) => s.name)).toEqual([
      'shop',
      'cart',
      'fixer',
      'checkout',
    ]);
  });

  it('services describe shows handler kinds and schema summaries; -o json the whole JSON Schemas', async () => {
    const table = await runCli(['services', 'describe', 'shop'], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('service shop');
    expect(table.stdout).toContain('Prices orders');
    expect(table.stdout).toMatch(
      /quote\s+—\s+public\s+\{ sku: string; qty: integer; note\?: string \}\s+\{ total: number \}/,
    );
    expect(table.stdout).toMatch(/audit\s+—\s+private\s+any\s+any/);
    const r = await runCli(['services', 'describe', 'shop', '-o', 'json'], env);
    const shop = json(r);
    const quote = shop.handlers.find((h: { name: string }) => h.name === 'quote');
    expect(quote.kind).toBeNull();
    expect(quote.input.type).toBe('object');
    expect(quote.input.required).toEqual(['sku', 'qty']);
    expect(quote.input.properties.qty).toMatchObject({ type: 'integer', minimum: 1 });
    expect(quote.output.properties.total).toEqual({ type: 'number' });
    const cart = json(await runCli(['services', 'describe', 'cart', '-o', 'json'], env));
    expect(cart.handlers.map((h: { kind: string }) => h.kind)).toEqual(['exclusive', 'shared']);
  });

  it('services describe of an unknown service exits 3', async () => {
    const r = await runCli(['services', 'describe', 'nope'], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("no service named 'nope'");
  });
});

describe.skipIf(onClusterPass)('state', () => {
  it('state set then get round-trips, and the handler reads what was set', async () => {
    const set = await runCli(['state', 'set', 'cart', 'k-set', 'owner', '"ada"'], env);
    expect(set.code).toBe(0);
    const got = json(await runCli(['state', 'get', 'cart', 'k-set', '-o', 'json'], env));
    expect(got).toEqual({ service: 'cart', key: 'k-set', state: { owner: 'ada' } });
    const table = await runCli(['state', 'get', 'cart', 'k-set'], env);
    expect(table.stdout).toMatch(/owner\s+"ada"/);
    const read = await post(served.ingressUrl, '/cart/k-set/read');
    expect(read.body).toEqual({ owner: 'ada', tier: null, items: null });
  });

  it('state set with a value that is not JSON is a usage error and sets nothing', async () => {
    const r = await runCli(['state', 'set', 'cart', 'k-bad', 'owner', 'ada'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('not JSON');
    expect(json(await runCli(['state', 'get', 'cart', 'k-bad', '-o', 'json'], env)).state).toEqual(
      {},
    );
  });

  it('state edit applies what the editor changed: names set, removed names cleared', async () => {
    await post(served.ingressUrl, '/cart/k-edit/add', 'apple');
    await runCli(['state', 'set', 'cart', 'k-edit', 'owner', '"ada"'], env);
    const edit = await runCli(['state', 'edit', 'cart', 'k-edit'], {
      ...env,
      EDITOR,
      EDIT_SCRIPT: JSON.stringify({ set: { owner: 'bob', tier: 'gold' }, remove: ['items'] }),
    });
    expect(edit.code).toBe(0);
    expect(edit.stderr).toContain('set owner, tier; cleared items of cart/k-edit');
    const after = json(await runCli(['state', 'get', 'cart', 'k-edit', '-o', 'json'], env));
    expect(after.state).toEqual({ owner: 'bob', tier: 'gold' });
    const read = await post(served.ingressUrl, '/cart/k-edit/read');
    expect(read.body).toEqual({ owner: 'bob', tier: 'gold', items: null });
  });

  it('state edit with no change patches nothing', async () => {
    await runCli(['state', 'set', 'cart', 'k-same', 'owner', '"ada"'], env);
    const r = await runCli(['state', 'edit', 'cart', 'k-same'], {
      ...env,
      EDITOR,
      EDIT_SCRIPT: '{}',
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('no changes');
  });

  it('state edit that saves invalid JSON, or whose editor fails, exits 1 and changes nothing', async () => {
    await runCli(['state', 'set', 'cart', 'k-inv', 'owner', '"ada"'], env);
    const invalid = await runCli(['state', 'edit', 'cart', 'k-inv'], {
      ...env,
      EDITOR,
      EDIT_MODE: 'invalid',
    });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('not valid JSON');
    expect(invalid.stderr).toContain('nothing was changed');
    const failed = await runCli(['state', 'edit', 'cart', 'k-inv'], {
      ...env,
      EDITOR,
      EDIT_MODE: 'fail',
    });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('the editor');
    const after = json(await runCli(['state', 'get', 'cart', 'k-inv', '-o', 'json'], env));
    expect(after.state).toEqual({ owner: 'ada' });
  });

  it('state clear <name> deletes one value', async () => {
    await runCli(['state', 'set', 'cart', 'k-clr', 'owner', '"ada"'], env);
    await runCli(['state', 'set', 'cart', 'k-clr', 'tier', '"gold"'], env);
    const r = await runCli(['state', 'clear', 'cart', 'k-clr', 'owner'], env);
    expect(r.code).toBe(0);
    const after = json(await runCli(['state', 'get', 'cart', 'k-clr', '-o', 'json'], env));
    expect(after.state).toEqual({ tier: 'gold' });
  });

  // Needs DELETE /services/{service}/state/{key} (docs/ADMIN-API.md), built in parallel.
  it('state clear without a name clears every value (DELETE)', async () => {
    await runCli(['state', 'set', 'cart', 'k-all', 'owner', '"ada"'], env);
    await runCli(['state', 'set', 'cart', 'k-all', 'tier', '"gold"'], env);
    const r = await runCli(['state', 'clear', 'cart', 'k-all'], env);
    expect(r.stderr).toBe('cleared the state of cart/k-all\n');
    expect(r.code).toBe(0);
    const after = json(await runCli(['state', 'get', 'cart', 'k-all', '-o', 'json'], env));
    expect(after.state).toEqual({});
  });

  it('state of a service that has no state, or of a bad key, is refused (404 → 3)', async () => {
    const r = await runCli(['state', 'get', 'shop', 'k'], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("no object or workflow named 'shop'");
  });
});

describe.skipIf(onClusterPass)('output and exit codes', () => {
  it('-o json is parseable JSON for every read command', async () => {
    const sent = await post(served.ingressUrl, '/shop/quote/send', { sku: 'a', qty: 2 });
    const id = (sent.body as { invocationId: string }).invocationId;
    await runCli(['state', 'set', 'cart', 'k-json', 'owner', '"ada"'], env);
    const reads = [
      ['inv', 'ls'],
      ['inv', 'ls', '--service', 'shop', '--limit', '5'],
      ['inv', 'describe', id],
      ['state', 'get', 'cart', 'k-json'],
      ['services', 'ls'],
      ['services', 'describe', 'checkout'],
    ];
    for (const args of reads) {
      const r = await runCli([...args, '-o', 'json'], env);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(() => JSON.parse(r.stdout) as unknown, args.join(' ')).not.toThrow();
    }
    expect(json(await runCli(['inv', 'describe', id, '-o', 'json'], env)).id).toBe(id);
  });

  it("inv describe shows the trace id of an invocation accepted under a client's traceparent", async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const sent = await post(
      served.ingressUrl,
      '/shop/quote/send',
      { sku: 'a', qty: 3 },
      { traceparent: `00-${traceId}-b7ad6b7169203331-01` },
    );
    const id = (sent.body as { invocationId: string }).invocationId;
    const r = await runCli(['inv', 'describe', id], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`\\btrace\\s+${traceId}\\b`));
  });

  // Needs GET /invocations/counts (docs/ADMIN-API.md), built in parallel.
  it('inv counts: a table, and -o json the API answer', async () => {
    await post(served.ingressUrl, '/shop/quote', { sku: 'a', qty: 1 });
    const r = await runCli(['inv', 'counts', '-o', 'json'], env);
    expect(r.code, r.stderr).toBe(0);
    const counts = json(r);
    expect(counts.total).toBeGreaterThanOrEqual(1);
    expect(counts.byService.shop).toBeGreaterThanOrEqual(1);
    const table = await runCli(['inv', 'counts'], env);
    expect(table.stdout).toMatch(/^total \d+\n\nSTATUS\s+COUNT\n/);
    expect(table.stdout).toMatch(/\nshop\s+\d+\n/);
  });

  it.each([
    ['an unknown command', ['frobnicate']],
    ['an unknown option', ['inv', 'ls', '--frob']],
    ['a bad output format', ['inv', 'ls', '-o', 'yaml']],
    ['a bad status', ['inv', 'ls', '--status', 'sleeping']],
    ['a bad limit', ['inv', 'ls', '--limit', 'ten']],
    ['a missing argument', ['inv', 'describe']],
    ['--handler without --service', ['inv', 'ls', '--handler', 'run']],
    ['an action with neither id nor filter', ['inv', 'kill', '--yes']],
    ['a group without a command', ['inv']],
  ])('%s is a usage error (exit 2)', async (_what, args) => {
    const r = await runCli(args, env);
    expect(r.code).toBe(2);
    expect(r.stderr.length).toBeGreaterThan(0);
    expect(r.stdout).toBe('');
  });

  it('an unknown invocation exits 3, for describe and for an action', async () => {
    const d = await runCli(['inv', 'describe', 'inv_doesnotexist'], env);
    expect(d.code).toBe(3);
    expect(d.stderr).toContain('not found');
    const k = await runCli(['inv', 'kill', 'inv_doesnotexist'], env);
    expect(k.code).toBe(3);
  });

  it('a server that is down exits 1 with a message naming the URL', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await runCli(['inv', 'ls'], { LATCHKEY_ADMIN_URL: url });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach the admin API at ${url}`);
    const flag = await runCli(['--admin-url', url, 'services', 'ls']);
    expect(flag.code).toBe(1);
  });

  it('a wrong or missing token exits 1 and says how to give one', async () => {
    const r = await runCli(['services', 'ls'], { LATCHKEY_ADMIN_URL: served.adminUrl });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('LATCHKEY_ADMIN_TOKEN');
    const flag = await runCli(['services', 'ls', '--token', TOKEN], {
      LATCHKEY_ADMIN_URL: served.adminUrl,
    });
    expect(flag.code).toBe(0);
  });

  it('colour: none on a pipe, on when forced, never with NO_COLOR', async () => {
    const plain = await runCli(['services', 'ls'], env);
    expect(plain.stdout).not.toMatch(ANSI);
    const forced = await runCli(['services', 'ls'], { ...env, CLICOLOR_FORCE: '1' });
    expect(forced.stdout).toMatch(ANSI);
    const off = await runCli(['services', 'ls'], { ...env, CLICOLOR_FORCE: '1', NO_COLOR: '1' });
    expect(off.stdout).not.toMatch(ANSI);
    expect(off.stdout).toBe(plain.stdout);
  });
});

describe.skipIf(onClusterPass)('bulk actions', () => {
  it('a bulk action without --yes and without a terminal is refused (exit 2) and changes nothing', async () => {
    const sent = await post(served.ingressUrl, '/checkout/bulk-1/run/send', 'o-bulk');
    const id = (sent.body as { invocationId: string }).invocationId;
    await until('the run backs off', async () => {
      const d = json(await runCli(['inv', 'describe', id, '-o', 'json'], env));
      return d.status === 'backing-off';
    });
    const r = await runCli(
      ['inv', 'kill', '--status', 'backing-off', '--service', 'checkout'],
      env,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('without --yes');
    expect(r.stdout).toBe('');
    const d = json(await runCli(['inv', 'describe', id, '-o', 'json'], env));
    expect(d.status).not.toBe('completed');
    // Leave nothing retrying behind.
    expect((await runCli(['inv', 'kill', id], env)).code).toBe(0);
  });
});

describe.skipIf(onClusterPass)('serve', () => {
  it('refuses a module that exports no services (exit 1)', async () => {
    const r = await runCli([
      'serve',
      'test/fixtures/cli-bad-module.mjs',
      '--port',
      '0',
      '--admin-port',
      '0',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'must export an array of service(), object() or workflow() definitions',
    );
  });

  it('stops its private redis-server when it is stopped with SIGINT', async () => {
    const s = await startServe('test/fixtures/cli-services.mjs');
    expect(await listening(s.redisUrl)).toBe(true);
    const health = await fetch(`${s.adminUrl}/health`);
    expect(health.status).toBe(200);
    expect(await s.stop('SIGINT')).toBe(0);
    await until('the private redis-server is gone', async () => !(await listening(s.redisUrl)));
  });
});
