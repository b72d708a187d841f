/**
 * The command line as a function (`run(argv, io)`): exit codes of usage errors, help and version,
 * and the confirmation of bulk actions on a terminal, against a stand-in admin API (a local HTTP
 * server answering the bulk route; no Redis is involved).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../src/program.js';
import type { Io } from '../src/output.js';

interface Captured {
  io: Io;
  out(): string;
  err(): string;
}

/** An Io whose stdin is a terminal (or not) that answers `input` to a question, and whose output is collected. */
function captured(env: Record<string, string> = {}, tty = false, input = ''): Captured {
  let out = '';
  let err = '';
  const stdin = Object.assign(new PassThrough(), { isTTY: tty });
  const stderr = new PassThrough();
  let answered = false;
  stderr.on('data', (d: Buffer) => {
    err += d.toString();
    // The answer is typed once the question is asked.
    if (input && !answered && err.includes('[y/N]')) {
      answered = true;
      stdin.write(input);
    }
  });
  return {
    io: {
      stdout: { write: (s: string) => (out += s), isTTY: false },
      stderr: Object.assign(stderr, { isTTY: false }),
      stdin,
      env,
    },
    out: () => out,
    err: () => err,
  };
}

const argv = (...args: string[]): string[] => ['node', 'latchkey', ...args];

describe('exit codes', () => {
  it('--help and --version exit 0 on stdout', async () => {
    const h = captured();
    expect(await run(argv('--help'), h.io)).toBe(0);
    expect(h.out()).toContain('Exit codes: 0 ok, 1 failure, 2 usage');
    const v = captured();
    expect(await run(argv('--version'), v.io)).toBe(0);
    expect(v.out()).toBe('0.1.0\n');
  });

  it.each([
    [['nope']],
    [['inv', 'ls', '-o', 'yaml']],
    [['inv', 'ls', '--limit', '0']],
    [['inv', 'restart', 'inv_1', '--keep-prefix', '-1']],
    [['inv', 'describe']],
    [['inv', 'ls', '--created-after', 'yesterday']],
    [['inv', 'ls', '--key', 'k']],
    [['inv', 'kill', 'inv_1', '--status', 'paused']],
    [['inv', 'kill', 'inv_1', '--dry-run']],
    [['inv', 'pause', 'inv_1', '--keep-prefix', '2']],
    [['state', 'set', 'cart', 'k', 'owner', 'not-json']],
    [['state', 'set', 'cart', 'k', 'owner', 'null']],
    [['services']],
  ])('%o is a usage error (2), sent nowhere', async (args) => {
    // An admin URL nobody listens on: a request would end in exit 1, not 2.
    const c = captured({ LATCHKEY_ADMIN_URL: 'http://127.0.0.1:9' });
    expect(await run(argv(...args), c.io)).toBe(2);
    expect(c.err()).not.toBe('');
    expect(c.out()).toBe('');
  });
});

describe('bulk actions on a terminal', () => {
  const requests: Array<{ url: string; body: { dryRun?: boolean; limit?: number } }> = [];
  let server: Server;
  let url: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        const body = JSON.parse(text || '{}') as { dryRun?: boolean; limit?: number };
        requests.push({ url: req.url ?? '', body });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            dryRun: body.dryRun === true,
            matched: 2,
            applied: ['inv_a', 'inv_b'],
            failed: [],
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('without --yes and without a terminal: refused (2) before any request', async () => {
    requests.length = 0;
    const c = captured({ LATCHKEY_ADMIN_URL: url });
    expect(await run(argv('inv', 'kill', '--status', 'backing-off'), c.io)).toBe(2);
    expect(c.err()).toContain('without --yes');
    expect(requests).toEqual([]);
  });

  it('shows what it would touch, asks, and declined changes nothing (2)', async () => {
    requests.length = 0;
    const c = captured({ LATCHKEY_ADMIN_URL: url }, true, 'n\n');
    expect(
      await run(argv('inv', 'kill', '--status', 'backing-off', '--service', 'checkout'), c.io),
    ).toBe(2);
    expect(c.err()).toContain('2 matched; would kill 2');
    expect(c.err()).toContain('kill 2 invocations? [y/N]');
    expect(c.err()).toContain('not confirmed; nothing was changed');
    expect(requests).toEqual([
      { url: '/invocations/bulk/kill?status=backing-off&service=checkout', body: { dryRun: true } },
    ]);
  });

  it('confirmed with y, it applies (0) and prints what it did', async () => {
    requests.length = 0;
    const c = captured({ LATCHKEY_ADMIN_URL: url }, true, 'y\n');
    expect(await run(argv('inv', 'pause', '--service', 'checkout', '--limit', '5'), c.io)).toBe(0);
    expect(requests.map((r) => r.body)).toEqual([
      { dryRun: true, limit: 5 },
      { dryRun: false, limit: 5 },
    ]);
    expect(c.out()).toBe('2 matched; paused: 2\n');
  });

  it('--yes applies without asking; -o json prints the answer', async () => {
    requests.length = 0;
    const c = captured({ LATCHKEY_ADMIN_URL: url });
    expect(
      await run(argv('inv', 'restart', '--status', 'completed', '--yes', '-o', 'json'), c.io),
    ).toBe(0);
    expect(requests).toEqual([
      { url: '/invocations/bulk/restart-as-new?status=completed', body: { dryRun: false } },
    ]);
    expect(JSON.parse(c.out())).toEqual({
      dryRun: false,
      matched: 2,
      applied: ['inv_a', 'inv_b'],
      failed: [],
    });
  });
});
