/**
 * `GET /metrics` (docs/METRICS.md): a known mix of invocations — successes, terminal failures, a
 * retried one, calls between handlers, a workflow that suspends and is killed, a WebSocket
 * subscription — then a scrape over HTTP, and each counter, histogram count and gauge checked
 * against what ran. The store is private to this file (its own prefix), so the store-wide gauges
 * are exact too. No invocation id or key appears in the text (bounded labels), and the route
 * wants the admin token like every other.
 */
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  TerminalError,
  handlers,
  service,
  workflow,
  type Context,
  type LatchkeyServer,
  type WorkflowContext,
} from '@latchkey/core';
import { Keys } from '@latchkey/redis-store';
import { deletePrefix, newPrefix, post, until } from './helpers/harness.js';
import { admin, startAdminServer } from './helpers/control.js';
import { FrameSocket } from './helpers/frames.js';
import { rawClient } from './helpers/redis.js';

const redisTarget = inject('redisTarget');
const TOKEN = 'metrics-token';

const okSvc = service({
  name: 'm_ok',
  handlers: { go: handlers.handler({ input: z.number() }, async (_ctx, n: number) => n + 1) },
});
const failSvc = service({
  name: 'm_fail',
  handlers: {
    go: async () => {
      throw new TerminalError('refused on purpose', { errorCode: 422 });
    },
  },
});
const tries = new Map<string, number>();
const retrySvc = service({
  name: 'm_retry',
  handlers: {
    go: handlers.handler(
      { retryPolicy: { initialInterval: { milliseconds: 10 } } },
      async (ctx: Context, tag: string) => {
        // A step first: no eager run (it would stop at the step), so attempt 1 is the one that fails.
        await ctx.run('first', () => tag);
        const n = (tries.get(tag) ?? 0) + 1;
        tries.set(tag, n);
        if (n === 1) throw new Error('transient');
        return `${tag}:${n}`;
      },
    ),
  },
});
const parentSvc = service({
  name: 'm_parent',
  handlers: { go: async (ctx: Context, n: number) => ctx.serviceClient(okSvc).go(n) },
});
const sleeper = workflow({
  name: 'm_sleeper',
  options: { inactivityTimeout: { milliseconds: 50 } },
  handlers: {
    run: async (ctx: WorkflowContext) => {
      await ctx.sleep({ hours: 1 });
      return 'woke';
    },
  },
});

/** Samples of a Prometheus text exposition: `name{labels}` → value. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

/** The sample `name` with exactly these labels (in prom-client's order: as declared). */
function sample(s: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  const v = s.get(l === '' ? name : `${name}{${l}}`);
  if (v === undefined) throw new Error(`no sample ${name}{${l}}`);
  return v;
}

let server: LatchkeyServer & { adminUrl: string };
let prefix: string;

async function scrape(): Promise<{ text: string; samples: Map<string, number> }> {
  const res = await fetch(`${server.adminUrl}/metrics`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, samples: parse(text) };
}

beforeAll(async () => {
  prefix = newPrefix();
  server = await startAdminServer(
    redisTarget,
    prefix,
    [okSvc, failSvc, retrySvc, parentSvc, sleeper],
    { token: TOKEN },
  );
});

afterAll(async () => {
  await server?.close();
  await deletePrefix(redisTarget, prefix);
});

describe('GET /metrics', () => {
  it('counts what ran: accepted, ended by how, retries, attempts, durations, statuses, WebSocket', async () => {
    const N = 7;
    const M = 3;
    for (let i = 0; i < N; i++) expect((await post(server.url, '/m_ok/go', i)).body).toBe(i + 1);
    for (let i = 0; i < M; i++)
      expect((await post(server.url, '/m_fail/go', null)).status).toBe(422);
    expect((await post(server.url, '/m_retry/go', 'r')).body).toBe('r:2');
    expect((await post(server.url, '/m_parent/go', 40)).body).toBe(41);
    // A duplicate (same idempotency key): counted as a request, not as an invocation.
    const idem = { 'idempotency-key': 'once' };
    expect((await post(server.url, '/m_ok/go', 100, idem)).body).toBe(101);
    expect((await post(server.url, '/m_ok/go', 100, idem)).body).toBe(101);
    // A workflow that suspends in its hour-long sleep, watched over the WebSocket.
    const sent = await post(server.url, '/m_sleeper/s1/run/send', null);
    const runId = (sent.body as { invocationId: string }).invocationId;
    await until('the workflow to suspend', async () =>
      (await server.store.describe(runId))?.status === 'suspended' ? true : undefined,
    );
    const ws = await FrameSocket.open(server.url);
    ws.ws.send(JSON.stringify({ id: 's', type: 'subscribe', invocationId: runId }));
    await ws.next('subscribed', (f) => f['id'] === 's' && f['type'] === 'subscribed');

    const live = (await scrape()).samples;
    expect(sample(live, 'latchkey_ws_connections')).toBe(1);
    expect(sample(live, 'latchkey_ws_subscriptions')).toBe(1);
    expect(sample(live, 'latchkey_invocations', { status: 'suspended' })).toBe(1);
    expect(sample(live, 'latchkey_invocations', { status: 'completed' })).toBe(N + M + 4);
    expect(sample(live, 'latchkey_invocations', { status: 'running' })).toBe(0);

    // The reconciler: the suspended run's deadline moved far into the past, as if its wake-up
    // had been lost; the next sweep hands it out again (and finds it not due yet) and reports
    // how overdue it was.
    const redis = rawClient(redisTarget);
    const p = parseInt(runId.slice(4, 6), 36);
    await redis.zadd(new Keys(prefix).due(p), Date.now() - 60_000, runId);
    redis.disconnect();
    const swept = await until('a sweep to hand the run out again', async () => {
      const r = (await scrape()).samples;
      return (live.get('latchkey_reconciler_redispatched_total{kind="dispatch"}') ?? 0) <
        (r.get('latchkey_reconciler_redispatched_total{kind="dispatch"}') ?? 0)
        ? r
        : undefined;
    });
    expect(sample(swept, 'latchkey_reconciler_lag_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sample(swept, 'latchkey_reconciler_lag_seconds_sum')).toBeGreaterThanOrEqual(59);

    expect(
      (await admin(server.adminUrl, 'PATCH', `/invocations/${runId}/kill`, { token: TOKEN }))
        .status,
    ).toBe(200);
    ws.ws.close();
    await ws.closed;

    const { text, samples: s } = await until('the socket and the kill to show', async () => {
      const r = await scrape();
      return sample(r.samples, 'latchkey_ws_connections') === 0 ? r : undefined;
    });
    const t = (service: string, handler: string) => ({ service, handler });
    // Accepted: the clients' requests and the handler's call; the duplicate is not a new one.
    expect(sample(s, 'latchkey_invocations_accepted_total', t('m_ok', 'go'))).toBe(N + 1 + 1);
    expect(sample(s, 'latchkey_invocations_accepted_total', t('m_fail', 'go'))).toBe(M);
    expect(sample(s, 'latchkey_invocations_accepted_total', t('m_parent', 'go'))).toBe(1);
    expect(sample(s, 'latchkey_invocations_accepted_total', t('m_sleeper', 'run'))).toBe(1);
    expect(
      sample(s, 'latchkey_ingress_requests_total', { transport: 'http', answer: 'duplicate' }),
    ).toBe(1);
    expect(
      sample(s, 'latchkey_ingress_requests_total', { transport: 'http', answer: 'accepted' }),
    ).toBe(N + M + 1 + 1 + 1 + 1);
    // Ended: completed, failed, killed.
    const ended = (svc: string, h: string, result: string): number =>
      sample(s, 'latchkey_invocations_ended_total', { ...t(svc, h), result });
    expect(ended('m_ok', 'go', 'completed')).toBe(N + 2);
    expect(ended('m_fail', 'go', 'failed')).toBe(M);
    expect(ended('m_retry', 'go', 'completed')).toBe(1);
    expect(ended('m_parent', 'go', 'completed')).toBe(1);
    expect(ended('m_sleeper', 'run', 'killed')).toBe(1);
    expect(sample(s, 'latchkey_retries_total', t('m_retry', 'go'))).toBe(1);
    // Attempts by outcome: every completed invocation had one completing attempt.
    const attempts = (svc: string, h: string, outcome: string): number =>
      sample(s, 'latchkey_attempt_duration_seconds_count', { ...t(svc, h), outcome });
    expect(attempts('m_ok', 'go', 'completed')).toBe(N + 2);
    // Buckets are cumulative: the last (+Inf) holds every observation, and none holds more.
    const okAttempts = { ...t('m_ok', 'go'), outcome: 'completed' };
    const inf = { ...okAttempts, le: '+Inf' };
    expect(sample(s, 'latchkey_attempt_duration_seconds_bucket', inf)).toBe(N + 2);
    expect(
      sample(s, 'latchkey_attempt_duration_seconds_bucket', { ...okAttempts, le: '0.001' }),
    ).toBeLessThanOrEqual(N + 2);
    expect(attempts('m_retry', 'go', 'retry')).toBe(1);
    expect(attempts('m_retry', 'go', 'completed')).toBe(1);
    expect(attempts('m_sleeper', 'run', 'suspended')).toBeGreaterThanOrEqual(1);
    // End to end, by result.
    const e2e = (svc: string, h: string, result: string): number =>
      sample(s, 'latchkey_invocation_duration_seconds_count', { ...t(svc, h), result });
    expect(e2e('m_ok', 'go', 'success')).toBe(N + 2);
    expect(e2e('m_fail', 'go', 'failure')).toBe(M);
    // Queue wait: the attempts that were leased (the retried one's second attempt at least).
    expect(
      sample(s, 'latchkey_queue_wait_seconds_count', t('m_retry', 'go')),
    ).toBeGreaterThanOrEqual(1);
    // Redis scripts and the mailbox queues.
    expect(
      sample(s, 'latchkey_redis_script_duration_seconds_count', { script: 'acceptInvocation' }),
    ).toBeGreaterThanOrEqual(N + M);
    expect(
      sample(s, 'latchkey_queue_jobs', { queue: 'jobs:0', state: 'wait' }),
    ).toBeGreaterThanOrEqual(0);
    expect(sample(s, 'latchkey_invocations', { status: 'suspended' })).toBe(0);
    // Bounded labels: no invocation id, no workflow key in the exposition.
    expect(text).not.toMatch(/inv_/);
    expect(text).not.toMatch(/"s1"/);
    expect(sample(s, 'latchkey_ws_subscriptions')).toBe(0);
  });

  it('wants the admin token', async () => {
    expect((await fetch(`${server.adminUrl}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${server.adminUrl}/metrics`, {
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.status).toBe(401);
  });
});
