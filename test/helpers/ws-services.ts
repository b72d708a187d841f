/**
 * Services for the WebSocket client tests (@latchkey/client, fan-out, browser),
 * and an ingress-only server that can be restarted on the same port.
 */
import {
  TerminalError,
  handlers,
  object,
  serve,
  service,
  workflow,
  type AnyDefinition,
  type Context,
  type LatchkeyServer,
  type ObjectContext,
  type ObjectSharedContext,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';
import { createRedisStore } from '@latchkey/redis-store';
import type { RedisTarget } from './redis.js';
import { FAST_TIMINGS, quietLogger } from './harness.js';

/** A stateless service: greetings, durable sleeps, terminal failures, headers. */
export const greeter = service({
  name: 'greeter',
  handlers: {
    greet: async (_ctx: Context, name: string) => `Hello, ${name}!`,
    slow: async (ctx: Context, ms: number) => {
      await ctx.sleep(ms);
      return ms;
    },
    fail: async (_ctx: Context, why: string): Promise<string> => {
      throw new TerminalError(why, { errorCode: 418 });
    },
    headers: async (ctx: Context) => Object.fromEntries(ctx.request().headers),
  },
});

/** A counter object: `add` is exclusive, `get` shared. */
export const counter = object({
  name: 'counter',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const v = ((await ctx.get<number>('v')) ?? 0) + n;
      ctx.set('v', v);
      return v;
    },
    get: handlers.object.shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<number>('v')) ?? 0,
    ),
  },
});

/**
 * A workflow gated on its durable promise `go`: `run` journals `a`, sleeps
 * 200 ms, waits for `go` (resolved by the shared handler `release`), journals
 * `b` and returns `A:<input>|<go>|B`.
 */
export const job = workflow({
  name: 'job',
  handlers: {
    run: async (ctx: WorkflowContext, input: string) => {
      const a = await ctx.run('a', () => `A:${input}`);
      await ctx.sleep(200);
      const go = await ctx.promise<string>('go').get();
      const b = await ctx.run('b', () => 'B');
      return `${a}|${go}|${b}`;
    },
    release: handlers.workflow.shared(async (ctx: WorkflowSharedContext, value: string) => {
      await ctx.promise<string>('go').resolve(value);
      return 'released';
    }),
  },
});

/**
 * A workflow with two gates: journals `a`, waits for promise `one`, journals
 * `b`, waits for promise `two`, journals `c`; `open` resolves a gate.
 */
export const twoGates = workflow({
  name: 'twoGates',
  handlers: {
    run: async (ctx: WorkflowContext) => {
      await ctx.run('a', () => 'a');
      await ctx.promise<string>('one').get();
      await ctx.run('b', () => 'b');
      await ctx.promise<string>('two').get();
      await ctx.run('c', () => 'c');
      return 'done';
    },
    open: handlers.workflow.shared(async (ctx: WorkflowSharedContext, gate: string) => {
      await ctx.promise<string>(gate).resolve(gate);
      return gate;
    }),
  },
});

/** Awakeable ids published by {@link waiter} runs (workers run in the test process), by workflow key. */
export const awakeableIds = new Map<string, string>();

/** A workflow that waits for an awakeable and returns `got:<value>`. */
export const waiter = workflow({
  name: 'waiter',
  handlers: {
    run: async (ctx: WorkflowContext) => {
      const a = ctx.awakeable<string>();
      await ctx.run('publish', () => {
        awakeableIds.set(ctx.key, a.id);
      });
      return `got:${await a.promise}`;
    },
  },
});

/** Every definition above. */
export const wsServices: AnyDefinition[] = [greeter, counter, job, waiter, twoGates];

/** An ingress without workers (HTTP + WebSocket) on `port` (0 = a free one), against the test Redis. */
export async function startIngress(
  redisTarget: RedisTarget,
  prefix: string,
  services: AnyDefinition[],
  port = 0,
): Promise<LatchkeyServer> {
  const store = createRedisStore({ ...redisTarget, prefix, ...FAST_TIMINGS, logger: quietLogger });
  return serve({
    services,
    store,
    port,
    host: '127.0.0.1',
    workers: false,
    handleSignals: false,
    logger: quietLogger,
  });
}
