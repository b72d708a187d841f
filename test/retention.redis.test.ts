/**
 * Retention: `workflowRetention` / `journalRetention` become Redis TTLs at
 * completion. A finished workflow's output stays readable (by invocation id and by
 * workflow key) until its retention ends, never less, and afterwards every Redis key
 * of that workflow is gone; the same holds for a killed workflow run (its 409 outcome).
 * `PATCH /invocations/{id}/purge` removes a completed
 * invocation (and a workflow's run record and state) at once, and refuses a running one.
 *
 * Key names come from the layout in packages/redis-store/src/keys.ts: every key of
 * an invocation ends with its id, every key of a workflow key contains
 * `<svc>:<key>` (percent-encoded), and the due/outbox zsets hold ids as members.
 */
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { Keys, enc, partitionOf, partitionOfId } from '@latchkey/redis-store';
import {
  service,
  workflow,
  type Context,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';
import { post, until } from './helpers/harness.js';
import {
  fileClients,
  admin,
  attach,
  describeInv,
  scanKeys,
  setupControl,
  timedGet,
  untilCompleted,
  type Answer,
} from './helpers/control.js';

const redisTarget = inject('redisTarget');
const { log, redis } = fileClients(redisTarget);

/** Partitions of the store (the default); ids name their partition. */
const PARTITIONS = 16;
const RETENTION_MS = 2000;
const JOURNAL_RETENTION_MS = 200;

// ------------------------------------------------------------------ services

const retained = workflow({
  name: 'retained',
  options: { workflowRetention: RETENTION_MS, journalRetention: JOURNAL_RETENTION_MS },
  handlers: {
    run: async (ctx: WorkflowContext, input: string) => {
      ctx.set('input', input);
      const go = await ctx.promise<string>('go').get();
      const step = await ctx.run('step', () => `step:${go}`);
      return { input, go, step };
    },
    approve: async (ctx: WorkflowSharedContext, v: string) => {
      await ctx.promise<string>('go').resolve(v);
      return 'approved';
    },
  },
});

const plain = service({
  name: 'plain',
  handlers: {
    echo: async (ctx: Context, v: string) => ctx.run('echo', () => `echo:${v}`),
  },
});

const services = [retained, plain];

// ------------------------------------------------------------------ helpers

/** The completion time (store clock, ms) recorded in the invocation hash. */
async function finishedAt(prefix: string, id: string): Promise<number> {
  const p = partitionOfId(id, PARTITIONS)!;
  const ft = await redis.hget(new Keys(prefix).inv(p, id), 'ft');
  expect(ft).not.toBeNull();
  return Number(ft);
}

/** Keys under `prefix` that belong to these invocations or to the object/workflow key `svc/key`. */
async function keysOf(
  prefix: string,
  ids: string[],
  svc?: string,
  key?: string,
): Promise<string[]> {
  const all = await scanKeys(redis, prefix);
  const suffix = svc !== undefined && key !== undefined ? `:${enc(svc)}:${enc(key)}` : undefined;
  return all.filter(
    (k) =>
      ids.some((id) => k.includes(id)) ||
      (suffix !== undefined && (k.endsWith(suffix) || k.includes(`${suffix}:`))),
  );
}

/** Members of the partitions' due/outbox zsets that name these invocations. */
async function scheduledOf(prefix: string, ids: string[]): Promise<string[]> {
  const k = new Keys(prefix);
  const out: string[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    for (const z of [k.due(p), k.outbox(p)]) {
      for (const m of await redis.zrange(z, 0, -1))
        if (ids.some((id) => m.includes(id))) out.push(`${z} ${m}`);
    }
  }
  return out;
}

/** Polls until no key of the invocations / workflow key is left; the error lists what is left. */
async function untilNoKeys(
  prefix: string,
  ids: string[],
  svc: string,
  key: string,
  timeoutMs: number,
): Promise<void> {
  let left: string[] = [];
  try {
    await until(
      'every key of the workflow to expire',
      async () => {
        left = [...(await keysOf(prefix, ids, svc, key)), ...(await scheduledOf(prefix, ids))];
        return left.length === 0;
      },
      timeoutMs,
      100,
    );
  } catch (e) {
    const ttls = await Promise.all(
      left.map(async (k) => `${k} (pttl ${await redis.pttl(k.split(' ')[0]!)})`),
    );
    throw new Error(`${(e as Error).message}; left: ${ttls.join(', ')}`, { cause: e });
  }
}

// ------------------------------------------------------------------ tests

describe('workflow retention', () => {
  it("keeps a run's record in its key's fence, and honours a record an earlier version wrote", async () => {
    const { prefix, server } = await setupControl(redisTarget, services, log, onTestFinished);
    const k = new Keys(prefix);
    const sent = await post(server.url, '/retained/a/run/send', 'hello');
    expect(sent.status).toBe(202);
    const runId = (sent.body as { invocationId: string }).invocationId;
    const pa = partitionOf(PARTITIONS, 'retained', 'a');
    expect(await redis.hget(k.fence(pa, 'retained', 'a'), 'run')).toBe(runId);
    expect((await scanKeys(redis, prefix)).filter((key) => key.includes(':wf:'))).toEqual([]);

    // An earlier version's record (a string key) names a run of workflow id `old`.
    const po = partitionOf(PARTITIONS, 'retained', 'old');
    await redis.set(k.workflow(po, 'retained', 'old'), runId);
    const again = await post(server.url, '/retained/old/run/send', 'other');
    expect(again.body).toEqual({ invocationId: runId, status: 'PreviouslyAccepted' });
    expect(await redis.hget(k.fence(po, 'retained', 'old'), 'run')).toBeNull();
    // Found by its workflow id: running (470), then its output.
    expect((await timedGet(server.url, '/restate/workflow/retained/old/output')).status).toBe(470);
    expect((await post(server.url, '/retained/a/approve', 'yes')).status).toBe(200);
    const expected = { input: 'hello', go: 'yes', step: 'step:yes' };
    expect((await attach(server.url, runId)).body).toEqual(expected);
    const byKey = await timedGet(server.url, '/restate/workflow/retained/old/output');
    expect({ status: byKey.status, body: byKey.body }).toEqual({ status: 200, body: expected });
  });

  it('keeps the output until workflowRetention ends, then every key of the workflow is gone', async () => {
    const { prefix, server } = await setupControl(redisTarget, services, log, onTestFinished);
    const sent = await post(server.url, '/retained/w1/run/send', 'hello');
    expect(sent.status).toBe(202);
    const runId = (sent.body as { invocationId: string }).invocationId;
    await until('the run to wait on its promise', async () =>
      (await describeInv(server.adminUrl, runId))?.journal?.some((e) => e.k === 'pget'),
    );
    const approve = await post(server.url, '/retained/w1/approve', 'yes');
    expect(approve.status).toBe(200);
    const approveId = approve.headers.get('x-restate-id')!;
    const done = await attach(server.url, runId);
    expect(done.status).toBe(200);
    const expected = { input: 'hello', go: 'yes', step: 'step:yes' };
    expect(done.body).toEqual(expected);
    await untilCompleted(server.adminUrl, runId);
    const ft = await finishedAt(prefix, runId);

    // While retained: the output (by id and by workflow key), the state and the run record are there.
    expect((await keysOf(prefix, [runId], 'retained', 'w1')).length).toBeGreaterThan(0);
    expect((await admin(server.adminUrl, 'GET', '/services/retained/state/w1')).body).toMatchObject(
      { state: { input: 'hello' } },
    );
    const again = await post(server.url, '/retained/w1/run/send', 'again');
    expect(again.body).toEqual({ invocationId: runId, status: 'PreviouslyAccepted' });

    // Poll the output until it is gone.
    let lastOk: Answer | undefined;
    let gone: Answer | undefined;
    const deadline = ft + RETENTION_MS + 30_000;
    while (!gone) {
      if (Date.now() > deadline)
        throw new Error(
          `the output of ${runId} is still there ${Date.now() - ft} ms after completion`,
        );
      const byId = await timedGet(server.url, `/restate/invocation/${runId}/output`);
      const byKey = await timedGet(server.url, '/restate/workflow/retained/w1/output');
      if (byId.status === 200) {
        expect(byId.body).toEqual(expected);
        lastOk = byId;
      } else {
        expect(byId.status).toBe(404);
        gone = byId;
        break;
      }
      if (byKey.status === 200) expect(byKey.body).toEqual(expected);
      else expect(byKey.status).toBe(404);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Retained well past the (short) journal retention, right up to the workflow retention …
    expect(lastOk).toBeDefined();
    expect(lastOk!.sentAt - ft).toBeGreaterThanOrEqual(RETENTION_MS / 2);
    // … and never removed early.
    expect(gone.receivedAt - ft).toBeGreaterThanOrEqual(RETENTION_MS);
    expect((await timedGet(server.url, '/restate/workflow/retained/w1/output')).status).toBe(404);
    expect(await describeInv(server.adminUrl, runId)).toBeUndefined();

    // Every key of the workflow (run, shared call, state, promises, run record, inbox, fence) expires.
    await untilNoKeys(prefix, [runId, approveId], 'retained', 'w1', 10_000);
    expect((await admin(server.adminUrl, 'GET', '/services/retained/state/w1')).body).toMatchObject(
      { state: {} },
    );
    // The workflow key can run again.
    const rerun = await post(server.url, '/retained/w1/run/send', 'second');
    expect(rerun.status).toBe(202);
    expect(rerun.body).toMatchObject({ status: 'Accepted' });
    expect((rerun.body as { invocationId: string }).invocationId).not.toBe(runId);
  });
});

describe('retention of a killed workflow', () => {
  it('keeps its 409 outcome for workflowRetention, then every key of the workflow is gone', async () => {
    const { prefix, server } = await setupControl(redisTarget, services, log, onTestFinished);
    const sent = await post(server.url, '/retained/w3/run/send', 'doomed');
    const runId = (sent.body as { invocationId: string }).invocationId;
    await until('the run to wait on its promise', async () =>
      (await describeInv(server.adminUrl, runId))?.journal?.some((e) => e.k === 'pget'),
    );
    expect((await admin(server.adminUrl, 'PATCH', `/invocations/${runId}/kill`)).status).toBe(200);
    await untilCompleted(server.adminUrl, runId);
    const ft = await finishedAt(prefix, runId);
    const out = await timedGet(server.url, '/restate/workflow/retained/w3/output');
    expect(out.status).toBe(409);
    // Retained (by workflow id too) until the workflow retention ends …
    const gone = await until(
      'the killed workflow to be forgotten',
      async () => {
        const r = await timedGet(server.url, '/restate/workflow/retained/w3/output');
        if (r.status === 409) return undefined;
        expect(r.status).toBe(404);
        return r;
      },
      RETENTION_MS + 30_000,
    );
    expect(gone.receivedAt - ft).toBeGreaterThanOrEqual(RETENTION_MS);
    // … then nothing of it is left, and the workflow id can run again.
    await untilNoKeys(prefix, [runId], 'retained', 'w3', 10_000);
    expect((await post(server.url, '/retained/w3/run/send', 'again')).body).toMatchObject({
      status: 'Accepted',
    });
  });
});

describe('purge', () => {
  it('removes a completed invocation at once', async () => {
    const { prefix, server } = await setupControl(redisTarget, services, log, onTestFinished);
    const r = await post(server.url, '/plain/echo', 'x');
    expect(r.status).toBe(200);
    const id = r.headers.get('x-restate-id')!;
    expect((await describeInv(server.adminUrl, id))?.status).toBe('completed');
    expect((await timedGet(server.url, `/restate/invocation/${id}/output`)).status).toBe(200);
    expect((await keysOf(prefix, [id])).length).toBeGreaterThan(0);

    const p = await admin(server.adminUrl, 'PATCH', `/invocations/${id}/purge`);
    expect(p.status).toBe(200);
    expect(p.body).toEqual({ invocationId: id, purge: true });
    expect(await describeInv(server.adminUrl, id)).toBeUndefined();
    expect((await timedGet(server.url, `/restate/invocation/${id}/output`)).status).toBe(404);
    expect(await keysOf(prefix, [id])).toEqual([]);
    expect(await scheduledOf(prefix, [id])).toEqual([]);
    expect((await admin(server.adminUrl, 'PATCH', `/invocations/${id}/purge`)).status).toBe(404);
  });

  it('refuses a running workflow, then removes it once completed: run record and state too', async () => {
    const { prefix, server } = await setupControl(redisTarget, services, log, onTestFinished);
    const sent = await post(server.url, '/retained/w2/run/send', 'first');
    const runId = (sent.body as { invocationId: string }).invocationId;
    await until('the run to wait on its promise', async () =>
      (await describeInv(server.adminUrl, runId))?.journal?.some((e) => e.k === 'pget'),
    );
    const early = await admin(server.adminUrl, 'PATCH', `/invocations/${runId}/purge`);
    expect(early.status).toBe(409);
    expect((await describeInv(server.adminUrl, runId))?.status).not.toBe('completed');

    expect((await post(server.url, '/retained/w2/approve', 'ok')).status).toBe(200);
    await untilCompleted(server.adminUrl, runId);
    expect((await timedGet(server.url, '/restate/workflow/retained/w2/output')).status).toBe(200);

    const p = await admin(server.adminUrl, 'PATCH', `/invocations/${runId}/purge`);
    expect(p.status).toBe(200);
    expect(await describeInv(server.adminUrl, runId)).toBeUndefined();
    expect((await timedGet(server.url, `/restate/invocation/${runId}/output`)).status).toBe(404);
    expect((await timedGet(server.url, '/restate/workflow/retained/w2/output')).status).toBe(404);
    expect(await keysOf(prefix, [runId])).toEqual([]);
    expect((await admin(server.adminUrl, 'GET', '/services/retained/state/w2')).body).toMatchObject(
      { state: {} },
    );
    // The workflow id is free again.
    const rerun = await post(server.url, '/retained/w2/run/send', 'second');
    expect(rerun.body).toMatchObject({ status: 'Accepted' });
    expect((rerun.body as { invocationId: string }).invocationId).not.toBe(runId);
  });
});
