/**
 * The benchmark's services, written once against the Restate-shaped API.
 *
 * Nothing here imports an SDK: the `service`/`object`/`workflow` factories
 * are passed in. `services.ts` passes Latchkey's (`@latchkey/core`),
 * `restate-endpoint.ts` passes Restate's (`@restatedev/restate-sdk`): the
 * same handler code runs on both, which also makes this file a standing
 * compatibility check of the API surface it uses (`ctx.run`, `ctx.sleep`,
 * `ctx.get`, `ctx.set`, workflow `run`, exclusive object handlers).
 */

/** What the handlers use of a context; both SDKs' contexts have it. */
export interface BenchContext {
  run<T>(name: string, action: () => T | Promise<T>): PromiseLike<T>;
  sleep(ms: number): PromiseLike<void>;
}

/** What the object handlers use of an object context. */
export interface BenchObjectContext extends BenchContext {
  get<T>(name: string): Promise<T | null>;
  set<T>(name: string, value: T): void;
}

// The factories are typed loosely on purpose: each SDK has its own generic
// signature, and the handlers below only need the shapes above.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Handler = (ctx: any, input?: any) => Promise<unknown>;
type Factory<D> = (spec: {
  name: string;
  handlers: Record<string, Handler>;
  options?: { inactivityTimeout: number };
}) => D;

/** The SDK being benchmarked: its three definition factories. */
export interface Sdk<D> {
  service: Factory<D>;
  object: Factory<D>;
  workflow: Factory<D>;
}

/** Workflow step count and sleep length the load generator expects. */
export const SLEEP_MS = 100;

/** The timer probe's inactivity timeout (ms): a sleeping `timer` run suspends after it. */
export const TIMER_INACTIVITY_MS = 100;

export function defineBenchServices<D>(sdk: Sdk<D>): D[] {
  /** A service whose handler does nothing: the fixed cost of one invocation. */
  const bench = sdk.service({
    name: 'bench',
    handlers: {
      noop: async (_ctx: BenchContext): Promise<void> => {},
    },
  });

  /** A workflow whose run journals three steps; it returns their sum (6). */
  const threeSteps = sdk.workflow({
    name: 'threeSteps',
    handlers: {
      run: async (ctx: BenchContext): Promise<number> => {
        const a = await ctx.run('one', () => 1);
        const b = await ctx.run('two', () => 2);
        const c = await ctx.run('three', () => 3);
        return a + b + c;
      },
    },
  });

  /** A workflow that sleeps durably for 100 ms; it returns 1. */
  const sleeper = sdk.workflow({
    name: 'sleeper',
    handlers: {
      run: async (ctx: BenchContext): Promise<number> => {
        await ctx.sleep(SLEEP_MS);
        return 1;
      },
    },
  });

  /** A counter object; `add` is exclusive (one at a time per key, FIFO) and returns the new count. */
  const counter = sdk.object({
    name: 'counter',
    handlers: {
      add: async (ctx: BenchObjectContext, delta: number): Promise<number> => {
        const next = ((await ctx.get<number>('count')) ?? 0) + delta;
        ctx.set('count', next);
        return next;
      },
    },
  });

  /**
   * The timer probe (`timers.ts`): sleeps durably until `until` (epoch ms; the sleep's length is
   * taken from a journaled time just before it, so the timer is due no earlier than `until`),
   * suspending after 100 ms, and returns how late it woke (ms past `until`: an upper bound).
   */
  const timer = sdk.workflow({
    name: 'timer',
    options: { inactivityTimeout: TIMER_INACTIVITY_MS },
    handlers: {
      run: async (ctx: BenchContext, until: number): Promise<number> => {
        const t0 = await ctx.run('t0', () => Date.now());
        await ctx.sleep(Math.max(0, until - t0));
        return Date.now() - until;
      },
    },
  });

  return [bench, threeSteps, sleeper, counter, timer];
}
