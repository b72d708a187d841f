/**
 * The admin API (serve({ admin })) and the invocation controls behind it:
 *
 * - bearer-token auth (401 without it; GET /health stays open);
 * - GET /invocations/{id}: status, target, attempts, last failure, journal, outcome;
 * - GET/POST /services/{svc}/state/{key}: read and patch state (null deletes),
 *   refused with 409 while an exclusive handler holds the key;
 * - retry exhaustion: retryPolicy { maxAttempts: 2 } pauses the invocation (status,
 *   lastFailure), PATCH .../resume after the fault is fixed completes it;
 *   onMaxAttempts: 'kill' fails it with a 500;
 * - PATCH .../pause of a waiting invocation: it makes no progress until resumed.
 */
import { afterAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import {
  handlers,
  object,
  service,
  type Context,
  type ObjectContext,
  type ObjectSharedContext,
} from '@latchkey/core';
import { get, post, until } from './helpers/harness.js';
import {
  EventLog,
  admin,
  attach,
  describeInv,
  listInv,
  setupControl,
  untilCompleted,
  untilStatus,
} from './helpers/control.js';

const redisTarget = inject('redisTarget');
const log = new EventLog(redisTarget);
afterAll(() => log.close());

const TOKEN = 's3cret-token';
const BLOCKED = process.env['LATCHKEY_INACTIVITY_TIMEOUT'] === '0' ? 'suspended' : 'running';
/** How long a paused invocation is watched for progress it must not make (> lease renewal period). */
const QUIET_MS = 1500;

// ------------------------------------------------------------------ services

const acct = object({
  name: 'acct',
  handlers: {
    /** One step and one state write; the first attempt then fails (retryable). */
    record: async (ctx: ObjectContext, input: string) => {
      const v = await ctx.run('a', () => `step-${input}`);
      ctx.set('x', v);
      if (ctx.request().attempt === 1) throw new Error('transient failure');
      return v;
    },
    /** Holds the key until its awakeable is resolved. */
    hold: async (ctx: ObjectContext) => {
      const a = ctx.awakeable<string>();
      await ctx.run('published', () => log.add(`hold:${ctx.request().id}:${a.id}`));
      const v = await a.promise;
      await ctx.run('after', () => log.add(`after:${ctx.request().id}:${v}`));
      return `held:${v}`;
    },
    read: handlers.object.shared(async (ctx: ObjectSharedContext) => ({
      a: await ctx.get('a'),
      b: await ctx.get('b'),
      keys: await ctx.stateKeys(),
    })),
  },
});

const flaky = service({
  name: 'flaky',
  handlers: {
    /** Fails (retryable) while the flag is unset; 2 attempts, then pause (the default). */
    work: handlers.handler(
      { retryPolicy: { maxAttempts: 2, initialInterval: 10 } },
      async (ctx: Context) => {
        const id = ctx.request().id;
        const v = await ctx.run('check', async () => {
          await log.add(`try:${id}`);
          const flag = await log.redis.get(log.flagKey('fixed'));
          if (flag === null) throw new Error('flag not set: the fault is still there');
          return flag;
        });
        return `done:${v}`;
      },
    ),
    /** Always fails (retryable); 2 attempts, then the invocation is failed. */
    doomed: handlers.handler(
      { retryPolicy: { maxAttempts: 2, initialInterval: 10, onMaxAttempts: 'kill' } },
      async (ctx: Context) => {
        const id = ctx.request().id;
        return await ctx.run('try', async () => {
          await log.add(`doomed:${id}`);
          throw new Error('always broken');
        });
      },
    ),
  },
});

const services = [acct, flaky];

// ------------------------------------------------------------------ tests

describe('admin API', () => {
  it('requires the bearer token, except on GET /health', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished, {
      token: TOKEN,
    });
    const a = server.adminUrl;
    const health = await admin(a, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok' });

    const r = await post(server.url, '/acct/k1/read');
    expect(r.status).toBe(200);
    const id = r.headers.get('x-restate-id')!;
    for (const [method, path, body] of [
      ['GET', '/invocations', undefined],
      ['GET', `/invocations/${id}`, undefined],
      ['PATCH', `/invocations/${id}/purge`, undefined],
      ['GET', '/services/acct/state/k1', undefined],
      ['POST', '/services/acct/state/k1', { a: 1 }],
    ] as const) {
      const none = await admin(a, method, path, body === undefined ? {} : { body });
      expect(none.status, `${method} ${path} without a token`).toBe(401);
      expect(none.body).toMatchObject({ code: 401, errorCode: 'UNAUTHORIZED' });
      const wrong = await admin(a, method, path, {
        authorization: `Bearer ${TOKEN}x`,
        ...(body === undefined ? {} : { body }),
      });
      expect(wrong.status, `${method} ${path} with a wrong token`).toBe(401);
      const basic = await admin(a, method, path, {
        authorization: `Basic ${TOKEN}`,
        ...(body === undefined ? {} : { body }),
      });
      expect(basic.status, `${method} ${path} with a non-bearer scheme`).toBe(401);
    }
    // Nothing was changed by the refused requests.
    expect((await admin(a, 'GET', `/invocations/${id}`, { token: TOKEN })).status).toBe(200);
    expect((await admin(a, 'GET', '/services/acct/state/k1', { token: TOKEN })).body).toEqual({
      service: 'acct',
      key: 'k1',
      state: {},
    });
    const list = await admin<{ invocations: { id: string }[] }>(a, 'GET', '/invocations', {
      token: TOKEN,
    });
    expect(list.status).toBe(200);
    expect(list.body.invocations.map((i) => i.id)).toContain(id);
  });

  it('GET /invocations/{id} shows status, target, attempts, last failure, journal and outcome', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const r = await post(server.url, '/acct/k2/record', 'one');
    expect(r.status).toBe(200);
    expect(r.body).toBe('step-one');
    const id = r.headers.get('x-restate-id')!;
    const d = await admin<Record<string, unknown>>(a, 'GET', `/invocations/${id}`);
    expect(d.status).toBe(200);
    expect(d.body).toMatchObject({
      id,
      status: 'completed',
      mode: 'exclusive',
      target: { service: 'acct', handler: 'record', key: 'k2' },
      lastFailure: { message: 'transient failure' },
      outcome: { ok: true, value: JSON.stringify('step-one') },
      journal: [
        { k: 'run', n: 'a', v: 'step-one' },
        { k: 'set', n: 'x', v: 'step-one' },
      ],
    });
    // One failed attempt before the one that completed.
    expect(d.body['attempts']).toBeGreaterThanOrEqual(1);
    expect(d.body['createdAt']).toBeGreaterThan(0);
    // Filters of the list.
    expect(
      (await listInv(a, { service: 'acct', key: 'k2', status: 'completed' })).map((i) => i.id),
    ).toEqual([id]);
    expect(await listInv(a, { service: 'acct', key: 'other' })).toEqual([]);
    expect(await listInv(a, { service: 'flaky' })).toEqual([]);
    // Errors.
    expect((await admin(a, 'GET', '/invocations/inv_00AAAAAAAAAAAAAAAAAAAA')).status).toBe(404);
    expect((await admin(a, 'GET', '/invocations/not-an-id')).status).toBe(404);
    expect((await admin(a, 'GET', '/invocations?status=bogus')).status).toBe(400);
    expect((await admin(a, 'PATCH', `/invocations/${id}/explode`)).status).toBe(404);
  });

  it('reads and patches state (null deletes), and refuses a patch while an exclusive handler holds the key', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const p1 = await admin(a, 'POST', '/services/acct/state/k3', {
      body: { a: 1, b: { deep: ['two'] } },
    });
    expect(p1.status).toBe(200);
    expect(p1.body).toEqual({ service: 'acct', key: 'k3', patched: ['a', 'b'] });
    expect((await admin(a, 'GET', '/services/acct/state/k3')).body).toEqual({
      service: 'acct',
      key: 'k3',
      state: { a: 1, b: { deep: ['two'] } },
    });
    // Handlers see the patched state.
    expect((await post(server.url, '/acct/k3/read')).body).toEqual({
      a: 1,
      b: { deep: ['two'] },
      keys: ['a', 'b'],
    });
    // null deletes.
    expect((await admin(a, 'POST', '/services/acct/state/k3', { body: { a: null } })).status).toBe(
      200,
    );
    expect((await admin(a, 'GET', '/services/acct/state/k3')).body).toEqual({
      service: 'acct',
      key: 'k3',
      state: { b: { deep: ['two'] } },
    });
    expect((await post(server.url, '/acct/k3/read')).body).toEqual({
      a: null,
      b: { deep: ['two'] },
      keys: ['b'],
    });
    // Bad bodies change nothing.
    expect((await admin(a, 'POST', '/services/acct/state/k3', { body: [1, 2] })).status).toBe(400);
    expect((await admin(a, 'POST', '/services/acct/state/k3', { body: 'text' })).status).toBe(400);

    // An exclusive handler holds the key: a patch is refused with 409, the state is unchanged.
    const sent = await post(server.url, '/acct/k3/hold/send');
    const holdId = (sent.body as { invocationId: string }).invocationId;
    const held = await log.waitFor(new RegExp(`^hold:${holdId}:`));
    await untilStatus(a, holdId, [BLOCKED]);
    const busy = await admin(a, 'POST', '/services/acct/state/k3', {
      body: { b: 'overwritten', c: 3 },
    });
    expect(busy.status).toBe(409);
    expect(busy.body).toMatchObject({ code: 409, errorCode: 'KEY_BUSY' });
    expect((await admin(a, 'GET', '/services/acct/state/k3')).body).toEqual({
      service: 'acct',
      key: 'k3',
      state: { b: { deep: ['two'] } },
    });

    // Once the handler is done, the key can be patched again.
    const awk = held.split(':').slice(2).join(':');
    expect((await post(server.url, `/restate/awakeables/${awk}/resolve`, 'go')).status).toBe(202);
    expect((await attach(server.url, holdId)).body).toBe('held:go');
    expect(
      (await admin(a, 'POST', '/services/acct/state/k3', { body: { b: 'three' } })).status,
    ).toBe(200);
    expect((await admin(a, 'GET', '/services/acct/state/k3')).body).toEqual({
      service: 'acct',
      key: 'k3',
      state: { b: 'three' },
    });
  });
});

describe('retry exhaustion, pause and resume', () => {
  it('pauses after maxAttempts, and a resume after the fault is fixed completes the invocation', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const sent = await post(server.url, '/flaky/work/send');
    expect(sent.status).toBe(202);
    const id = (sent.body as { invocationId: string }).invocationId;

    const paused = await untilStatus(a, id, ['paused']);
    expect(paused.attempts).toBe(2);
    expect(paused.lastFailure).toMatchObject({ message: 'flag not set: the fault is still there' });
    expect(paused.outcome).toBeUndefined();
    expect((await log.all()).filter((e) => e === `try:${id}`)).toHaveLength(2);
    expect((await listInv(a, { service: 'flaky', status: 'paused' })).map((i) => i.id)).toEqual([
      id,
    ]);
    expect((await get(server.url, `/restate/invocation/${id}/output`)).status).toBe(470);

    // Fix the fault, resume.
    await log.redis.set(log.flagKey('fixed'), 'fixed');
    const res = await admin(a, 'PATCH', `/invocations/${id}/resume`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ invocationId: id, resume: true });
    const done = await untilCompleted(a, id, 20_000);
    const att = await attach(server.url, id);
    expect(att.status).toBe(200);
    expect(att.body).toBe('done:fixed');
    expect(done.outcome).toEqual({ ok: true, value: JSON.stringify('done:fixed') });
    expect(done.journal).toEqual([{ k: 'run', n: 'check', v: 'fixed' }]);
    expect((await log.all()).filter((e) => e === `try:${id}`)).toHaveLength(3);
    // Resuming what is not paused is a conflict.
    expect((await admin(a, 'PATCH', `/invocations/${id}/resume`)).status).toBe(409);
  });

  it("onMaxAttempts: 'kill' fails the invocation with a 500 after maxAttempts", async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const r = await post(server.url, '/flaky/doomed');
    expect(r.status).toBe(500);
    expect((r.body as { message: string }).message).toContain('always broken');
    const id = r.headers.get('x-restate-id')!;
    const d = await untilCompleted(server.adminUrl, id);
    expect(d.outcome).toMatchObject({
      ok: false,
      error: { message: 'always broken', status: 500 },
    });
    expect((await log.all()).filter((e) => e === `doomed:${id}`)).toHaveLength(2);
    expect((await get(server.url, `/restate/invocation/${id}/output`)).status).toBe(500);
  });

  it('PATCH pause parks a waiting invocation: no progress until resumed', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const sent = await post(server.url, '/acct/k4/hold/send');
    const id = (sent.body as { invocationId: string }).invocationId;
    const held = await log.waitFor(new RegExp(`^hold:${id}:`));
    await untilStatus(a, id, [BLOCKED]);

    const p = await admin(a, 'PATCH', `/invocations/${id}/pause`);
    expect(p.status).toBe(200);
    expect((await describeInv(a, id))?.status).toBe('paused');
    // It keeps its key (a patch is still refused) and a second pause is a conflict.
    expect((await admin(a, 'POST', '/services/acct/state/k4', { body: { z: 1 } })).status).toBe(
      409,
    );
    expect((await admin(a, 'PATCH', `/invocations/${id}/pause`)).status).toBe(409);

    // The awakeable is resolved while paused: the completion is kept, nothing runs.
    const awk = held.split(':').slice(2).join(':');
    expect((await post(server.url, `/restate/awakeables/${awk}/resolve`, 'later')).status).toBe(
      202,
    );
    await new Promise((res) => setTimeout(res, QUIET_MS));
    const still = await describeInv(a, id);
    expect(still?.status).toBe('paused');
    expect(still?.journal?.map((e) => e.k)).toEqual(['awk', 'run']);
    expect((await log.all()).filter((e) => e.startsWith(`after:${id}`))).toEqual([]);

    expect((await admin(a, 'PATCH', `/invocations/${id}/resume`)).status).toBe(200);
    await untilCompleted(a, id);
    expect((await attach(server.url, id)).body).toBe('held:later');
    expect((await log.all()).filter((e) => e.startsWith(`after:${id}`))).toEqual([
      `after:${id}:later`,
    ]);
    await until(
      'the key to be free',
      async () =>
        (await admin(a, 'POST', '/services/acct/state/k4', { body: { z: 1 } })).status === 200,
    );
  });
});
