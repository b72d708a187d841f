/**
 * The web UI's files on the admin port (packages/core/src/ingress/admin-ui.ts): a fixed set
 * served without a token, with a Content-Security-Policy that allows no inline script and
 * `nosniff`; GET and HEAD only; every other path under `/ui` is 404 (no directory traversal
 * reaches a file or an API route), and the API routes still want the token.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deletePrefix, newPrefix, startServer } from './helpers/harness.js';
import type { LatchkeyServer } from '@latchkey/core';
import { startAdminServer } from './helpers/control.js';
import { uiServices } from './helpers/ui-services.js';

const redisTarget = inject('redisTarget');
const TOKEN = 'ui-files-token';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends a request with its target exactly as given (fetch would normalize `..`). */
function raw(base: string, method: string, target: string, headers: Record<string, string> = {}) {
  const url = new URL(base);
  return new Promise<Raw>((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path: target, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('the web UI files on the admin port', () => {
  const prefix = newPrefix();
  let server: Awaited<ReturnType<typeof startAdminServer>>;
  beforeAll(async () => {
    server = await startAdminServer(redisTarget, prefix, uiServices, { token: TOKEN });
  });
  afterAll(async () => {
    await server?.close();
    await deletePrefix(redisTarget, prefix);
  });

  it.each([
    ['/ui/', 'text/html; charset=utf-8', '<script type="module" src="./app/main.js">'],
    ['/ui/ui.css', 'text/css; charset=utf-8', ':root'],
    ['/ui/app/main.js', 'text/javascript; charset=utf-8', 'import'],
    ['/ui/app/pages/invocation.js', 'text/javascript; charset=utf-8', 'export function'],
  ])('serves %s without a token as %s, with CSP and nosniff', async (path, type, content) => {
    const r = await raw(server.adminUrl, 'GET', path);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(type);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe');
    expect(r.body).toContain(content);
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
  });

  it('has no inline script or style in the page', async () => {
    const page = (await raw(server.adminUrl, 'GET', '/ui/')).body;
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const get = await raw(server.adminUrl, 'GET', '/ui/app/main.js');
    const head = await raw(server.adminUrl, 'HEAD', '/ui/app/main.js');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
    expect(head.headers['content-type']).toBe(get.headers['content-type']);
    expect(head.headers['content-security-policy']).toBe(get.headers['content-security-policy']);
  });

  it('redirects /ui to /ui/', async () => {
    const r = await raw(server.adminUrl, 'GET', '/ui');
    expect(r.status).toBe(308);
    expect(r.headers['location']).toBe('/ui/');
  });

  it.each(['POST', 'PUT', 'DELETE', 'PATCH'])('refuses %s with 405', async (method) => {
    const r = await raw(server.adminUrl, method, '/ui/app/main.js');
    expect(r.status).toBe(405);
    expect(r.headers['allow']).toBe('GET, HEAD');
    expect(JSON.parse(r.body)).toMatchObject({ errorCode: 'METHOD_NOT_ALLOWED' });
  });

  it.each([
    '/ui/../invocations',
    '/ui/%2e%2e/invocations',
    '/ui/%2E%2E/%2E%2E/package.json',
    '/ui/app/../../invocations',
    '/ui/app/..%2f..%2f..%2fpackage.json',
    '/ui/app/%2e%2e/%2e%2e/%2e%2e/package.json',
    '/ui//etc/passwd',
    '/ui/ui.css/../../invocations',
    '/ui/app/main.ts',
    '/ui/app/main.d.ts',
    '/ui/app/.tsbuildinfo',
    '/ui/app/main.js%00.css',
    '/ui/app/',
    '/ui/index.html',
    '/ui/static/index.html',
    '/ui/../../../../etc/passwd',
  ])('answers 404 NOT_FOUND to %s (nothing outside the file set)', async (target) => {
    const r = await raw(server.adminUrl, 'GET', target);
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body)).toMatchObject({ errorCode: 'NOT_FOUND' });
    expect(r.body).not.toContain('"invocations"');
  });

  it('keeps the token on every API route', async () => {
    for (const target of ['/invocations', '/ui%2f../invocations', '/UI/', '/ui\\..\\invocations']) {
      const r = await raw(server.adminUrl, 'GET', target);
      expect(r.status, target).toBe(401);
      expect(JSON.parse(r.body)).toMatchObject({ errorCode: 'UNAUTHORIZED' });
    }
    const ok = await raw(server.adminUrl, 'GET', '/invocations', {
      authorization: `Bearer ${TOKEN}`,
    });
    expect(ok.status).toBe(200);
  });
});

describe('admin.ui: false', () => {
  const prefix = newPrefix();
  let server: LatchkeyServer | undefined;
  afterAll(async () => {
    await server?.close();
    await deletePrefix(redisTarget, prefix);
  });

  it('serves no UI: /ui is an ordinary route behind the token', async () => {
    server = await startServer(redisTarget, prefix, uiServices, {
      serve: { admin: { port: 0, token: TOKEN, ui: false } },
    });
    const adminUrl = server.adminUrl!;
    expect((await raw(adminUrl, 'GET', '/ui/')).status).toBe(401);
    const r = await raw(adminUrl, 'GET', '/ui/', { authorization: `Bearer ${TOKEN}` });
    expect(r.status).toBe(404);
  });
});
