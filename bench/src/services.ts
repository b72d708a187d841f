/**
 * The benchmark's services, written as a Restate program would be: only the
 * import line names Latchkey.
 */
import { object, service, workflow, type Context, type ObjectContext, type WorkflowContext } from '@latchkey/core';

/** A service whose handler does nothing: the fixed cost of one invocation. */
export const bench = service({
  name: 'bench',
  handlers: {
    noop: async (_ctx: Context): Promise<void> => {},
  },
});

/** A workflow whose run journals three steps; it returns their sum (6). */
export const threeSteps = workflow({
  name: 'threeSteps',
  handlers: {
    run: async (ctx: WorkflowContext): Promise<number> => {
      const a = await ctx.run('one', () => 1);
      const b = await ctx.run('two', () => 2);
      const c = await ctx.run('three', () => 3);
      return a + b + c;
    },
  },
});

/** A counter object; `add` is exclusive (one at a time per key, FIFO). */
export const counter = object({
  name: 'counter',
  handlers: {
    add: async (ctx: ObjectContext, delta: number): Promise<number> => {
      const next = ((await ctx.get<number>('count')) ?? 0) + delta;
      ctx.set('count', next);
      return next;
    },
  },
});

export const services = [bench, threeSteps, counter];
