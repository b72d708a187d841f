/**
 * The quickstart's services: a greeter service, a counter virtual object and a
 * signup workflow. Plain Restate-style handlers; only the import line differs.
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

export const greeter = service({
  name: 'greeter',
  handlers: {
    greet: handlers.handler(
      { input: z.object({ name: z.string().min(1) }) },
      async (ctx: Context, req: { name: string }) => {
        // A journaled side effect: on a retry or replay, its recorded result is reused.
        const greeting = await ctx.run('compose', () => `Hello, ${req.name}!`);
        return greeting;
      },
    ),
  },
});

export const counter = object({
  name: 'counter',
  handlers: {
    // Exclusive: one at a time per key, in the order they were accepted.
    add: async (ctx: ObjectContext, delta: number) => {
      const next = ((await ctx.get<number>('count')) ?? 0) + delta;
      ctx.set('count', next);
      return next;
    },
    // Shared: runs concurrently and reads committed state.
    get: handlers.object.shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<number>('count')) ?? 0,
    ),
  },
});

export const signup = workflow({
  name: 'signup',
  handlers: {
    run: async (ctx: WorkflowContext, email: string) => {
      ctx.set('stage', 'creating');
      const userId = await ctx.run('create user', () => `user-${ctx.rand.uuidv4().slice(0, 8)}`);
      ctx.set('stage', 'waiting');
      await ctx.sleep({ milliseconds: 500 }); // a durable timer
      await ctx.run('send welcome mail', () => console.log(`  (mail to ${email} sent)`));
      ctx.set('stage', 'done');
      return { userId, email };
    },
    stage: async (ctx: WorkflowSharedContext) => ctx.get<string>('stage'),
  },
});
