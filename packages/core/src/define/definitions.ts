import type { Context, ObjectContext, ObjectSharedContext, WorkflowContext, WorkflowSharedContext } from '../context/types.js';
import type { HandlerOptions, WorkflowOptions } from './options.js';
import { toSerde, type Serde } from './serde.js';

const HANDLER = Symbol.for('latchkey.handler');

/** How a handler runs with respect to its key. */
export type HandlerMode = 'exclusive' | 'shared' | 'workflow';

/** Options of {@link handlers.handler}: payload schemas plus {@link HandlerOptions}. */
export interface HandlerDefinitionOptions extends WorkflowOptions {
  /** Input schema: a zod schema or a serde. Invalid input is rejected with 400. */
  input?: unknown;
  /** Output schema: a zod schema or a serde. */
  output?: unknown;
}

/** A handler function with options attached. */
export interface HandlerWrapper<F> {
  readonly [HANDLER]: true;
  readonly mode: HandlerMode | undefined;
  readonly fn: F;
  readonly options: HandlerDefinitionOptions;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (ctx: any, input?: any) => Promise<unknown>;

function wrap<F>(mode: HandlerMode | undefined, a: F | HandlerDefinitionOptions, b?: F): HandlerWrapper<F> {
  const [options, fn] = b === undefined ? [{}, a as F] : [a as HandlerDefinitionOptions, b];
  if (typeof fn !== 'function') throw new TypeError('handler must be a function');
  return { [HANDLER]: true, mode, fn, options };
}

/** Wraps handlers with options or an explicit mode, as `restate.handlers`. */
export const handlers = {
  /** A handler with options (schemas, retries, timeouts). */
  handler<F extends AnyFn>(options: HandlerDefinitionOptions, fn: F): HandlerWrapper<F> {
    return wrap(undefined, options, fn);
  },
  object: {
    /** An exclusive object handler (the default for object handlers). */
    exclusive<F extends (ctx: ObjectContext, input: never) => Promise<unknown>>(
      a: F | HandlerDefinitionOptions,
      b?: F,
    ): HandlerWrapper<F> {
      return wrap('exclusive', a, b);
    },
    /** A shared object handler: runs concurrently, reads committed state. */
    shared<F extends (ctx: ObjectSharedContext, input: never) => Promise<unknown>>(
      a: F | HandlerDefinitionOptions,
      b?: F,
    ): HandlerWrapper<F> {
      return wrap('shared', a, b);
    },
  },
  workflow: {
    /** The workflow's `run` handler (the default for a handler named `run`). */
    workflow<F extends (ctx: WorkflowContext, input: never) => Promise<unknown>>(
      a: F | HandlerDefinitionOptions,
      b?: F,
    ): HandlerWrapper<F> {
      return wrap('workflow', a, b);
    },
    /** A shared workflow handler: queries state, resolves promises. */
    shared<F extends (ctx: WorkflowSharedContext, input: never) => Promise<unknown>>(
      a: F | HandlerDefinitionOptions,
      b?: F,
    ): HandlerWrapper<F> {
      return wrap('shared', a, b);
    },
  },
};

function isWrapper(v: unknown): v is HandlerWrapper<AnyFn> {
  return typeof v === 'object' && v !== null && HANDLER in v;
}

/** The kind of a definition. */
export type ServiceKind = 'service' | 'object' | 'workflow';

/** Handlers of a definition: functions or wrapped functions. */
export type HandlerMap = Record<string, AnyFn | HandlerWrapper<AnyFn>>;

/** A service, object or workflow definition, as returned by `service()`, `object()` and `workflow()`. */
export interface Definition<K extends ServiceKind, N extends string, H> {
  readonly kind: K;
  readonly name: N;
  readonly handlers: H;
  readonly options: WorkflowOptions;
}

/** A stateless service. */
export type ServiceDefinition<N extends string = string, H = HandlerMap> = Definition<'service', N, H>;
/** A virtual object. */
export type VirtualObjectDefinition<N extends string = string, H = HandlerMap> = Definition<'object', N, H>;
/** A workflow. */
export type WorkflowDefinition<N extends string = string, H = HandlerMap> = Definition<'workflow', N, H>;
/** Any definition. */
export type AnyDefinition = Definition<ServiceKind, string, HandlerMap>;

type ServiceHandlers<H> = { [K in keyof H]: H[K] extends HandlerWrapper<infer _F> ? H[K] : (ctx: Context, input: never) => Promise<unknown> };

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
function checkName(what: string, name: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new TypeError(`${what} name ${JSON.stringify(name)} must match ${NAME_RE.source}`);
  }
}

function define<K extends ServiceKind, N extends string, H extends HandlerMap>(
  kind: K,
  spec: { name: N; handlers: H; options?: WorkflowOptions },
): Definition<K, N, H> {
  checkName('service', spec.name);
  for (const h of Object.keys(spec.handlers)) checkName('handler', h);
  return Object.freeze({ kind, name: spec.name, handlers: spec.handlers, options: spec.options ?? {} });
}

/**
 * Defines a stateless service.
 *
 * @example
 * ```ts
 * const greeter = service({ name: 'greeter', handlers: { greet: async (ctx: Context, name: string) => `Hi ${name}` } });
 * ```
 */
export function service<N extends string, H extends HandlerMap>(spec: {
  name: N;
  handlers: H & ServiceHandlers<H>;
  options?: HandlerOptions;
}): ServiceDefinition<N, H> {
  return define('service', spec);
}

/**
 * Defines a virtual object: keyed, single-writer, with K/V state. Handlers are
 * exclusive unless wrapped with `handlers.object.shared`.
 *
 * @example
 * ```ts
 * const counter = object({
 *   name: 'counter',
 *   handlers: {
 *     add: async (ctx: ObjectContext, n: number) => { const v = ((await ctx.get<number>('v')) ?? 0) + n; ctx.set('v', v); return v; },
 *     get: handlers.object.shared(async (ctx: ObjectSharedContext) => (await ctx.get<number>('v')) ?? 0),
 *   },
 * });
 * ```
 */
export function object<N extends string, H extends HandlerMap>(spec: {
  name: N;
  handlers: H;
  options?: HandlerOptions;
}): VirtualObjectDefinition<N, H> {
  return define('object', spec);
}

/**
 * Defines a workflow: `run` executes once per workflow id; other handlers are
 * shared and may run during and after it.
 */
export function workflow<N extends string, H extends HandlerMap>(spec: {
  name: N;
  handlers: H;
  options?: WorkflowOptions;
}): WorkflowDefinition<N, H> {
  if (!('run' in spec.handlers)) throw new TypeError(`workflow ${spec.name} needs a 'run' handler`);
  return define('workflow', spec);
}

/** The resolved form of one handler, as the runtime uses it. */
export interface HandlerSpec {
  readonly service: string;
  readonly serviceKind: ServiceKind;
  readonly name: string;
  /** `exclusive` holds the key; `shared` never does; `service` handlers have no key; `workflow` is a workflow's run. */
  readonly mode: 'service' | 'exclusive' | 'shared' | 'workflow';
  readonly fn: AnyFn;
  readonly input: Serde<unknown> | undefined;
  readonly output: Serde<unknown> | undefined;
  readonly options: WorkflowOptions;
}

/** Resolves a definition's handlers (merging service and handler options). */
export function resolveHandlers(def: AnyDefinition): Map<string, HandlerSpec> {
  const out = new Map<string, HandlerSpec>();
  for (const [name, h] of Object.entries(def.handlers)) {
    const w = isWrapper(h) ? h : undefined;
    const fn = w ? w.fn : (h as AnyFn);
    const hopts = w?.options ?? {};
    let mode: HandlerSpec['mode'];
    if (def.kind === 'service') mode = 'service';
    else if (def.kind === 'object') mode = w?.mode === 'shared' ? 'shared' : 'exclusive';
    else mode = name === 'run' || w?.mode === 'workflow' ? 'workflow' : 'shared';
    if (def.kind === 'workflow' && mode === 'workflow' && name !== 'run') {
      throw new TypeError(`workflow ${def.name}: only 'run' can be the workflow handler`);
    }
    const { input, output, ...rest } = hopts;
    out.set(name, {
      service: def.name,
      serviceKind: def.kind,
      name,
      mode,
      fn,
      input: toSerde(input),
      output: toSerde(output),
      options: { ...def.options, ...rest, retryPolicy: { ...def.options.retryPolicy, ...rest.retryPolicy } },
    });
  }
  return out;
}
