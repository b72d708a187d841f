/**
 * Helpers for the cancellation / kill / pause-resume / retention / admin tests:
 * an in-process server with the admin API, admin HTTP calls, and a per-test
 * event log in Redis that handlers append to from journaled steps.
 */
import {
  serve,
  type AnyDefinition,
  type Entry,
  type InvocationInfo,
  type LatchkeyServer,
  type ServeOptions,
} from '@latchkey/core';
import { createRedisStore, type RedisStoreOptions } from '@latchkey/redis-store';
import { afterAll } from 'vitest';
import { FAST_TIMINGS, deletePrefix, newPrefix, quietLogger, until } from './harness.js';
import { rawClient, type RawRedis, type RedisTarget } from './redis.js';

export { scanKeys } from './redis.js';

/** Starts workers, ingress and the admin API in this process (startServer's options plus `admin`). */
export async function startAdminServer(
  redisTarget: RedisTarget,
  prefix: string,
  services: AnyDefinition[],
  opts: { token?: string; store?: RedisStoreOptions; serve?: Partial<ServeOptions> } = {},
): Promise<LatchkeyServer & { adminUrl: string }> {
  const store = createRedisStore({
    ...redisTarget,
    prefix,
    ...FAST_TIMINGS,
    ...opts.store,
    logger: quietLogger,
  });
  const server = await serve({
    services,
    store,
    port: 0,
    host: '127.0.0.1',
    handleSignals: false,
    admin: { port: 0, ...(opts.token !== undefined ? { token: opts.token } : {}) },
    logger: quietLogger,
    ...opts.serve,
  });
  if (!server.adminUrl) throw new Error('the admin API did not start');
  return server as LatchkeyServer & { adminUrl: string };
}

/** An HTTP answer with its parsed body. */
export interface Answer<T = unknown> {
  status: number;
  body: T;
  /** Local time the request was sent / the answer arrived (ms). */
  sentAt: number;
  receivedAt: number;
}

/** Calls the admin API (with `token` as a bearer token when given). */
export async function admin<T = unknown>(
  base: string,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  path: string,
  opts: { token?: string; body?: unknown; authorization?: string } = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = {};
  if (opts.authorization !== undefined) headers['authorization'] = opts.authorization;
  else if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const sentAt = Date.now();
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: body as T, sentAt, receivedAt: Date.now() };
}

/** GET with timing information (ingress paths such as /restate/invocation/{id}/output). */
export async function timedGet<T = unknown>(base: string, path: string): Promise<Answer<T>> {
  return admin<T>(base, 'GET', path);
}

/** An invocation as the admin API reports it. */
export type AdminInvocation = InvocationInfo & { journal?: Entry[] };

/** `GET /invocations/{id}` (undefined on 404). */
export async function describeInv(
  base: string,
  id: string,
  token?: string,
): Promise<AdminInvocation | undefined> {
  const r = await admin<AdminInvocation>(
    base,
    'GET',
    `/invocations/${encodeURIComponent(id)}`,
    token !== undefined ? { token } : {},
  );
  if (r.status === 404) return undefined;
  if (r.status !== 200)
    throw new Error(`GET /invocations/${id} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** `GET /invocations?...`: one page, oldest first unless the query gives an `order`. */
export async function listInv(
  base: string,
  query: Record<string, string>,
  token?: string,
): Promise<AdminInvocation[]> {
  const qs = new URLSearchParams({ order: 'asc', ...query }).toString();
  const r = await admin<{ invocations: AdminInvocation[] }>(
    base,
    'GET',
    `/invocations?${qs}`,
    token !== undefined ? { token } : {},
  );
  if (r.status !== 200)
    throw new Error(`GET /invocations?${qs} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.invocations;
}

/** Polls until the invocation has completed; returns its description (the error names the last status seen). */
export async function untilCompleted(
  base: string,
  id: string,
  timeoutMs = 30_000,
): Promise<AdminInvocation> {
  return untilStatus(base, id, ['completed'], timeoutMs);
}

/** Polls until the invocation is in one of `statuses`. */
export async function untilStatus(
  base: string,
  id: string,
  statuses: string[],
  timeoutMs = 30_000,
): Promise<AdminInvocation> {
  let last: AdminInvocation | undefined;
  try {
    return await until(
      `invocation ${id} to be ${statuses.join('|')}`,
      async () => {
        last = await describeInv(base, id);
        return last && statuses.includes(last.status) ? last : undefined;
      },
      timeoutMs,
    );
  } catch (e) {
    const seen = last
      ? { status: last.status, attempts: last.attempts, lastFailure: last.lastFailure }
      : 'not found';
    throw new Error(`${(e as Error).message}; last seen: ${JSON.stringify(seen)}`, { cause: e });
  }
}

/**
 * A per-test event log in Redis (`<prefix>:fx:log`). Handlers append to it from
 * journaled steps (`ctx.run`), so an entry means "that closure ran".
 */
export class EventLog {
  readonly redis: RawRedis;
  prefix = '';
  constructor(redisTarget: RedisTarget) {
    this.redis = rawClient(redisTarget, { maxRetriesPerRequest: null });
    this.redis.on('error', () => undefined);
  }
  private get key(): string {
    return `${this.prefix}:fx:log`;
  }
  /** Appends an event (call it inside ctx.run). */
  async add(event: string): Promise<number> {
    return this.redis.rpush(this.key, event);
  }
  async all(): Promise<string[]> {
    return this.redis.lrange(this.key, 0, -1);
  }
  /** Waits until an event matching `match` is logged; returns it. */
  waitFor(match: string | RegExp, timeoutMs = 30_000): Promise<string> {
    const test = (e: string): boolean => (typeof match === 'string' ? e === match : match.test(e));
    return until(`event ${String(match)}`, async () => (await this.all()).find(test), timeoutMs);
  }
  /** A flag other code can set (`<prefix>:fx:flag:<name>`). */
  flagKey(name: string): string {
    return `${this.prefix}:fx:flag:${name}`;
  }
  close(): void {
    this.redis.disconnect();
  }
}

/** A test file's event log and raw Redis client, both closed after the file's tests. */
export function fileClients(redisTarget: RedisTarget): { log: EventLog; redis: RawRedis } {
  const log = new EventLog(redisTarget);
  const redis = rawClient(redisTarget);
  afterAll(() => {
    log.close();
    redis.disconnect();
  });
  return { log, redis };
}

/** Per-test resources: a prefix, a server with the admin API, cleaned up when the test finishes. */
export interface ControlEnv {
  prefix: string;
  server: LatchkeyServer & { adminUrl: string };
}

/** Sets up one test: fresh prefix (also given to `log`), server with admin API; teardown on finish. */
export async function setupControl(
  redisTarget: RedisTarget,
  services: AnyDefinition[],
  log: EventLog,
  onTestFinished: (fn: () => Promise<void>) => void,
  opts: { token?: string; store?: RedisStoreOptions } = {},
): Promise<ControlEnv> {
  const prefix = newPrefix();
  log.prefix = prefix;
  const env: ControlEnv = { prefix, server: undefined as unknown as ControlEnv['server'] };
  onTestFinished(async () => {
    await env.server?.close().catch(() => undefined);
    await deletePrefix(redisTarget, prefix);
  });
  env.server = await startAdminServer(redisTarget, prefix, services, opts);
  return env;
}

/** Resolves like `p`, or rejects after `timeoutMs` (a deadline for calls that wait on an outcome). */
export async function within<T>(what: string, p: Promise<T>, timeoutMs = 30_000): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    t = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(t);
  }
}

/** GET /restate/invocation/{id}/attach with a deadline. */
export async function attach(
  base: string,
  id: string,
  timeoutMs = 30_000,
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${base}/restate/invocation/${encodeURIComponent(id)}/attach`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body, headers: res.headers };
}
