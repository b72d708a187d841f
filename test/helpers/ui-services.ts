/**
 * The services the web UI's browser tests serve: a workflow whose `charge` step keeps failing
 * (with markup in its error message), an object with a counter, a service that sleeps for an
 * hour (to be cancelled), a greeter whose input has a zod schema, and a workflow waiting on a
 * durable promise.
 */
import { z } from 'zod';
import {
  handlers,
  object,
  service,
  workflow,
  type Context,
  type ObjectContext,
  type ObjectSharedContext,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';

/** Markup that would run script if a page ever parsed it as HTML. */
export const XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';

let charges = 0;

/** A payment workflow: `reserve` succeeds, `charge` throws on every attempt. */
export const payment = workflow({
  name: 'ui_payment',
  handlers: {
    run: async (ctx: WorkflowContext, order: { amount: number }) => {
      await ctx.run('reserve', () => `reserved ${order.amount}`);
      await ctx.run('charge', () => {
        charges++;
        throw new Error(`gateway down ${charges} ${XSS}`);
      });
      return 'paid';
    },
  },
});

/** A counter: `add` (exclusive) adds to `count`, `get` (shared) reads it. */
export const counter = object({
  name: 'ui_counter',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const v = ((await ctx.get<number>('count')) ?? 0) + n;
      ctx.set('count', v);
      return v;
    },
    get: handlers.object.shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<number>('count')) ?? null,
    ),
  },
});

/** Sleeps for an hour: a run to cancel. */
export const napper = service({
  name: 'ui_napper',
  handlers: {
    nap: async (ctx: Context) => {
      await ctx.sleep(3_600_000);
      return 'woke';
    },
  },
});

/** Sleeps for an hour too: runs to end in bulk. */
export const sleepy = service({
  name: 'ui_sleepy',
  handlers: {
    nap: async (ctx: Context) => {
      await ctx.sleep(3_600_000);
      return 'woke';
    },
  },
});

/** Greets a name of at least one character (a zod schema the invoke form checks first). */
export const greeter = service({
  name: 'ui_greeter',
  handlers: {
    greet: handlers.handler(
      { input: z.object({ name: z.string().min(1) }) },
      async (_ctx: Context, p: { name: string }) => `Hello ${p.name}`,
    ),
  },
});

/** Waits for its `approved` promise, which the shared `approve` resolves. */
export const approval = workflow({
  name: 'ui_approval',
  handlers: {
    run: async (ctx: WorkflowContext) => `approved by ${await ctx.promise<string>('approved')}`,
    approve: async (ctx: WorkflowSharedContext, by: string) => {
      await ctx.promise<string>('approved').resolve(by);
    },
  },
});

/** Every service of the UI tests. */
export const uiServices = [payment, counter, napper, sleepy, greeter, approval];
