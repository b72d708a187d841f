/**
 * The admin API's invocation detail and actions (docs/ADMIN-API.md), through HTTP on a served
 * program against a real Redis:
 *
 * - the failing-workflow story: a workflow whose `ctx.run('charge')` keeps throwing shows the
 *   failing step (name, index), the error's name, message and stack, the attempt, when it failed
 *   and when it is retried next — though the attempt committed nothing; pause, fix, resume
 *   completes it; kill ends another;
 * - a handler that fails outside any step: the failure names no step;
 * - the timeline: kinds, names, times, durations (steps, sleeps, calls), previews cut at
 *   `previewBytes` and whole with `?full=1`, children and the child's `invokedBy`;
 * - restart-as-new with and without a kept prefix (a kept step is not run again);
 * - bulk actions by filter, a dry run changing nothing;
 * - hostile input: a precise status and code, and nothing changed.
 */
import { afterAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import {
  handlers,
  object,
  service,
  workflow,
  type Context,
  type ObjectContext,
  type WorkflowContext,
} from '@latchkey/core';
import { post, until } from './helpers/harness.js';
import { EventLog, admin, scanKeys, setupControl, untilCompleted } from './helpers/control.js';

const redisTarget = inject('redisTarget');
const log = new EventLog(redisTarget);
afterAll(() => log.close());

/** How long the failing step's retries wait (long enough to watch it backing off). */
const RETRY_MS = 1500;

const signup = workflow({
  name: 'signup',
  handlers: {
    run: handlers.workflow.workflow(
      { retryPolicy: { initialInterval: RETRY_MS, maxInterval: RETRY_MS, maxAttempts: 100 } },
      async (ctx: WorkflowContext, email: string) => {
        const id = await ctx.run('charge', async () => {
          const n = await log.add(`charge:${ctx.key}`);
          if ((await log.redis.get(log.flagKey('gateway'))) !== 'up') {
            throw new Error(`gateway down ${n}`);
          }
          return `ch_${n}`;
        });
        return `${email}:${id}`;
      },
    ),
  },
});

const echo = service({
  name: 'echo',
  handlers: {
    hi: async (_ctx: Context, who: string) => `hi ${who}`,
  },
});

const tour = service({
  name: 'tour',
  handlers: {
    /** A slow step with a big result, a sleep, a call and a send; returns a big value. */
    go: async (ctx: Context, n: number) => {
      const big = await ctx.run('slow', async () => {
        await new Promise((r) => setTimeout(r, 60));
        return 'x'.repeat(n);
      });
      await ctx.sleep(120, 'nap');
      const hi = await ctx.serviceClient(echo).hi('call');
      ctx.serviceSendClient(echo).hi('send');
      return `${hi}:${big}`;
    },
    /** Fails outside any step on its first attempt, after one step. */
    outside: handlers.handler(
      { retryPolicy: { initialInterval: 10, maxInterval: 10 } },
      async (ctx: Context) => {
        await ctx.run('before', () => 'b');
        if (ctx.request().attempt === 1) throw new TypeError('broke outside');
        return 'ok';
      },
    ),
    /** Two counted steps. */
    twice: async (ctx: Context, tag: string) => {
      const a = await ctx.run('one', () => log.add(`one:${tag}`));
      const b = await ctx.run('two', () => log.add(`two:${tag}`));
      return [a, b];
    },
  },
});

const box = object({
  name: 'box',
  handlers: {
    /** One counted step and a state write. */
    put: async (ctx: ObjectContext, v: string) => {
      const n = await ctx.run('count', () => log.add(`put:${v}`));
      ctx.set('v', `${v}#${n}`);
      return n;
    },
    /** Holds the key until its awakeable is resolved. */
    hold: async (ctx: ObjectContext) => {
      const a = ctx.awakeable<string>();
      return a.promise;
    },
  },
});

const services = [signup, echo, tour, box];

interface Detail {
  id: string;
  status: string;
  attempts: number;
  createdAt: number;
  firstStartedAt?: number;
  lastStartedAt?: number;
  completedAt?: number;
  nextRetryAt?: number;
  workflowKey?: string;
  invokedBy?: { id: string; index: number };
  restartedFrom?: string;
  input?: { json: string; truncated?: true; bytes?: number };
  result?: { ok: boolean; value?: { json: string; truncated?: true; bytes?: number } };
  failure?: {
    attempt: number;
    at: number;
    step?: { index: number; kind: string; name?: string };
    error: { name: string; message: string; stack?: string; code: string };
    nextRetryAt?: number;
  };
  children: { id: string; index: number; kind: string; target: unknown }[];
  timeline: {
    index: number;
    kind: string;
    name?: string;
    recordedAt?: number;
    durationMs?: number;
    value?: { json: string; truncated?: true; bytes?: number };
    failure?: unknown;
    childId?: string;
    due?: number;
  }[];
}

async function detail(base: string, id: string, query = ''): Promise<Detail> {
  const r = await admin<Detail>(base, 'GET', `/invocations/${id}${query}`);
  if (r.status !== 200)
    throw new Error(`GET ${id} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

async function submit(base: string, path: string, body: unknown): Promise<string> {
  const r = await post(base, path, body);
  expect(r.status).toBeLessThan(300);
  return r.headers.get('x-restate-id') ?? (r.body as { invocationId: string }).invocationId;
}

describe('admin API: invocation detail', () => {
  it('shows where a failing workflow fails, though its attempts commit nothing; pause, fix, resume completes it', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const id = await submit(server.url, '/signup/w1/run/send', 'ada@example.com');
    // Two failed attempts, then backing off before the third.
    const d = await until('two failed attempts', async () => {
      const x = await detail(a, id);
      return x.status === 'backing-off' && x.attempts >= 2 ? x : undefined;
    });
    expect(d.workflowKey).toBe('w1');
    expect(d.timeline).toEqual([]);
    expect(d.failure).toMatchObject({
      attempt: d.attempts,
      step: { index: 0, kind: 'run', name: 'charge' },
      error: { name: 'Error', message: `gateway down ${d.attempts}` },
    });
    expect(d.failure!.error.stack).toContain(`gateway down ${d.attempts}`);
    expect(d.failure!.at).toBeGreaterThanOrEqual(d.lastStartedAt!);
    expect(d.lastStartedAt).toBeGreaterThan(d.firstStartedAt!);
    expect(d.firstStartedAt).toBeGreaterThanOrEqual(d.createdAt);
    // The next retry: no earlier than the failure plus its backoff.
    expect(d.nextRetryAt).toBeGreaterThanOrEqual(d.failure!.at + RETRY_MS);
    expect(d.failure!.nextRetryAt).toBe(d.nextRetryAt);

    expect((await admin(a, 'PATCH', `/invocations/${id}/pause`)).status).toBe(200);
    await log.redis.set(log.flagKey('gateway'), 'up');
    expect((await admin(a, 'PATCH', `/invocations/${id}/resume`)).status).toBe(200);
    await untilCompleted(a, id);
    const done = await detail(a, id);
    expect(done.result).toMatchObject({ ok: true });
    expect(JSON.parse(done.result!.value!.json)).toMatch(/^ada@example.com:ch_\d+$/);
    expect(done.completedAt).toBeGreaterThanOrEqual(done.lastStartedAt!);
    expect(done.nextRetryAt).toBeUndefined();
    expect(done.timeline).toHaveLength(1);
    expect(done.timeline[0]).toMatchObject({ index: 0, kind: 'run', name: 'charge' });
    // Recorded by the attempt after the failures (in the always-suspend mode a later attempt
    // replays it and completes).
    expect(done.timeline[0]!.recordedAt).toBeGreaterThan(d.failure!.at);
    expect(done.timeline[0]!.recordedAt).toBeLessThanOrEqual(done.completedAt!);
    expect(done.timeline[0]!.durationMs).toBeGreaterThanOrEqual(0);
    // The last failure stays on record.
    expect(done.failure?.step).toEqual({ index: 0, kind: 'run', name: 'charge' });
  });

  it('kills a backing-off workflow', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const id = await submit(server.url, '/signup/w2/run/send', 'bob@example.com');
    await until('backing off', async () => (await detail(a, id)).status === 'backing-off');
    expect((await admin(a, 'PATCH', `/invocations/${id}/kill`)).status).toBe(200);
    const d = await untilCompleted(a, id);
    expect(d.outcome).toMatchObject({ ok: false, error: { code: 'KILLED' } });
  });

  it('names no step when a handler fails outside any step', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const r = await post(server.url, '/tour/outside', null);
    expect(r.body).toBe('ok');
    const d = await detail(a, r.headers.get('x-restate-id')!);
    expect(d.attempts).toBe(1);
    expect(d.failure).toMatchObject({
      attempt: 1,
      error: { name: 'TypeError', message: 'broke outside' },
    });
    expect(d.failure!.step).toBeUndefined();
    expect(d.failure!.error.stack).toContain('broke outside');
    expect(d.timeline.map((t) => [t.kind, t.name])).toEqual([['run', 'before']]);
  });

  it('shows the journal as a timeline: times, durations, previews, children and the parent', async () => {
    const { server, prefix } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const r = await post(server.url, '/tour/go', 3000);
    expect(r.status).toBe(200);
    const id = r.headers.get('x-restate-id')!;
    const d = await detail(a, id);
    expect(d.timeline.map((t) => [t.index, t.kind, t.name])).toEqual([
      [0, 'run', 'slow'],
      [1, 'sleep', 'nap'],
      [2, 'call', 'echo/hi'],
      [3, 'send', 'echo/hi'],
    ]);
    const [slow, nap, call, send] = d.timeline as [
      Detail['timeline'][0],
      Detail['timeline'][0],
      Detail['timeline'][0],
      Detail['timeline'][0],
    ];
    for (const t of d.timeline) expect(t.recordedAt).toBeGreaterThanOrEqual(d.firstStartedAt!);
    // The step ran for its 60 ms timer (Date.now may round down by a millisecond).
    expect(slow.durationMs).toBeGreaterThanOrEqual(59);
    expect(slow.value).toEqual({
      json: JSON.stringify('x'.repeat(3000)).slice(0, 1024),
      truncated: true,
      bytes: 3002,
    });
    expect(nap.due).toBeGreaterThanOrEqual(nap.recordedAt! + 120);
    expect(nap.durationMs).toBe(nap.due! - nap.recordedAt!);
    expect(call.value).toEqual({ json: JSON.stringify('hi call') });
    expect(call.durationMs).toBeGreaterThanOrEqual(0);
    expect(call.childId).toMatch(/^inv_/);
    expect(send.childId).toMatch(/^inv_/);
    expect(d.children).toEqual([
      { id: call.childId, index: 2, kind: 'call', target: { service: 'echo', handler: 'hi' } },
      { id: send.childId, index: 3, kind: 'send', target: { service: 'echo', handler: 'hi' } },
    ]);
    expect(d.input).toEqual({ json: '3000' });
    expect(d.result?.value).toMatchObject({ truncated: true, bytes: 3000 + 'hi call:'.length + 2 });
    const child = await detail(a, call.childId!);
    expect(child.invokedBy).toEqual({ id, index: 2 });
    const sent = await until('the sent child', async () => {
      const r = await admin<Detail>(a, 'GET', `/invocations/${send.childId!}`);
      return r.status === 200 ? r.body : undefined;
    });
    expect(sent.invokedBy).toEqual({ id, index: 3 });
    // Every value whole.
    const full = await detail(a, id, '?full=1');
    expect(full.timeline[0]!.value).toEqual({ json: JSON.stringify('x'.repeat(3000)) });
    expect(JSON.parse(full.result!.value!.json)).toBe(`hi call:${'x'.repeat(3000)}`);

    // An invocation stored before these fields existed still describes, without them.
    const [inv] = (await scanKeys(log.redis, prefix)).filter((k) => k.endsWith(`:inv:${id}`));
    const fields = (await log.redis.hkeys(inv!)).filter((f) =>
      /^(fst|lst|fail|fat|by|rsf|[td]:\d+)$/.test(f),
    );
    expect(fields.length).toBeGreaterThan(0);
    await log.redis.hdel(inv!, ...fields);
    const old = await detail(a, id);
    expect(old.timeline.map((t) => [t.kind, t.recordedAt, t.childId])).toEqual([
      ['run', undefined, undefined],
      ['sleep', undefined, undefined],
      ['call', undefined, call.childId],
      ['send', undefined, send.childId],
    ]);
    expect(old.firstStartedAt).toBeUndefined();
    expect(old.result).toEqual(d.result);
  });
});

describe('admin API: restart-as-new and bulk actions', () => {
  it('restarts a completed invocation, with and without a kept prefix', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const r = await post(server.url, '/tour/twice', 't1');
    expect(r.body).toEqual([1, 2]);
    const id = r.headers.get('x-restate-id')!;
    const kept = await admin<{ invocationId: string; restartedFrom: string }>(
      a,
      'POST',
      `/invocations/${id}/restart-as-new`,
      { body: { keepPrefix: 1 } },
    );
    expect(kept.status).toBe(200);
    expect(kept.body.restartedFrom).toBe(id);
    const k = await untilCompleted(a, kept.body.invocationId);
    // Step 'one' replays its recorded 1; 'two' runs again (the log's third line).
    expect(k.outcome).toEqual({ ok: true, value: JSON.stringify([1, 3]) });
    expect(await log.all()).toEqual(['one:t1', 'two:t1', 'two:t1']);
    expect((await detail(a, kept.body.invocationId)).restartedFrom).toBe(id);
    const fresh = await admin<{ invocationId: string }>(
      a,
      'POST',
      `/invocations/${id}/restart-as-new`,
    );
    expect(fresh.status).toBe(200);
    const f = await untilCompleted(a, fresh.body.invocationId);
    expect(f.outcome).toEqual({ ok: true, value: JSON.stringify([4, 5]) });
  });

  it("restarts an object's invocation behind the invocation holding its key", async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const put = await post(server.url, '/box/k/put', 'a');
    expect(put.body).toBe(1);
    const holder = await submit(server.url, '/box/k/hold/send', null);
    const awk = await until('the holder waits on its awakeable', async () => {
      const j = (await detail(a, holder)) as unknown as { journal: { k: string; id?: string }[] };
      return j.journal.find((e) => e.k === 'awk')?.id;
    });
    const r = await admin<{ invocationId: string }>(
      a,
      'POST',
      `/invocations/${put.headers.get('x-restate-id')!}/restart-as-new`,
    );
    expect(r.status).toBe(200);
    const again = r.body.invocationId;
    // Queued behind the holder: its step has not run again.
    await until('queued', async () => (await detail(a, again)).status === 'queued');
    expect(await log.all()).toEqual(['put:a']);
    const res = await post(server.url, `/restate/awakeables/${awk}/resolve`, 'go');
    expect(res.status).toBeLessThan(300);
    const done = await untilCompleted(a, again);
    expect(done.outcome).toEqual({ ok: true, value: '2' });
    const state = await admin<{ state: Record<string, unknown> }>(
      a,
      'GET',
      '/services/box/state/k',
    );
    expect(state.body.state).toEqual({ v: 'a#2' });
  });

  it('applies an action by filter; a dry run changes nothing', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const ids: string[] = [];
    for (const who of ['a', 'b', 'c']) {
      const r = await post(server.url, '/echo/hi', who);
      ids.push(r.headers.get('x-restate-id')!);
    }
    const other = (await post(server.url, '/tour/twice', 'x')).headers.get('x-restate-id')!;
    const dry = await admin<{
      dryRun: boolean;
      matched: number;
      applied: string[];
      failed: unknown[];
    }>(a, 'POST', '/invocations/bulk/purge?service=echo&status=completed', {
      body: { dryRun: true },
    });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ dryRun: true, matched: 3, failed: [] });
    expect([...dry.body.applied].sort()).toEqual([...ids].sort());
    for (const id of ids) expect((await admin(a, 'GET', `/invocations/${id}`)).status).toBe(200);
    const some = await admin<{ matched: number; applied: string[] }>(
      a,
      'POST',
      '/invocations/bulk/purge?service=echo',
      { body: { limit: 2 } },
    );
    expect(some.body).toMatchObject({ dryRun: false, matched: 2 });
    expect(some.body.applied).toHaveLength(2);
    for (const id of ids) {
      const status = (await admin(a, 'GET', `/invocations/${id}`)).status;
      expect(status).toBe(some.body.applied.includes(id) ? 404 : 200);
    }
    expect((await admin(a, 'GET', `/invocations/${other}`)).status).toBe(200);
    // A refused item is reported, not fatal: pausing completed invocations.
    const refused = await admin<{ applied: string[]; failed: { id: string; code: string }[] }>(
      a,
      'POST',
      '/invocations/bulk/pause?service=tour&handler=twice',
    );
    expect(refused.body.applied).toEqual([]);
    expect(refused.body.failed).toEqual([
      { id: other, code: 'CONFLICT', message: expect.any(String) },
    ]);
    // Restart-as-new by filter: the matching completed invocation starts again.
    const restarted = await admin<{ applied: string[]; failed: unknown[] }>(
      a,
      'POST',
      '/invocations/bulk/restart-as-new?service=tour&handler=twice&status=completed',
    );
    expect(restarted.body).toMatchObject({
      dryRun: false,
      matched: 1,
      applied: [other],
      failed: [],
    });
    await until(
      'the restarted run',
      async () => (await log.all()).filter((e) => e === 'two:x').length === 2,
    );
  });

  it('refuses hostile input with a precise status and code, and changes nothing', async () => {
    const { server, prefix } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const id = (await post(server.url, '/tour/twice', 'h')).headers.get('x-restate-id')!;
    const running = await submit(server.url, '/signup/w3/run/send', 'c@example.com');
    await until('backing off', async () => (await detail(a, running)).status === 'backing-off');
    const raw = async (path: string, body: string, ctype: string) => {
      const res = await fetch(`${a}${path}`, {
        method: 'POST',
        headers: { 'content-type': ctype },
        body,
      });
      return { status: res.status, body: (await res.json()) as { errorCode: string } };
    };
    const restart = `/invocations/${id}/restart-as-new`;
    const rows: [string, () => Promise<{ status: number; body: unknown }>, number, string][] = [
      [
        'a prefix longer than the journal',
        () => admin(a, 'POST', restart, { body: { keepPrefix: 3 } }),
        400,
        'INVALID_PREFIX',
      ],
      [
        'a negative prefix',
        () => admin(a, 'POST', restart, { body: { keepPrefix: -1 } }),
        400,
        'INVALID_PREFIX',
      ],
      [
        'a prefix that is no number',
        () => admin(a, 'POST', restart, { body: { keepPrefix: '1' } }),
        400,
        'INVALID_PREFIX',
      ],
      [
        'an unknown body field',
        () => admin(a, 'POST', restart, { body: { keep: 1 } }),
        400,
        'INVALID_BODY',
      ],
      [
        'a body that is no object',
        () => admin(a, 'POST', restart, { body: [1] }),
        400,
        'INVALID_BODY',
      ],
      [
        'malformed JSON',
        () => raw(restart, '{"keepPrefix":', 'application/json'),
        400,
        'INVALID_JSON',
      ],
      [
        'a text body',
        () => raw(restart, 'keepPrefix=1', 'text/plain'),
        415,
        'UNSUPPORTED_CONTENT_TYPE',
      ],
      [
        'restart of a running invocation',
        () => admin(a, 'POST', `/invocations/${running}/restart-as-new`),
        409,
        'CONFLICT',
      ],
      [
        'restart of an unknown invocation',
        () => admin(a, 'POST', `/invocations/inv_00${'A'.repeat(20)}/restart-as-new`),
        404,
        'NOT_FOUND',
      ],
      [
        'restart of a malformed id',
        () => admin(a, 'POST', '/invocations/not-an-id/restart-as-new'),
        404,
        'NOT_FOUND',
      ],
      [
        'an unknown bulk operation',
        () => admin(a, 'POST', '/invocations/bulk/explode?service=tour'),
        404,
        'NOT_FOUND',
      ],
      [
        'a bulk action without a filter',
        () => admin(a, 'POST', '/invocations/bulk/kill'),
        400,
        'INVALID_FILTER',
      ],
      [
        'a handler filter without service',
        () => admin(a, 'POST', '/invocations/bulk/kill?handler=twice'),
        400,
        'INVALID_FILTER',
      ],
      [
        'an unknown filter',
        () => admin(a, 'POST', '/invocations/bulk/kill?colour=red'),
        400,
        'INVALID_FILTER',
      ],
      [
        'a malformed time filter',
        () => admin(a, 'POST', '/invocations/bulk/kill?createdAfter=yesterday'),
        400,
        'INVALID_FILTER',
      ],
      [
        'an unknown status',
        () => admin(a, 'POST', '/invocations/bulk/kill?status=zombie'),
        400,
        'INVALID_STATUS',
      ],
      [
        'a zero limit',
        () => admin(a, 'POST', '/invocations/bulk/kill?service=tour', { body: { limit: 0 } }),
        400,
        'INVALID_BODY',
      ],
      [
        'a limit above the largest',
        () =>
          admin(a, 'POST', '/invocations/bulk/kill?service=tour', { body: { limit: 1_000_000 } }),
        400,
        'INVALID_BODY',
      ],
      [
        'a dry run that is no boolean',
        () => admin(a, 'POST', '/invocations/bulk/kill?service=tour', { body: { dryRun: 'yes' } }),
        400,
        'INVALID_BODY',
      ],
    ];
    const keysBefore = (await scanKeys(log.redis, prefix)).sort();
    const before = await detail(a, id);
    for (const [what, send, status, code] of rows) {
      const r = await send();
      expect([what, r.status, (r.body as { errorCode?: string }).errorCode]).toEqual([
        what,
        status,
        code,
      ]);
    }
    // Nothing changed: no key added or removed, the invocations as they were.
    expect((await scanKeys(log.redis, prefix)).filter((k) => !k.includes(':{q')).sort()).toEqual(
      keysBefore.filter((k) => !k.includes(':{q')),
    );
    expect(await detail(a, id)).toEqual(before);
    expect((await detail(a, running)).status).not.toBe('completed');
  });
});
