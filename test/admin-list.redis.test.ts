/**
 * The admin API's indexed listing and object views over HTTP, on Redis:
 *
 * - hostile query parameters: 400 with a precise code, nothing changed (one row per input);
 * - every filter, both orders, counts, cursor paging without duplicates or gaps while
 *   invocations change status;
 * - the keys of an object (inbox, holder), a key's queue, a workflow's promises, clearing state
 *   through the fence (409 while held);
 * - index entries removed when the invocation expires and at purge (nothing left behind);
 * - 100,000 invocations: a filtered page answers without SCAN (INFO commandstats).
 */
import type { Redis } from 'ioredis';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import {
  object,
  service,
  workflow,
  type Context,
  type InvocationCounts,
  type InvocationSummary,
  type KeyPage,
  type ObjectContext,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';
import { Keys, partitionOf, partitionOfId } from '@latchkey/redis-store';
import { seedInvocations } from '@latchkey/redis-store/testing';
import { settledKeyspace, snapshotKeyspace } from './helpers/keyspace.js';
import { post, until } from './helpers/harness.js';
import { admin, fileClients, scanKeys, setupControl, untilCompleted } from './helpers/control.js';
import { onEveryMaster, rawClient } from './helpers/redis.js';

const redisTarget = inject('redisTarget');
const { log, redis } = fileClients(redisTarget);

const PARTITIONS = 16;
const HOUR = 3_600_000;

// ------------------------------------------------------------------ services

const echo = service({
  name: 'echo',
  options: { journalRetention: 300 },
  handlers: {
    say: async (_ctx: Context, v: string) => `said:${v}`,
    shout: async (_ctx: Context, v: string) => `SAID:${v}`,
  },
});

const box = object({
  name: 'box',
  handlers: {
    put: async (ctx: ObjectContext, v: string) => {
      ctx.set('v', v);
      return v;
    },
    hold: async (ctx: ObjectContext) => {
      const a = ctx.awakeable<string>();
      await ctx.run('publish', () => log.add(`awk:${a.id}`));
      return await a.promise;
    },
  },
});

const vote = workflow({
  name: 'vote',
  options: { workflowRetention: 400, journalRetention: 400 },
  handlers: {
    run: async (ctx: WorkflowContext) => `voted:${await ctx.promise<string>('ballot').get()}`,
    cast: async (ctx: WorkflowSharedContext, v: string) => ctx.promise<string>('ballot').resolve(v),
  },
});

const services = [echo, box, vote];

// ------------------------------------------------------------------ helpers

type Page = { invocations: InvocationSummary[]; nextCursor?: string };

async function list(base: string, query: string): Promise<Page> {
  const r = await admin<Page>(base, 'GET', `/invocations?${query}`);
  if (r.status !== 200)
    throw new Error(`GET /invocations?${query}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Every page of a query through the cursor. */
async function allPages(
  base: string,
  query: string,
  between?: () => Promise<void>,
): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const page = await list(base, cursor ? `${query}&cursor=${cursor}` : query);
    seen.push(...page.invocations.map((s) => s.id));
    cursor = page.nextCursor;
    if (!cursor) return seen;
    await between?.();
  }
  throw new Error('too many pages');
}

/** Sends `n` delayed invocations of echo/say through the ingress; returns their ids. */
async function sendDelayed(base: string, n: number, handler = 'say'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await post(base, `/echo/${handler}/send?delay=${HOUR}ms`, `d${i}`);
    expect(r.status).toBe(202);
    ids.push((r.body as { invocationId: string }).invocationId);
  }
  return ids;
}

/** Every index key of a prefix and the members naming `id` (ix:keys members are keys, not ids). */
async function indexEntriesOf(prefix: string, id: string): Promise<string[]> {
  // Every index at once: the caller races retention times of a few hundred ms (and on a cluster
  // each key is a round trip of its own).
  const ix = (await scanKeys(redis, prefix)).filter((k) => k.includes(':ix:'));
  const found = await Promise.all(
    ix.map(async (k) => {
      const type = await redis.type(k);
      const members =
        type === 'zset'
          ? await redis.zrange(k, 0, -1)
          : type === 'set'
            ? await redis.smembers(k)
            : [];
      return members.filter((m) => m === id || m.startsWith(`${id}:`)).map((m) => `${k} ${m}`);
    }),
  );
  return found.flat();
}

// ------------------------------------------------------------------ tests

describe('admin listing', () => {
  it('refuses hostile query parameters with 400 and a precise code, changing nothing', async () => {
    // A stalled-job check period longer than the test: BullMQ's periodic stalled-check marker
    // would otherwise come and go under the prefix between the two keyspace snapshots.
    const { server, prefix } = await setupControl(redisTarget, services, log, onTestFinished, {
      store: { stalledIntervalMs: 600_000 },
    });
    const base = server.url;
    const a = server.adminUrl;
    for (const key of ['k1', 'k2'])
      expect((await post(base, `/box/${key}/put`, key)).status).toBe(200);
    const cursorByCreation = (await list(a, 'limit=1')).nextCursor!;
    expect(cursorByCreation).toBeDefined();
    const rows: [method: 'GET' | 'DELETE', path: string, status: number, code: string][] = [
      ['GET', '/invocations?status=bogus', 400, 'INVALID_STATUS'],
      ['GET', '/invocations?limit=0', 400, 'INVALID_LIMIT'],
      ['GET', '/invocations?limit=1001', 400, 'INVALID_LIMIT'],
      ['GET', '/invocations?limit=-1', 400, 'INVALID_LIMIT'],
      ['GET', '/invocations?limit=1e3', 400, 'INVALID_LIMIT'],
      ['GET', '/invocations?limit=ten', 400, 'INVALID_LIMIT'],
      ['GET', '/invocations?order=up', 400, 'INVALID_ORDER'],
      ['GET', '/invocations?cursor=!!!', 400, 'INVALID_CURSOR'],
      [
        'GET',
        `/invocations?cursor=${Buffer.from('c.x.inv_1').toString('base64url')}`,
        400,
        'INVALID_CURSOR',
      ],
      ['GET', `/invocations?cursor=${'A'.repeat(300)}`, 400, 'INVALID_CURSOR'],
      // A cursor of a page by creation time, given to a query by status (modified time).
      ['GET', `/invocations?status=delayed&cursor=${cursorByCreation}`, 400, 'INVALID_CURSOR'],
      ['GET', '/invocations?handler=say', 400, 'INVALID_QUERY'],
      ['GET', '/invocations?key=k', 400, 'INVALID_QUERY'],
      ['GET', '/invocations?idempotencyKey=i', 400, 'INVALID_QUERY'],
      ['GET', '/invocations?bogus=1', 400, 'INVALID_QUERY'],
      ['GET', '/invocations?status=running&status=paused', 400, 'INVALID_QUERY'],
      ['GET', '/invocations?createdAfter=yesterday', 400, 'INVALID_TIME'],
      ['GET', '/invocations?createdBefore=-5', 400, 'INVALID_TIME'],
      ['GET', '/invocations?modifiedAfter=1.5', 400, 'INVALID_TIME'],
      ['GET', '/invocations?modifiedBefore=99999999999999999', 400, 'INVALID_TIME'],
      ['GET', '/invocations?service=a%01b', 400, 'INVALID_NAME'],
      ['GET', `/invocations?service=${'s'.repeat(1025)}`, 400, 'INVALID_NAME'],
      ['GET', `/invocations?service=box&key=${'k'.repeat(1025)}`, 400, 'INVALID_KEY'],
      ['GET', '/invocations?service=box&key=a%0Ab', 400, 'INVALID_KEY'],
      [
        'GET',
        `/invocations?service=box&idempotencyKey=${'i'.repeat(1025)}`,
        400,
        'INVALID_IDEMPOTENCY_KEY',
      ],
      ['GET', '/invocations/counts?status=running', 400, 'INVALID_QUERY'],
      ['GET', '/invocations/counts?service=%7F', 400, 'INVALID_NAME'],
      ['GET', '/services/box/keys?limit=0', 400, 'INVALID_LIMIT'],
      ['GET', '/services/box/keys?cursor=@@', 400, 'INVALID_CURSOR'],
      ['GET', '/services/box/keys?order=asc', 400, 'INVALID_QUERY'],
      ['GET', '/services/nope/keys', 404, 'NOT_FOUND'],
      ['GET', '/services/echo/keys', 404, 'NOT_FOUND'],
      ['GET', '/services/box/keys/k/promises', 404, 'NOT_FOUND'],
      ['GET', '/services/vote/keys/k/promises?full=2', 400, 'INVALID_QUERY'],
      ['GET', '/services/box/keys/a%00b/queue', 400, 'INVALID_KEY'],
      ['GET', '/services/box/keys/k/queue?x=1', 400, 'INVALID_QUERY'],
      ['DELETE', '/services/box/state/k?x=1', 400, 'INVALID_QUERY'],
      ['DELETE', '/services/echo/state/k', 404, 'NOT_FOUND'],
      ['DELETE', `/services/box/state/${'k'.repeat(1025)}`, 400, 'INVALID_KEY'],
    ];
    const before = await settledKeyspace(redis, prefix);
    for (const [method, path, status, code] of rows) {
      const r = await admin<{ errorCode: string; message: string }>(a, method, path);
      expect({ path, status: r.status, code: r.body.errorCode }).toEqual({ path, status, code });
      expect(r.body.message.length).toBeGreaterThan(0);
    }
    expect(await snapshotKeyspace(redis, prefix)).toEqual(before);
  });

  it('answers every filter and both orders over HTTP, and counts', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const base = server.url;
    const a = server.adminUrl;
    const said = await post(base, '/echo/say', 'x', { 'idempotency-key': 'ik1' });
    expect(said.status).toBe(200);
    const saidId = said.headers.get('x-restate-id')!;
    const delayed = await sendDelayed(base, 3, 'shout');
    const put = await post(base, '/box/k1/put', 'v1', { 'idempotency-key': 'ik2' });
    expect(put.status).toBe(200);
    const putId = put.headers.get('x-restate-id')!;

    // A key the scripts must name exactly as the store's key layout does (percent-encoded).
    const odd = "a b/é:{x}'()*!~%";
    const oddPut = await post(base, `/box/${encodeURIComponent(odd)}/put`, 'v2');
    expect(oddPut.status).toBe(200);
    const oddId = oddPut.headers.get('x-restate-id')!;
    const ids = async (q: string) => (await list(a, q)).invocations.map((s) => s.id);
    expect(await ids(`service=box&key=${encodeURIComponent(odd)}`)).toEqual([oddId]);
    expect(
      (await admin<KeyPage>(a, 'GET', '/services/box/keys')).body.keys.map((k) => k.key),
    ).toEqual([odd, 'k1']);
    expect((await ids('service=box')).sort()).toEqual([putId, oddId].sort());
    expect(
      await ids(`service=box&key=${encodeURIComponent(odd)}&handler=put&status=completed`),
    ).toEqual([oddId]);
    expect(await ids('service=echo&handler=shout')).toEqual([...delayed].reverse());
    expect(await ids('service=echo&handler=shout&order=asc')).toEqual(delayed);
    expect(await ids('service=echo&handler=say')).toEqual([saidId]);
    expect(await ids('service=echo&idempotencyKey=ik1')).toEqual([saidId]);
    expect(await ids('service=echo&handler=say&idempotencyKey=ik1')).toEqual([saidId]);
    expect(await ids('service=echo&handler=say&idempotencyKey=nope')).toEqual([]);
    expect(await ids('service=echo&idempotencyKey=nope')).toEqual([]);
    // An object's idempotency key: by its record with the key, by its index without.
    expect(await ids('service=box&key=k1&idempotencyKey=ik2')).toEqual([putId]);
    expect(await ids('service=box&idempotencyKey=ik2')).toEqual([putId]);
    expect(await ids('service=box&key=k2&idempotencyKey=ik2')).toEqual([]);
    expect(await ids('service=box&key=k1')).toEqual([putId]);
    expect(await ids('service=box&key=k2')).toEqual([]);
    expect((await ids('status=delayed')).sort()).toEqual([...delayed].sort());
    expect((await ids('status=completed&service=box')).sort()).toEqual([putId, oddId].sort());
    expect((await ids('status=completed')).sort()).toEqual([saidId, putId, oddId].sort());
    const page = await list(a, 'service=echo&handler=say');
    expect(page.invocations[0]).toMatchObject({
      id: saidId,
      target: { service: 'echo', handler: 'say' },
      mode: 'service',
      status: 'completed',
      attempts: 0,
      idempotencyKey: 'ik1',
    });
    expect(page.nextCursor).toBeUndefined();
    const first = (await list(a, 'service=echo&order=asc')).invocations[0]!;
    expect(
      await ids(
        `service=echo&createdAfter=${first.createdAt - 1}&createdBefore=${first.createdAt + 1}`,
      ),
    ).toContain(first.id);
    expect(await ids(`modifiedBefore=${first.modifiedAt}&service=echo&order=asc`)).not.toContain(
      first.id,
    );
    // Empty values are no filter.
    expect((await ids('status=&service=')).length).toBe(6);

    const counts = await admin<InvocationCounts>(a, 'GET', '/invocations/counts');
    expect(counts.body).toEqual({
      total: 6,
      byStatus: { delayed: 3, completed: 3 },
      byService: { echo: 4, box: 2 },
    });
    const echoCounts = await admin<InvocationCounts>(a, 'GET', '/invocations/counts?service=echo');
    expect(echoCounts.body).toEqual({
      total: 4,
      byStatus: { delayed: 3, completed: 1 },
      byService: { echo: 4 },
    });
    for (const id of delayed) await admin(a, 'PATCH', `/invocations/${id}/kill`);
  });

  it('merges the indexes of the services a partition holds, in order, paging without gaps', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const base = server.url;
    const a = server.adminUrl;
    const echoes = await sendDelayed(base, 4);
    const made = [...echoes];
    // A delayed box put on a key of each echo invocation's partition: those partitions hold both
    // services, so a listing without a service merges two indexes there.
    for (const id of echoes) {
      const p = partitionOfId(id, PARTITIONS)!;
      let i = 0;
      while (partitionOf(PARTITIONS, 'box', `m${i}`) !== p) i++;
      const r = await post(base, `/box/m${i}/put/send?delay=${HOUR}ms`, 'v');
      expect(r.status).toBe(202);
      made.push((r.body as { invocationId: string }).invocationId);
    }
    for (const q of ['', 'order=asc', 'status=delayed', 'status=delayed&order=asc']) {
      const whole = (await list(a, `${q}&limit=100`)).invocations;
      expect(whole.map((s) => s.id).sort()).toEqual([...made].sort());
      // Ordered by the time the listing is ordered by, then by id.
      const at = (s: InvocationSummary) => (q.startsWith('status') ? s.modifiedAt : s.createdAt);
      const sorted = [...whole].sort((x, y) => at(x) - at(y) || (x.id < y.id ? -1 : 1));
      if (!q.includes('asc')) sorted.reverse();
      expect(whole.map((s) => s.id)).toEqual(sorted.map((s) => s.id));
      for (const limit of [1, 3])
        expect(await allPages(a, `${q}&limit=${limit}`)).toEqual(whole.map((s) => s.id));
    }
    const counts = await admin<InvocationCounts>(a, 'GET', '/invocations/counts');
    expect(counts.body).toEqual({
      total: 8,
      byStatus: { delayed: 8 },
      byService: { echo: 4, box: 4 },
    });
    for (const id of made) await admin(a, 'PATCH', `/invocations/${id}/kill`);
  });

  it("lists a workflow key's run from its fence with the key's other invocations, paging without gaps", async () => {
    const { prefix, server } = await setupControl(redisTarget, services, log, onTestFinished);
    const base = server.url;
    const a = server.adminUrl;
    const send = async (path: string): Promise<string> => {
      const r = await post(base, path, '"x"');
      expect(r.status).toBe(202);
      return (r.body as { invocationId: string }).invocationId;
    };
    // The run between delayed shared calls on its key (they stay delayed: nothing completes).
    const before = await send(`/vote/k1/cast/send?delay=${HOUR}ms`);
    const runId = await send('/vote/k1/run/send');
    const after = [
      await send(`/vote/k1/cast/send?delay=${HOUR}ms`),
      await send(`/vote/k1/cast/send?delay=${HOUR}ms`),
    ];
    const ixKey = new Keys(prefix).ixKey(partitionOf(PARTITIONS, 'vote', 'k1'), 'vote', 'k1');
    expect((await redis.zrange(ixKey, 0, -1)).sort()).toEqual([before, ...after].sort());

    const check = async (): Promise<void> => {
      for (const q of ['service=vote&key=k1', 'service=vote&key=k1&order=asc']) {
        const whole = (await list(a, `${q}&limit=100`)).invocations;
        const sorted = [...whole].sort(
          (x, y) => x.createdAt - y.createdAt || (x.id < y.id ? -1 : 1),
        );
        if (!q.includes('asc')) sorted.reverse();
        expect(whole.map((s) => s.id).sort()).toEqual([before, runId, ...after].sort());
        expect(whole.map((s) => s.id)).toEqual(sorted.map((s) => s.id));
        for (const limit of [1, 3])
          expect(await allPages(a, `${q}&limit=${limit}`)).toEqual(whole.map((s) => s.id));
      }
      expect(
        (await list(a, 'service=vote&key=k1&handler=run')).invocations.map((s) => s.id),
      ).toEqual([runId]);
      const run = (await list(a, 'service=vote&key=k1&handler=run')).invocations[0]!;
      const older = await list(a, `service=vote&key=k1&createdBefore=${run.createdAt}`);
      expect(older.invocations.map((s) => s.id)).not.toContain(runId);
      const newer = await list(a, `service=vote&key=k1&createdAfter=${run.createdAt - 1}`);
      expect(newer.invocations.map((s) => s.id)).toContain(runId);
    };
    await check();
    // An earlier version filed the run in the key's index too: still listed once.
    const run = (await list(a, 'service=vote&key=k1&handler=run')).invocations[0]!;
    await redis.zadd(ixKey, run.createdAt, runId);
    await check();

    for (const id of [before, runId, ...after]) await admin(a, 'PATCH', `/invocations/${id}/kill`);
  });

  it('pages without duplicates or gaps while invocations change status', async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const base = server.url;
    const a = server.adminUrl;
    const made = await sendDelayed(base, 40);
    // By creation: killing (completing) invocations between pages, and accepting new ones, moves
    // nothing that existed when paging started. A killed one may be gone by the time the pages
    // reach it (echo keeps a completed invocation 300 ms), never seen twice.
    let k = 0;
    const killedEarly = new Set<string>();
    const seen = await allPages(a, 'service=echo&limit=6', async () => {
      const victim = made[k++ * 3]!;
      killedEarly.add(victim);
      await admin(a, 'PATCH', `/invocations/${victim}/kill`);
      await sendDelayed(base, 1);
    });
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of made) if (!killedEarly.has(id)) expect(seen).toContain(id);
    // By status, oldest change first: an invocation that stays delayed is seen exactly once; one
    // killed meanwhile at most once.
    const before = new Set(
      (await list(a, 'status=delayed&limit=1000')).invocations.map((s) => s.id),
    );
    const killed = new Set<string>();
    const byStatus = await allPages(a, 'status=delayed&order=asc&limit=5', async () => {
      const victim = [...before].find((id) => !killed.has(id) && made.indexOf(id) % 2 === 1);
      if (victim) {
        killed.add(victim);
        await admin(a, 'PATCH', `/invocations/${victim}/kill`);
      }
    });
    expect(new Set(byStatus).size).toBe(byStatus.length);
    for (const id of before) if (!killed.has(id)) expect(byStatus).toContain(id);
    for (const id of byStatus) expect(before.has(id) || !made.includes(id)).toBe(true);
    const left = (await list(a, 'status=delayed&limit=1000')).invocations.map((s) => s.id);
    for (const id of left) await admin(a, 'PATCH', `/invocations/${id}/kill`);
  });

  it("lists an object's keys, a key's queue, a workflow's promises; clears state through the fence", async () => {
    const { server } = await setupControl(redisTarget, services, log, onTestFinished);
    const base = server.url;
    const a = server.adminUrl;
    for (const key of ['b', 'a', 'é', 'c'])
      expect((await post(base, `/box/${encodeURIComponent(key)}/put`, key)).status).toBe(200);
    const hold = await post(base, '/box/h/hold/send');
    const holdId = (hold.body as { invocationId: string }).invocationId;
    await log.waitFor(/^awk:/);
    const queued: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await post(base, '/box/h/put/send', `q${i}`);
      queued.push((r.body as { invocationId: string }).invocationId);
    }
    const keys = await admin<KeyPage>(a, 'GET', '/services/box/keys');
    expect(keys.body).toEqual({
      keys: [
        { key: 'a', inbox: 0 },
        { key: 'b', inbox: 0 },
        { key: 'c', inbox: 0 },
        { key: 'h', inbox: 4, holder: holdId },
        { key: 'é', inbox: 0 },
      ],
    });
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const r = await admin<KeyPage>(
        a,
        'GET',
        `/services/box/keys?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      paged.push(...r.body.keys.map((x) => x.key));
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(paged).toEqual(['a', 'b', 'c', 'h', 'é']);
    const q = await admin<{ holder: string; queue: InvocationSummary[] }>(
      a,
      'GET',
      '/services/box/keys/h/queue',
    );
    expect(q.body.holder).toBe(holdId);
    expect(q.body.queue.map((s) => [s.id, s.status])).toEqual(queued.map((id) => [id, 'queued']));

    // Clearing: refused while held (nothing changed), done once the key is free.
    const busy = await admin<{ errorCode: string }>(a, 'DELETE', '/services/box/state/h');
    expect([busy.status, busy.body.errorCode]).toEqual([409, 'KEY_BUSY']);
    const cleared = await admin(a, 'DELETE', '/services/box/state/b');
    expect(cleared).toMatchObject({
      status: 200,
      body: { service: 'box', key: 'b', cleared: true },
    });
    expect((await admin(a, 'GET', '/services/box/state/b')).body).toEqual({
      service: 'box',
      key: 'b',
      state: {},
    });
    expect(
      (await admin<KeyPage>(a, 'GET', '/services/box/keys')).body.keys.map((x) => x.key),
    ).toEqual(['a', 'c', 'h', 'é']);
    await admin(a, 'PATCH', `/invocations/${holdId}/kill`);
    for (const id of queued) await untilCompleted(a, id);

    // A workflow's promises: pending while awaited, then resolved (preview, and whole with full=1).
    const run = await post(base, '/vote/w1/run/send');
    const runId = (run.body as { invocationId: string }).invocationId;
    const promises = async (full = '') =>
      (await admin<{ promises: unknown[] }>(a, 'GET', `/services/vote/keys/w1/promises${full}`))
        .body.promises;
    await until('the pending promise', async () => (await promises()).length === 1);
    expect(await promises()).toEqual([{ name: 'ballot', state: 'pending' }]);
    const long = 'x'.repeat(3000);
    expect((await post(base, '/vote/w1/cast', long)).status).toBe(200);
    await untilCompleted(a, runId);
    expect(await promises()).toEqual([
      {
        name: 'ballot',
        state: 'resolved',
        value: { json: `"${'x'.repeat(1023)}`, truncated: true, bytes: 3002 },
      },
    ]);
    expect(await promises('?full=1')).toEqual([
      { name: 'ballot', state: 'resolved', value: { json: JSON.stringify(long) } },
    ]);
  });

  it('removes index entries when the invocation expires, and at purge at once', async () => {
    const { server, prefix } = await setupControl(redisTarget, services, log, onTestFinished);
    const base = server.url;
    const a = server.adminUrl;
    // echo keeps its record 300 ms, vote's run 400 ms after completion.
    const said = await post(base, '/echo/say', 'gone');
    const saidId = said.headers.get('x-restate-id')!;
    const run = await post(base, '/vote/w2/run/send');
    const runId = (run.body as { invocationId: string }).invocationId;
    await until('the run waiting', async () => (await indexEntriesOf(prefix, runId)).length > 0);
    expect((await post(base, '/vote/w2/cast', 'yes')).status).toBe(200);
    await untilCompleted(a, runId);
    expect((await indexEntriesOf(prefix, saidId)).length).toBeGreaterThan(0);
    await until(
      'the expired invocations to leave every index',
      async () =>
        (await indexEntriesOf(prefix, saidId)).length === 0 &&
        (await indexEntriesOf(prefix, runId)).length === 0,
      15_000,
    );
    const left = (await scanKeys(redis, prefix)).filter((k) => k.includes(':ix:'));
    // Only other invocations' entries may remain (the cast handler's, which expires likewise).
    for (const k of left) expect(k).not.toMatch(/ix:keys:vote$/);
    expect((await admin<KeyPage>(a, 'GET', '/services/vote/keys')).body).toEqual({ keys: [] });

    // Purge: a completed invocation with a long retention leaves every index at once.
    const put = await post(base, '/box/p/put', 'v');
    const putId = put.headers.get('x-restate-id')!;
    // By service, by key, by service and status, and its expiry.
    const k = new Keys(prefix);
    const p = partitionOfId(putId, PARTITIONS)!;
    expect((await indexEntriesOf(prefix, putId)).map((e) => e.split(' ')[0]).sort()).toEqual(
      [
        k.ixExpiry(p),
        k.ixKey(p, 'box', 'p'),
        k.ixService(p, 'box'),
        k.ixServiceStatus(p, 'box', 'completed'),
      ].sort(),
    );
    expect((await admin(a, 'PATCH', `/invocations/${putId}/purge`)).status).toBe(200);
    expect(await indexEntriesOf(prefix, putId)).toEqual([]);
    expect(await redis.zscore(k.ixService(p, 'box'), putId)).toBeNull();
  });

  it('100,000 invocations: a filtered page answers from the indexes, without SCAN', async () => {
    const { server, prefix } = await setupControl(redisTarget, services, log, onTestFinished);
    const a = server.adminUrl;
    const seeder = rawClient(redisTarget);
    onTestFinished(() => seeder.disconnect());
    const N = 100_000;
    // seedInvocations is typed for a standalone connection; on a cluster it gets a Cluster.
    const ids = await seedInvocations(seeder as Redis, {
      prefix,
      count: N,
      target: (i) =>
        i % 10 === 0
          ? { service: 'box', handler: 'put', mode: 'exclusive', key: `k${i % 500}` }
          : { service: 'echo', handler: i % 3 === 0 ? 'shout' : 'say' },
    });
    expect(ids).toHaveLength(N);
    const stats = async () => {
      const infos = await onEveryMaster(redis, (node) => node.info('commandstats'));
      const calls = (name: string) =>
        infos.reduce(
          (n, info) => n + Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0),
          0,
        );
      return { scan: calls('scan'), keys: calls('keys') };
    };
    const before = await stats();
    const shout = await list(a, 'service=echo&handler=shout&limit=50');
    const boxKey = await list(a, 'service=box&key=k10&limit=50');
    const delayedShout = await list(a, 'status=delayed&service=echo&handler=shout&limit=50');
    const next = await list(a, `service=echo&handler=shout&limit=50&cursor=${shout.nextCursor}`);
    const counts = (await admin<InvocationCounts>(a, 'GET', '/invocations/counts')).body;
    const after = await stats();
    expect(after).toEqual(before);
    expect(shout.invocations).toHaveLength(50);
    expect(shout.invocations.every((s) => s.target.handler === 'shout')).toBe(true);
    const shouts = new Set(ids.filter((_, i) => i % 10 !== 0 && i % 3 === 0));
    expect([...shout.invocations, ...next.invocations].every((s) => shouts.has(s.id))).toBe(true);
    const times = shout.invocations.map((s) => s.createdAt);
    expect([...times].sort((x, y) => y - x)).toEqual(times);
    expect(next.invocations).toHaveLength(50);
    expect(next.invocations.every((s) => !shout.invocations.some((t) => t.id === s.id))).toBe(true);
    expect(next.invocations[0]!.createdAt).toBeLessThanOrEqual(times.at(-1)!);
    // k10 is every 500th invocation from the 10th: 200 of them.
    expect(boxKey.invocations).toHaveLength(50);
    const k10 = new Set(ids.filter((_, i) => i % 500 === 10));
    expect(boxKey.invocations.every((s) => k10.has(s.id) && s.target.key === 'k10')).toBe(true);
    expect(delayedShout.invocations).toHaveLength(50);
    expect(
      delayedShout.invocations.every((s) => s.status === 'delayed' && s.target.handler === 'shout'),
    ).toBe(true);
    expect(counts).toEqual({
      total: N,
      byStatus: { delayed: N },
      byService: { echo: N - N / 10, box: N / 10 },
    });
  });
});
