/**
 * `handlers.object.*` and `handlers.workflow.*` have two forms, `(fn)` and
 * `(options, fn)`, as overloads; `handlers.handler` has one, `(options, fn)`.
 * This file is mostly a type test (checked by `tsc -p test/tsconfig.json`,
 * which `npm test` runs first): options passed as a variable, whatever its declared
 * type, give the same handler type as inline options, and options without a function
 * are a type error. At run time it checks what the definitions built here resolve to.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  handlers,
  object,
  service,
  workflow,
  type Context,
  type HandlerDefinitionOptions,
  type HandlerWrapper,
  type ObjectContext,
  type ObjectSharedContext,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';
import { resolveHandlers } from '@latchkey/core/internal';

// Options declared apart from the call, in the ways people write them.
const asConst = {
  retryPolicy: { maxAttempts: 2, onMaxAttempts: 'kill' },
  ingressPrivate: true,
} as const;
const viaSatisfies = {
  retryPolicy: { maxAttempts: 3, onMaxAttempts: 'pause' },
} satisfies HandlerDefinitionOptions;
const annotated: HandlerDefinitionOptions = { inactivityTimeout: 0 };
const plain = { journalRetention: 1000 };
const withSchemas = { input: z.object({ n: z.number() }), output: z.number() };

type Exclusive = (ctx: ObjectContext, n: number) => Promise<number>;
type Shared = (ctx: ObjectSharedContext) => Promise<string>;
type Run = (ctx: WorkflowContext, input: { id: string }) => Promise<string>;
type WfShared = (ctx: WorkflowSharedContext, v: string) => Promise<void>;
type Svc = (ctx: Context, name: string) => Promise<string>;

const exclusiveFn: Exclusive = async (_ctx, n) => n + 1;
const sharedFn: Shared = async () => 'shared';
const runFn: Run = async (_ctx, input) => input.id;
const wfSharedFn: WfShared = async () => undefined;
const svcFn: Svc = async (_ctx, name) => `hi ${name}`;

const counter = object({
  name: 'counter',
  handlers: {
    bare: handlers.object.exclusive(async (_ctx: ObjectContext, n: number) => n + 1),
    inline: handlers.object.exclusive(
      { retryPolicy: { maxAttempts: 2, onMaxAttempts: 'kill' } },
      async (_ctx: ObjectContext, n: number) => n + 1,
    ),
    asConst: handlers.object.exclusive(asConst, async (_ctx: ObjectContext, n: number) => n + 1),
    viaSatisfies: handlers.object.exclusive(
      viaSatisfies,
      async (_ctx: ObjectContext, n: number) => n + 1,
    ),
    annotated: handlers.object.exclusive(
      annotated,
      async (_ctx: ObjectContext, n: number) => n + 1,
    ),
    plain: handlers.object.exclusive(plain, async (_ctx: ObjectContext, n: number) => n + 1),
    schemas: handlers.object.exclusive(
      withSchemas,
      async (_ctx: ObjectContext, n: number) => n + 1,
    ),
    named: handlers.object.exclusive(asConst, exclusiveFn),
    peek: handlers.object.shared(async (_ctx: ObjectSharedContext) => 'shared'),
    peekAsConst: handlers.object.shared(asConst, async (_ctx: ObjectSharedContext) => 'shared'),
    peekSatisfies: handlers.object.shared(viaSatisfies, sharedFn),
  },
});

// Unannotated parameters take their type from the helper, in both forms. (Only
// outside a definition: inside `object({ handlers })` they are `any` today, as before.)
const contextual = handlers.object.shared(asConst, async (ctx) => {
  expectTypeOf(ctx).toEqualTypeOf<ObjectSharedContext>();
  return 'shared';
});
const contextualBare = handlers.workflow.shared(async (ctx, v: string) => {
  expectTypeOf(ctx).toEqualTypeOf<WorkflowSharedContext>();
  return v;
});

const flow = workflow({
  name: 'flow',
  handlers: {
    run: handlers.workflow.workflow(
      asConst,
      async (_ctx: WorkflowContext, input: { id: string }) => input.id,
    ),
    signal: handlers.workflow.shared(
      viaSatisfies,
      async (_ctx: WorkflowSharedContext, _v: string): Promise<void> => undefined,
    ),
    query: handlers.workflow.shared(async (_ctx: WorkflowSharedContext) => 'q'),
  },
});

const flowBare = workflow({
  name: 'flowBare',
  handlers: {
    run: handlers.workflow.workflow(runFn),
    other: handlers.workflow.shared(plain, wfSharedFn),
  },
});

const greeter = service({
  name: 'greeter',
  handlers: {
    inline: handlers.handler(
      { ingressPrivate: true },
      async (_ctx: Context, name: string) => `hi ${name}`,
    ),
    asConst: handlers.handler(asConst, async (_ctx: Context, name: string) => `hi ${name}`),
    viaSatisfies: handlers.handler(viaSatisfies, svcFn),
    schemas: handlers.handler(withSchemas, svcFn),
  },
});

describe('handlers.* types', () => {
  it('infer the same handler type from options in a variable as from inline options', () => {
    type H = typeof counter.handlers;
    expectTypeOf<H['inline']>().toEqualTypeOf<HandlerWrapper<Exclusive>>();
    expectTypeOf<H['bare']>().toEqualTypeOf<HandlerWrapper<Exclusive>>();
    expectTypeOf<H['asConst']>().toEqualTypeOf<HandlerWrapper<Exclusive>>();
    expectTypeOf<H['viaSatisfies']>().toEqualTypeOf<HandlerWrapper<Exclusive>>();
    expectTypeOf<H['annotated']>().toEqualTypeOf<HandlerWrapper<Exclusive>>();
    expectTypeOf<H['plain']>().toEqualTypeOf<HandlerWrapper<Exclusive>>();
    expectTypeOf<H['named']>().toEqualTypeOf<HandlerWrapper<Exclusive>>();
    expectTypeOf<H['peek']>().toEqualTypeOf<HandlerWrapper<Shared>>();
    expectTypeOf<H['peekAsConst']>().toEqualTypeOf<HandlerWrapper<Shared>>();
    expectTypeOf<H['peekSatisfies']>().toEqualTypeOf<HandlerWrapper<Shared>>();
    expectTypeOf(contextual).toEqualTypeOf<HandlerWrapper<Shared>>();
    expectTypeOf(contextualBare).toEqualTypeOf<
      HandlerWrapper<(ctx: WorkflowSharedContext, v: string) => Promise<string>>
    >();

    expectTypeOf<(typeof flow.handlers)['run']>().toEqualTypeOf<HandlerWrapper<Run>>();
    expectTypeOf<(typeof flow.handlers)['signal']>().toEqualTypeOf<HandlerWrapper<WfShared>>();
    expectTypeOf<(typeof flowBare.handlers)['run']>().toEqualTypeOf<HandlerWrapper<Run>>();
    expectTypeOf<(typeof flowBare.handlers)['other']>().toEqualTypeOf<HandlerWrapper<WfShared>>();

    expectTypeOf<(typeof greeter.handlers)['inline']>().toEqualTypeOf<HandlerWrapper<Svc>>();
    expectTypeOf<(typeof greeter.handlers)['asConst']>().toEqualTypeOf<HandlerWrapper<Svc>>();
    expectTypeOf<(typeof greeter.handlers)['viaSatisfies']>().toEqualTypeOf<HandlerWrapper<Svc>>();
  });

  it('take the handler type from the function, not from input/output schemas', () => {
    // The helpers do not infer payload types from `options.input`/`options.output`:
    // the function's own parameter and return types are the handler's type.
    expectTypeOf<(typeof counter.handlers)['schemas']>().toEqualTypeOf<HandlerWrapper<Exclusive>>();
    expectTypeOf<(typeof greeter.handlers)['schemas']>().toEqualTypeOf<HandlerWrapper<Svc>>();
  });

  it('reject options without a function, and a handler with the wrong context', () => {
    const reject = (call: () => unknown): void =>
      expect(call).toThrow(new TypeError('handler must be a function'));
    // @ts-expect-error options alone: the function is missing
    reject(() => handlers.object.exclusive(asConst));
    // @ts-expect-error options alone: the function is missing
    reject(() => handlers.object.exclusive({ ingressPrivate: true }));
    // @ts-expect-error options alone: the function is missing
    reject(() => handlers.object.shared(viaSatisfies));
    // @ts-expect-error options alone: the function is missing
    reject(() => handlers.workflow.workflow(annotated));
    // @ts-expect-error options alone: the function is missing
    reject(() => handlers.workflow.shared(plain));
    // @ts-expect-error options alone: the function is missing
    reject(() => handlers.handler(asConst));
    // @ts-expect-error a shared handler cannot take the exclusive context
    handlers.object.shared(asConst, exclusiveFn);
    // @ts-expect-error a shared workflow handler cannot take the workflow's run context
    handlers.workflow.shared(runFn);
  });
});

describe('handlers.* at run time', () => {
  it('keep the mode and the options given, whichever form was used', () => {
    const c = resolveHandlers(counter);
    expect(c.get('bare')).toMatchObject({ mode: 'exclusive', options: { retryPolicy: {} } });
    expect(c.get('asConst')).toMatchObject({
      mode: 'exclusive',
      options: { ingressPrivate: true, retryPolicy: { maxAttempts: 2, onMaxAttempts: 'kill' } },
    });
    expect(c.get('viaSatisfies')).toMatchObject({
      mode: 'exclusive',
      options: { retryPolicy: { maxAttempts: 3, onMaxAttempts: 'pause' } },
    });
    expect(c.get('annotated')?.options.inactivityTimeout).toBe(0);
    expect(c.get('plain')?.options.journalRetention).toBe(1000);
    expect(c.get('peek')?.mode).toBe('shared');
    expect(c.get('peekAsConst')).toMatchObject({
      mode: 'shared',
      options: { ingressPrivate: true },
    });
    expect(c.get('named')?.fn).toBe(exclusiveFn);
    expect(c.get('peekSatisfies')?.fn).toBe(sharedFn);
    expect(contextual).toMatchObject({ mode: 'shared', options: asConst });
    expect(contextualBare).toMatchObject({ mode: 'shared', options: {} });

    const schemas = c.get('schemas');
    const bytes = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
    expect(schemas?.input?.contentType).toBe('application/json');
    expect(schemas?.output?.contentType).toBe('application/json');
    expect(schemas?.input?.deserialize(bytes({ n: 1 }))).toEqual({ n: 1 });
    expect(() => schemas?.input?.deserialize(bytes({ n: 'x' }))).toThrow(/invalid payload/);
    expect(schemas?.options).not.toHaveProperty('input');

    const f = resolveHandlers(flow);
    expect(f.get('run')).toMatchObject({ mode: 'workflow', options: { ingressPrivate: true } });
    expect(f.get('signal')?.mode).toBe('shared');
    expect(f.get('query')?.mode).toBe('shared');
    const fb = resolveHandlers(flowBare);
    expect(fb.get('run')?.fn).toBe(runFn);
    expect(fb.get('other')).toMatchObject({
      mode: 'shared',
      fn: wfSharedFn,
      options: { journalRetention: 1000 },
    });

    const g = resolveHandlers(greeter);
    expect(g.get('inline')).toMatchObject({ mode: 'service', options: { ingressPrivate: true } });
    expect(g.get('viaSatisfies')?.fn).toBe(svcFn);
    expect(g.get('schemas')?.input?.contentType).toBe('application/json');
  });

  it('run the wrapped function', async () => {
    const fn = counter.handlers.named.fn;
    await expect(fn({} as ObjectContext, 41)).resolves.toBe(42);
    await expect(greeter.handlers.viaSatisfies.fn({} as Context, 'ann')).resolves.toBe('hi ann');
  });
});
