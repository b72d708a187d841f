/**
 * The handlers `storeContract()` runs on the store under test, and the small helpers its tests
 * share. Real definitions (`service`, `object`, `workflow`) run by core's executor.
 */
import type {
  Context,
  ObjectContext,
  ObjectSharedContext,
  WorkflowContext,
  WorkflowSharedContext,
} from '../context/types.js';
import { handlers, object, service, workflow } from '../define/definitions.js';
import { Registry } from '../runtime/registry.js';
import type { InvocationRequest, Outcome, Target } from '../store/invocation.js';
import type { Store } from '../store/store.js';

/** A service that answers at once. */
export const greeter = service({
  name: 'contract_greeter',
  handlers: {
    greet: async (_ctx: Context, name: string) => `hello ${name}`,
  },
});

/** A service that calls another handler. */
export const caller = service({
  name: 'contract_caller',
  handlers: {
    callGreeter: async (ctx: Context, name: string) =>
      `called:${await ctx.serviceClient(greeter).greet(name)}`,
  },
});

/** A service whose first attempt fails with a retryable error. */
export const flaky = service({
  name: 'contract_flaky',
  handlers: {
    work: handlers.handler(
      { retryPolicy: { initialInterval: 10, maxInterval: 20, maxAttempts: 5 } },
      async (ctx: Context) => {
        if (ctx.request().attempt === 1) throw new Error('transient');
        return `attempt:${ctx.request().attempt}`;
      },
    ),
  },
});

/** An object with state, and a handler that holds its key until its awakeable is resolved. */
export const counter = object({
  name: 'contract_counter',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const v = ((await ctx.get<number>('count')) ?? 0) + n;
      ctx.set('count', v);
      return v;
    },
    hold: async (ctx: ObjectContext) => {
      const a = ctx.awakeable<string>();
      return `held:${await a.promise}`;
    },
    /** Waits on two awakeables. */
    pair: async (ctx: ObjectContext) => {
      const a = ctx.awakeable<string>();
      const b = ctx.awakeable<string>();
      return `${await a.promise}+${await b.promise}`;
    },
    get: handlers.object.shared(
      async (ctx: ObjectSharedContext) => (await ctx.get<number>('count')) ?? 0,
    ),
  },
});

/** A workflow that sleeps. */
export const sleeper = workflow({
  name: 'contract_sleeper',
  handlers: {
    run: async (ctx: WorkflowContext, ms: number) => {
      await ctx.sleep(ms);
      ctx.set('slept', ms);
      return `slept:${ms}`;
    },
  },
});

/** A workflow that waits for its durable promise 'ok' (resolved by `approve`). */
export const approval = workflow({
  name: 'contract_approval',
  handlers: {
    run: async (ctx: WorkflowContext) => `approved:${await ctx.promise<string>('ok').get()}`,
    approve: handlers.workflow.shared(async (ctx: WorkflowSharedContext, v: string) =>
      ctx.promise<string>('ok').resolve(v),
    ),
    deny: handlers.workflow.shared(async (ctx: WorkflowSharedContext, why: string) =>
      ctx.promise<string>('no').reject(why),
    ),
  },
});

/** How many times each step closure of {@link stepper} ran, by `<input>:<step>`. */
export const stepRuns = new Map<string, number>();
const ran = (key: string): number => {
  const n = (stepRuns.get(key) ?? 0) + 1;
  stepRuns.set(key, n);
  return n;
};

/** A service of steps: one whose second step fails twice, one of two counted steps. */
export const stepper = service({
  name: 'contract_stepper',
  handlers: {
    charge: handlers.handler(
      { retryPolicy: { initialInterval: 10, maxInterval: 20, maxAttempts: 10 } },
      async (ctx: Context, tag: string) => {
        await ctx.run('prep', () => ran(`${tag}:prep`));
        return ctx.run('charge', () => {
          const n = ran(`${tag}:charge`);
          if (n <= 2) throw new Error(`gateway down ${n}`);
          return `charged:${n}`;
        });
      },
    ),
    twoSteps: async (ctx: Context, tag: string) => {
      const one = await ctx.run('one', () => ran(`${tag}:one`));
      const two = await ctx.run('two', () => ran(`${tag}:two`));
      return `${one}/${two}`;
    },
  },
});

export const registry = new Registry([greeter, caller, flaky, counter, sleeper, approval, stepper]);

const DAY = 86_400_000;

/** An accept request for a registered handler (its mode from the registry). */
export function request(
  target: Target,
  input: unknown,
  extra: Partial<InvocationRequest> = {},
): InvocationRequest {
  const spec = registry.handler(target.service, target.handler);
  if (!spec) throw new Error(`no handler ${target.service}/${target.handler}`);
  return {
    target,
    mode: spec.mode,
    input: JSON.stringify(input),
    journalRetentionMs: DAY,
    idempotencyRetentionMs: DAY,
    workflowRetentionMs: DAY,
    ...extra,
  };
}

/** Polls `fn` until it returns a value that is not undefined/false, or fails after `timeoutMs`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The value of a successful outcome, decoded; throws on a failure. */
export function valueOf(o: Outcome): unknown {
  if (!o.ok) throw new Error(`expected success, got ${JSON.stringify(o.error)}`);
  return o.value === undefined ? undefined : JSON.parse(o.value);
}

/** Waits until the invocation holds `n` committed awakeables; returns their ids. */
export async function awakeablesOf(store: Store, id: string, n: number): Promise<string[]> {
  return until(`${n} awakeables of ${id}`, async () => {
    const info = await store.describe(id, true);
    const ids: string[] = [];
    for (const e of info?.journal ?? []) if (e.k === 'awk') ids.push(e.id);
    return ids.length >= n && ids;
  });
}

/** Waits until the invocation holds a committed awakeable; returns its id. */
export async function awakeableOf(store: Store, id: string): Promise<string> {
  return (await awakeablesOf(store, id, 1))[0]!;
}
