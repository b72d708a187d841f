/**
 * Registering push deployments through the admin API (`/deployments`, Restate's shape), against the
 * real Redis, with the function a separate process (test/fixtures/deployment.mjs):
 * - `POST /deployments` discovers the endpoint and stores the registration; a worker process that
 *   was never told about it learns it from the store when an invocation of its services arrives,
 *   and runs it by pushing; `GET` lists and shows it (header names only), `DELETE` removes it,
 *   after which its services are 404 again;
 * - a re-registration with changed handlers is refused (409) unless forced; a deployment serving a
 *   service the engine serves already is refused (409);
 * - hostile registrations get a precise error and store nothing; clients naming services nobody
 *   serves (HTTP and WebSocket) get 404 and cost at most one read of the registrations a second.
 */
import { describe, expect, inject, it } from 'vitest';
import type { LatchkeyServer } from '@latchkey/core';
import { freePort } from '@latchkey/redis-store/testing';
import { admin, startAdminServer } from './helpers/control.js';
import { startMonitor } from './helpers/monitor.js';
import { WebSocket } from 'ws';
import { localgreeter } from './fixtures/push-local.mjs';
import {
  deletePrefix,
  newPrefix,
  post,
  spawnWorker,
  until,
  type WorkerProcess,
} from './helpers/harness.js';

const redisTarget = inject('redisTarget');

interface Env {
  prefix: string;
  port: number;
  engine: LatchkeyServer & { adminUrl: string };
  spawnFn(services: string): Promise<WorkerProcess>;
  worker(): Promise<WorkerProcess>;
}

async function setup(onTestFinished: (fn: () => Promise<void>) => void): Promise<Env> {
  const prefix = newPrefix();
  const port = await freePort();
  const procs: WorkerProcess[] = [];
  const env = { prefix, port } as Env;
  onTestFinished(async () => {
    await env.engine?.close().catch(() => undefined);
    await Promise.all(procs.map((w) => w.kill('SIGKILL').catch(() => undefined)));
    await deletePrefix(redisTarget, prefix);
  });
  env.spawnFn = async (services) => {
    const w = await spawnWorker(redisTarget, prefix, {
      script: 'deployment.mjs',
      env: { LK_SERVICES: services, LK_PORT: String(port) },
    });
    procs.push(w);
    return w;
  };
  env.worker = async () => {
    // Deployments are read only when a lookup misses (no periodic refresh): what the test checks.
    const w = await spawnWorker(redisTarget, prefix, {
      env: { LK_SERVICES: 'push-local.mjs', LK_SERVE: JSON.stringify({ deploymentRefreshMs: 0 }) },
    });
    procs.push(w);
    return w;
  };
  // The ingress and the admin API in this process, without workers of its own; it serves
  // localgreeter (run by the worker processes).
  env.engine = await startAdminServer(redisTarget, prefix, [localgreeter], {
    serve: { workers: false },
  });
  return env;
}

interface Shown {
  id: string;
  uri: string;
  headers?: string[];
  services: { name: string }[];
}

describe('push deployments through the admin API', () => {
  it('registers, serves from another process, lists, shows and removes a deployment', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished);
    await env.spawnFn('push-services.mjs');
    // A worker process running before the registration: it learns it from the store when an
    // invocation of its services reaches it.
    await env.worker();
    const uri = `http://127.0.0.1:${env.port}`;
    const reg = await admin<Shown>(env.engine.adminUrl, 'POST', '/deployments', {
      body: {
        uri,
        headers: { 'x-api-key': 'secret-value' },
      },
    });
    expect(reg.status).toBe(201);
    expect(reg.body.id).toMatch(/^dp_/);
    expect(reg.body.headers).toEqual(['x-api-key']);
    expect(reg.body.services.map((s) => s.name)).toEqual([
      'pushflow',
      'pushapproval',
      'pushcounter',
      'pushcaller',
      'pushslow',
      'pushrelay',
    ]);
    const r = await post(env.engine.url, '/pushcounter/c1/add', 3);
    expect(r).toMatchObject({ status: 200, body: 3 });

    // Each change moves the registrations' change count (what the periodic refresh reads).
    const records = env.engine.store.deployments!;
    const v1 = await records.version!();
    expect(v1).not.toBe('0');
    const list = await admin<{ deployments: Shown[] }>(env.engine.adminUrl, 'GET', '/deployments');
    expect(list.body.deployments.map((d) => [d.id, d.uri])).toEqual([[reg.body.id, uri]]);
    expect(JSON.stringify(list.body)).not.toContain('secret-value');
    const one = await admin<Shown>(env.engine.adminUrl, 'GET', `/deployments/${reg.body.id}`);
    expect(one).toMatchObject({ status: 200, body: { id: reg.body.id, uri } });
    // The same registration again changes nothing; new settings replace the old, without force.
    const again = await admin(env.engine.adminUrl, 'POST', '/deployments', {
      body: { uri, headers: { 'x-api-key': 'secret-value' } },
    });
    expect(again.status).toBe(200);
    const rotated = await admin<Shown>(env.engine.adminUrl, 'POST', '/deployments', {
      body: { uri, headers: { 'x-api-key': 'rotated', 'x-other': '1' } },
    });
    expect(rotated).toMatchObject({ status: 201, body: { headers: ['x-api-key', 'x-other'] } });
    expect(await records.version!()).not.toBe(v1);

    // A workflow of it waits on its promise: the deployment cannot go unless forced.
    const waiting = await post(env.engine.url, '/pushapproval/p1/run/send', undefined);
    const waitingId = (waiting.body as { invocationId: string }).invocationId;
    await until('the workflow waits', async () => {
      return (await env.engine.store.describe(waitingId))?.status === 'suspended';
    });
    const busy = await admin(env.engine.adminUrl, 'DELETE', `/deployments/${reg.body.id}`);
    expect(busy).toMatchObject({ status: 409, body: { errorCode: 'CONFLICT' } });
    expect((busy.body as { message: string }).message).toContain('1 invocations');
    const del = await admin(
      env.engine.adminUrl,
      'DELETE',
      `/deployments/${reg.body.id}?force=true`,
    );
    expect(del).toMatchObject({ status: 200, body: { id: reg.body.id, removed: true } });
    const gone = await post(env.engine.url, '/pushcounter/c1/add', 1);
    expect(gone).toMatchObject({ status: 404, body: { errorCode: 'NOT_FOUND' } });
    expect(
      await admin(env.engine.adminUrl, 'DELETE', `/deployments/${reg.body.id}?force=true`),
    ).toMatchObject({ status: 404, body: { errorCode: 'NOT_FOUND' } });
    expect(
      (await admin<{ deployments: Shown[] }>(env.engine.adminUrl, 'GET', '/deployments')).body,
    ).toEqual({ deployments: [] });
  });

  it('refuses changed handlers unless forced, and services served already', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished);
    const fn = await env.spawnFn('push-services.mjs');
    const uri = `http://127.0.0.1:${env.port}`;
    const first = await admin<Shown>(env.engine.adminUrl, 'POST', '/deployments', {
      body: { uri },
    });
    expect(first.status).toBe(201);
    // The function is redeployed with one service more.
    await fn.kill('SIGKILL');
    await env.spawnFn('push-services.mjs,push-other.mjs');
    const refused = await admin(env.engine.adminUrl, 'POST', '/deployments', { body: { uri } });
    expect(refused).toMatchObject({ status: 409, body: { errorCode: 'CONFLICT' } });
    expect((refused.body as { message: string }).message).toContain('pushecho');
    const forced = await admin<Shown>(env.engine.adminUrl, 'POST', '/deployments', {
      body: {
        uri,
        force: true,
      },
    });
    expect(forced.status).toBe(201);
    expect(forced.body.services.map((s) => s.name)).toContain('pushecho');

    // A second deployment serving a service the first one serves already, and one serving a
    // service of the engine's own code.
    for (const services of ['push-other.mjs', 'push-local.mjs']) {
      const other = await spawnWorker(redisTarget, env.prefix, {
        script: 'deployment.mjs',
        env: { LK_SERVICES: services },
      });
      onTestFinished(() => other.kill('SIGKILL'));
      const clash = await admin(env.engine.adminUrl, 'POST', '/deployments', {
        body: { uri: `http://127.0.0.1:${other.port}` },
      });
      expect(clash).toMatchObject({ status: 409, body: { errorCode: 'CONFLICT' } });
      expect((clash.body as { message: string }).message).toContain(
        services === 'push-other.mjs' ? 'pushecho' : 'localgreeter',
      );
    }
    const list = await admin<{ deployments: Shown[] }>(env.engine.adminUrl, 'GET', '/deployments');
    expect(list.body.deployments.map((d) => d.uri)).toEqual([uri]);
  });

  it('reads the registrations at most once a second for clients naming unknown services', async ({
    onTestFinished,
  }) => {
    const env = await setup(onTestFinished);
    const mon = await startMonitor(redisTarget);
    onTestFinished(() => Promise.resolve(mon.close()));
    await mon.caughtUp();
    const from = mon.commands.length;
    const key = `${env.prefix}:deployments`;
    const t0 = Date.now();
    // 60 requests and frames naming services nobody serves, as fast as they go: each is 404.
    const http = await Promise.all(
      Array.from({ length: 40 }, (_, i) => post(env.engine.url, `/nobody${i}/run`, 1)),
    );
    expect(http.map((r) => r.status)).toEqual(Array.from({ length: 40 }, () => 404));
    const ws = new WebSocket(`${env.engine.url.replace('http', 'ws')}/ws`);
    onTestFinished(() => Promise.resolve(ws.close()));
    await new Promise((r) => ws.once('open', r));
    const errors = new Promise<unknown[]>((resolve) => {
      const got: unknown[] = [];
      ws.on('message', (m: Buffer) => {
        got.push(JSON.parse(m.toString()));
        if (got.length === 20) resolve(got);
      });
    });
    for (let i = 0; i < 20; i++) {
      ws.send(JSON.stringify({ id: `c${i}`, type: 'call', service: `nobody${i}`, handler: 'run' }));
    }
    expect((await errors).every((f) => (f as { type: string }).type === 'error')).toBe(true);
    const seconds = Math.ceil((Date.now() - t0) / 1000);
    await mon.caughtUp();
    const reads = mon.commands
      .slice(from)
      .filter((c) => c.source !== 'lua' && c.args.includes(key)).length;
    // One read for the first miss and at most one more per second since: not one per request.
    expect(reads).toBeGreaterThanOrEqual(1);
    expect(reads).toBeLessThanOrEqual(1 + seconds);
    expect(await admin(env.engine.adminUrl, 'GET', '/health')).toMatchObject({ status: 200 });
  });

  it('answers hostile registrations precisely and stores nothing', async ({ onTestFinished }) => {
    const env = await setup(onTestFinished);
    // Nothing listens there.
    const dead = `http://127.0.0.1:${await freePort()}`;
    const cases: [unknown, number, string][] = [
      [[], 400, 'INVALID_BODY'],
      [{ url: 'http://x' }, 400, 'INVALID_BODY'],
      [{ uri: 'ftp://127.0.0.1/x' }, 400, 'INVALID_BODY'],
      [{ uri: 'not a url' }, 400, 'INVALID_BODY'],
      [{ uri: dead, headers: { 'bad header': 'x' } }, 400, 'INVALID_BODY'],
      [{ uri: dead, timeoutMs: -1 }, 400, 'INVALID_BODY'],
      [{ uri: dead, force: 'yes' }, 400, 'INVALID_BODY'],
      [{ uri: dead }, 502, 'DISCOVERY_FAILED'],
      // An ingress, not a deployment: it answers discovery with a 404.
      [{ uri: env.engine.url }, 502, 'DISCOVERY_FAILED'],
    ];
    for (const [body, status, code] of cases) {
      const r = await admin(env.engine.adminUrl, 'POST', '/deployments', { body: body });
      expect([JSON.stringify(body), r.status, (r.body as { errorCode: string }).errorCode]).toEqual(
        [JSON.stringify(body), status, code],
      );
    }
    const text = await fetch(`${env.engine.adminUrl}/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ uri: dead }),
    });
    expect(text.status).toBe(415);
    expect(await admin(env.engine.adminUrl, 'GET', '/deployments')).toMatchObject({
      status: 200,
      body: { deployments: [] },
    });
    expect(await admin(env.engine.adminUrl, 'GET', '/health')).toMatchObject({ status: 200 });
  });
});
