import type {
  Context,
  ObjectContext,
  ObjectSharedContext,
  WorkflowContext,
  WorkflowSharedContext,
} from '../context/types.js';
import type { HandlerOptions, WorkflowOptions } from './options.js';
import { toSerde, type Serde } from './serde.js';

const HANDLER = Symbol.for('latchkey.handler');

/** How a handler runs with respect to its key. */
export type HandlerMode = 'exclusive' | 'shared' | 'workflow';

/**
 * Options of the `handlers.*` helpers: payload schemas plus {@link WorkflowOptions}
 * (`workflowRetention` applies to a workflow's `run` handler only).
 */
export interface HandlerDefinitionOptions extends WorkflowOptions {
  /**
   * Input schema: a zod schema or a serde. Invalid input is rejected with 400.
   * Checked at run time only: the handler's input type is its function's parameter type.
   */
  input?: unknown;
  /**
   * Output schema: a zod schema or a serde.
   * Checked at run time only: the handler's output type is its function's return type.
   */
  output?: unknown;
  /** What the handler does, for people reading it (shown by the admin API, as in Restate). */
  description?: string;
  /** Free-form metadata (shown by the admin API, as in Restate). */
  metadata?: Record<string, string>;
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

/** A handler function whose context is `C`; its input may be any type, or absent. */
type HandlerFn<C> = (ctx: C, input: never) => Promise<unknown>;

function wrap<F>(
  mode: HandlerMode | undefined,
  a: F | HandlerDefinitionOptions,
  b?: F,
): HandlerWrapper<F> {
  const [options, fn] = b === undefined ? [{}, a as F] : [a as HandlerDefinitionOptions, b];
  if (typeof fn !== 'function') throw new TypeError('handler must be a function');
  return { [HANDLER]: true, mode, fn, options };
}

// The helpers' overloads, `(options, fn)` and `(fn)`, are declared in the type below;
// the methods of `handlers` take either and tell them apart at run time. The methods'
// own signature, `(a: F | HandlerDefinitionOptions, b?: F)`, is not what callers see:
// with that union, options held in a variable (e.g. `as const`) were also taken as a
// candidate for F, F fell back to its constraint (`input: never`), and options without
// a function type-checked.

/** The type of {@link handlers}. */
interface Handlers {
  /**
   * A handler with options (schemas, retries, timeouts), in a service, object or
   * workflow. Its mode is the default of where it is put: exclusive in an object,
   * shared in a workflow except `run`.
   */
  handler<F extends AnyFn>(options: HandlerDefinitionOptions, fn: F): HandlerWrapper<F>;
  object: {
    /** An exclusive object handler (the default for object handlers), with options. */
    exclusive<F extends HandlerFn<ObjectContext>>(
      options: HandlerDefinitionOptions,
      fn: F,
    ): HandlerWrapper<F>;
    /** An exclusive object handler (the default for object handlers). */
    exclusive<F extends HandlerFn<ObjectContext>>(fn: F): HandlerWrapper<F>;
    /** A shared object handler, with options: runs concurrently, reads committed state. */
    shared<F extends HandlerFn<ObjectSharedContext>>(
      options: HandlerDefinitionOptions,
      fn: F,
    ): HandlerWrapper<F>;
    /** A shared object handler: runs concurrently, reads committed state. */
    shared<F extends HandlerFn<ObjectSharedContext>>(fn: F): HandlerWrapper<F>;
  };
  workflow: {
    /** The workflow's `run` handler (the default for a handler named `run`), with options. */
    workflow<F extends HandlerFn<WorkflowContext>>(
      options: HandlerDefinitionOptions,
      fn: F,
    ): HandlerWrapper<F>;
    /** The workflow's `run` handler (the default for a handler named `run`). */
    workflow<F extends HandlerFn<WorkflowContext>>(fn: F): HandlerWrapper<F>;
    /** A shared workflow handler, with options: queries state, resolves promises. */
    shared<F extends HandlerFn<WorkflowSharedContext>>(
      options: HandlerDefinitionOptions,
      fn: F,
    ): HandlerWrapper<F>;
    /** A shared workflow handler: queries state, resolves promises. */
    shared<F extends HandlerFn<WorkflowSharedContext>>(fn: F): HandlerWrapper<F>;
  };
}

/**
 * Wraps handlers with options or an explicit mode, as `restate.handlers`:
 * `handlers.handler(options, fn)`; `handlers.object.exclusive` / `shared` and
 * `handlers.workflow.workflow` / `shared`, each as `(fn)` or `(options, fn)`.
 */
export const handlers: Handlers = {
  handler<F extends AnyFn>(options: HandlerDefinitionOptions, fn: F): HandlerWrapper<F> {
    return wrap(undefined, options, fn);
  },
  object: {
    exclusive<F extends HandlerFn<ObjectContext>>(
      a: F | HandlerDefinitionOptions,
      b?: F,
    ): HandlerWrapper<F> {
      return wrap('exclusive', a, b);
    },
    shared<F extends HandlerFn<ObjectSharedContext>>(
      a: F | HandlerDefinitionOptions,
      b?: F,
    ): HandlerWrapper<F> {
      return wrap('shared', a, b);
    },
  },
  workflow: {
    workflow<F extends HandlerFn<WorkflowContext>>(
      a: F | HandlerDefinitionOptions,
      b?: F,
    ): HandlerWrapper<F> {
      return wrap('workflow', a, b);
    },
    shared<F extends HandlerFn<WorkflowSharedContext>>(
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
  /** What the service does (shown by the admin API). */
  readonly description?: string;
  /** Free-form metadata (shown by the admin API). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** A stateless service. */
export type ServiceDefinition<N extends string = string, H = HandlerMap> = Definition<
  'service',
  N,
  H
>;
/** A virtual object. */
export type VirtualObjectDefinition<N extends string = string, H = HandlerMap> = Definition<
  'object',
  N,
  H
>;
/** A workflow. */
export type WorkflowDefinition<N extends string = string, H = HandlerMap> = Definition<
  'workflow',
  N,
  H
>;
/** Any definition. */
export type AnyDefinition = Definition<ServiceKind, string, HandlerMap>;

type ServiceHandlers<H> = {
  [K in keyof H]: H[K] extends HandlerWrapper<infer _F>
    ? H[K]
    : (ctx: Context, input: never) => Promise<unknown>;
};

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
function checkName(what: string, name: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new TypeError(`${what} name ${JSON.stringify(name)} must match ${NAME_RE.source}`);
  }
}

function define<K extends ServiceKind, N extends string, H extends HandlerMap>(
  kind: K,
  spec: {
    name: N;
    handlers: H;
    options?: WorkflowOptions;
    description?: string;
    metadata?: Record<string, string>;
  },
): Definition<K, N, H> {
  checkName('service', spec.name);
  for (const h of Object.keys(spec.handlers)) checkName('handler', h);
  return Object.freeze({
    kind,
    name: spec.name,
    handlers: spec.handlers,
    options: spec.options ?? {},
    ...(spec.description !== undefined ? { description: spec.description } : {}),
    ...(spec.metadata !== undefined ? { metadata: { ...spec.metadata } } : {}),
  });
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
  /** What it does, for people reading it (Restate's; shown by the admin API). */
  description?: string;
  /** Restate's free-form metadata (shown by the admin API). */
  metadata?: Record<string, string>;
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
  /** What it does, for people reading it (Restate's; shown by the admin API). */
  description?: string;
  /** Restate's free-form metadata (shown by the admin API). */
  metadata?: Record<string, string>;
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
  /** What it does, for people reading it (Restate's; shown by the admin API). */
  description?: string;
  /** Restate's free-form metadata (shown by the admin API). */
  metadata?: Record<string, string>;
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
  /** The handler's description and metadata (`handlers.handler({ description, metadata }, fn)`). */
  readonly description?: string;
  readonly metadata?: Readonly<Record<string, string>>;
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
    const { input, output, description, metadata, ...rest } = hopts;
    out.set(name, {
      service: def.name,
      serviceKind: def.kind,
      name,
      mode,
      fn,
      input: toSerde(input),
      output: toSerde(output),
      options: {
        ...def.options,
        ...rest,
        retryPolicy: { ...def.options.retryPolicy, ...rest.retryPolicy },
      },
      ...(description !== undefined ? { description } : {}),
      ...(metadata !== undefined ? { metadata: { ...metadata } } : {}),
    });
  }
  return out;
}
