/**
 * A deployment that answers what no handler of its invocation could (a hand-written endpoint in
 * this process, registered with a real engine on the real Redis): the engine applies nothing of
 * such an answer and fails the attempt with the reason; a manifest the engine cannot serve is
 * refused at registration and stores nothing.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, inject, it } from 'vitest';
import { admin, startAdminServer } from './helpers/control.js';
import { deletePrefix, newPrefix, post, until } from './helpers/harness.js';

const redisTarget = inject('redisTarget');

/** A service `evil` whose one attempt ends the invocation (no retries: the failure is its outcome). */
function manifest(serviceName = 'evil'): object {
  return {
    protocol: 'latchkey-push',
    minVersion: 1,
    maxVersion: 1,
    services: [
      {
        name: serviceName,
        kind: 'service',
        handlers: [
          {
            name: 'go',
            kind: null,
            private: false,
            options: { retryPolicy: { maxAttempts: 1, onMaxAttempts: 'kill' } },
            input: {},
            output: {},
          },
        ],
      },
    ],
  };
}

interface Fake {
  url: string;
  /** What the next invoke answers, given the request. */
  answer: (req: { fence: string; journal: unknown[]; id: string }) => object;
  manifest: object;
}

async function fake(onTestFinished: (fn: () => Promise<void>) => void): Promise<Fake> {
  const f = { manifest: manifest() } as Fake;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const type = req.url?.endsWith('/discover')
        ? 'application/vnd.latchkey.manifest.v1+json'
        : 'application/vnd.latchkey.invoke.v1+json';
      const out = req.url?.endsWith('/discover')
        ? f.manifest
        : f.answer(JSON.parse(body) as { fence: string; journal: unknown[]; id: string });
      res.writeHead(200, { 'content-type': type });
      res.end(JSON.stringify(out));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(() => new Promise((r) => server.close(() => r())));
  f.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return f;
}

async function engine(onTestFinished: (fn: () => Promise<void>) => void) {
  const prefix = newPrefix();
  const e = await startAdminServer(redisTarget, prefix, []);
  onTestFinished(async () => {
    await e.close();
    await deletePrefix(redisTarget, prefix);
  });
  return e;
}

describe('a deployment answering what its handler cannot', () => {
  const cases: [
    string,
    (r: { fence: string; journal: unknown[]; id: string }) => object,
    RegExp,
  ][] = [
    [
      'a service writing state',
      (r) => ({
        v: 1,
        fence: r.fence,
        from: r.journal.length,
        type: 'complete',
        entries: [{ k: 'set', n: 'x', v: 1 }],
        effects: [],
        outcome: { ok: true, value: '1' },
      }),
      /a service handler cannot write state/,
    ],
    [
      'a child under a forged id, answering another invocation',
      (r) => ({
        v: 1,
        fence: r.fence,
        from: r.journal.length,
        type: 'commit',
        entries: [{ k: 'call', n: 'evil/go', id: 'inv_00forgedforgedforgedforg' }],
        effects: [
          {
            t: 'accept',
            index: r.journal.length,
            req: {
              id: 'inv_00forgedforgedforgedforg',
              target: { service: 'evil', handler: 'go' },
              mode: 'service',
              input: '',
              caller: { id: 'inv_00someoneelsesomeonee', index: 3 },
              journalRetentionMs: 0,
              idempotencyRetentionMs: 0,
              workflowRetentionMs: 0,
            },
          },
        ],
      }),
      /is not the id this invocation's entry gives a child/,
    ],
    [
      'a commit of nothing',
      (r) => ({
        v: 1,
        fence: r.fence,
        from: r.journal.length,
        type: 'commit',
        entries: [],
        effects: [],
      }),
      /a commit of nothing/,
    ],
    [
      'done to a request without a handle',
      (r) => ({
        v: 1,
        fence: r.fence,
        from: r.journal.length,
        type: 'done',
        entries: [],
        effects: [],
      }),
      /answered done to a request/,
    ],
  ];

  for (const [name, answer, reason] of cases) {
    it(`fails the attempt and applies nothing: ${name}`, async ({ onTestFinished }) => {
      const f = await fake(onTestFinished);
      f.answer = answer;
      const e = await engine(onTestFinished);
      const reg = await admin(e.adminUrl, 'POST', '/deployments', { body: { uri: f.url } });
      expect(reg.status).toBe(201);
      const r = await post(e.url, '/evil/go', undefined);
      expect(r.status).toBe(500);
      expect((r.body as { message: string }).message).toMatch(reason);
      const id = await until('the invocation is listed', async () => {
        const page = await e.store.list({ service: 'evil' });
        return page.invocations[0]?.id;
      });
      const info = await e.store.describe(id, true);
      expect(info?.journal).toEqual([]);
      expect(await e.store.getState('evil', 'x')).toEqual(new Map());
    });
  }

  it('refuses a manifest it could not serve, and stores nothing', async ({ onTestFinished }) => {
    const f = await fake(onTestFinished);
    f.manifest = manifest('not a name');
    const e = await engine(onTestFinished);
    const reg = await admin(e.adminUrl, 'POST', '/deployments', { body: { uri: f.url } });
    expect(reg).toMatchObject({ status: 502, body: { errorCode: 'DISCOVERY_FAILED' } });
    expect(await admin(e.adminUrl, 'GET', '/deployments')).toMatchObject({
      body: { deployments: [] },
    });
  });
});
