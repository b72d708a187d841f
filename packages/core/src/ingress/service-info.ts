/**
 * What the admin API tells about the services a process serves (`GET /services`,
 * `GET /services/{service}`, `GET /openapi.json`): each definition's handlers, their kinds and
 * options, and the JSON Schema of their input and output.
 */
import type { AnyDefinition, HandlerSpec, ServiceKind } from '../define/definitions.js';
import { durationMs, type Duration } from '../define/duration.js';
import { contentTypeOf, jsonSchemaOf, type JsonSchema } from '../define/json-schema.js';
import type { RetryPolicy, WorkflowOptions } from '../define/options.js';
import { ErrorCode, IngressError } from '../errors.js';
import type { Registry } from '../runtime/registry.js';
import { openApiDocument } from './openapi.js';

/** A handler's options as the admin API shows them: durations in milliseconds. */
export interface HandlerOptionsInfo {
  inactivityTimeoutMs?: number;
  abortTimeoutMs?: number;
  idempotencyRetentionMs?: number;
  journalRetentionMs?: number;
  workflowRetentionMs?: number;
  ingressPrivate?: boolean;
  retryPolicy?: {
    /** `null`: retried forever (`Infinity`). */
    maxAttempts?: number | null;
    initialIntervalMs?: number;
    exponentiationFactor?: number;
    maxIntervalMs?: number;
    onMaxAttempts?: 'pause' | 'kill';
  };
}

/** One handler of a {@link ServiceInfo}. */
export interface HandlerInfo {
  name: string;
  /** `exclusive`/`shared` for an object's handlers, `workflow`/`shared` for a workflow's, null for a service's. */
  kind: 'exclusive' | 'shared' | 'workflow' | null;
  description?: string;
  metadata?: Record<string, string>;
  /** `ingressPrivate`: reachable from other handlers only, not through the ingress. */
  private: boolean;
  /** The options set on the handler and its service (those left out take their defaults). */
  options: HandlerOptionsInfo;
  /** JSON Schema of the input (`{}`: any value). */
  input: JsonSchema;
  /** JSON Schema of the output (`{}`: any value). */
  output: JsonSchema;
  /** Content type of the input: `application/json`, a serde's own, absent for no payload. */
  inputContentType?: string;
  /** Content type of the output, as for the input. */
  outputContentType?: string;
}

/** A service, object or workflow as the admin API describes it. */
export interface ServiceInfo {
  name: string;
  kind: ServiceKind;
  description?: string;
  metadata?: Record<string, string>;
  handlers: HandlerInfo[];
}

function ms(d: Duration | undefined): number | undefined {
  return d === undefined ? undefined : durationMs(d);
}

/** Drops the undefined fields of an object (so JSON answers hold only what applies). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function retryInfo(p: RetryPolicy | undefined): HandlerOptionsInfo['retryPolicy'] {
  if (!p) return undefined;
  const info = defined({
    maxAttempts:
      p.maxAttempts === undefined
        ? undefined
        : Number.isFinite(p.maxAttempts)
          ? p.maxAttempts
          : null,
    initialIntervalMs: ms(p.initialInterval),
    exponentiationFactor: p.exponentiationFactor,
    maxIntervalMs: ms(p.maxInterval),
    onMaxAttempts: p.onMaxAttempts,
  });
  return Object.keys(info).length > 0 ? info : undefined;
}

function optionsInfo(o: WorkflowOptions): HandlerOptionsInfo {
  return defined({
    inactivityTimeoutMs: ms(o.inactivityTimeout),
    abortTimeoutMs: ms(o.abortTimeout),
    idempotencyRetentionMs: ms(o.idempotencyRetention),
    journalRetentionMs: ms(o.journalRetention),
    workflowRetentionMs: ms(o.workflowRetention),
    ingressPrivate: o.ingressPrivate,
    retryPolicy: retryInfo(o.retryPolicy),
  });
}

/** Describes one resolved handler. */
export function handlerInfo(spec: HandlerSpec): HandlerInfo {
  return defined({
    name: spec.name,
    kind: spec.mode === 'service' ? null : spec.mode,
    description: spec.description,
    metadata: spec.metadata ? { ...spec.metadata } : undefined,
    private: spec.options.ingressPrivate === true,
    options: optionsInfo(spec.options),
    input: jsonSchemaOf(spec.input, 'input'),
    output: jsonSchemaOf(spec.output, 'output'),
    inputContentType: contentTypeOf(spec.input),
    outputContentType: contentTypeOf(spec.output),
  });
}

/** The resolved handlers of a definition, in the order it declares them. */
export function handlerSpecs(registry: Registry, def: AnyDefinition): HandlerSpec[] {
  return Object.keys(def.handlers).flatMap((h) => registry.handler(def.name, h) ?? []);
}

/**
 * The services of one registry as the admin API shows them, computed again only when the
 * registry changed (a push deployment was registered or removed).
 */
export class ServiceCatalog {
  private readonly registry: Registry;
  private infos: Map<string, ServiceInfo> | undefined;
  private openapi: object | undefined;
  /** The registry's version the cached answers were computed from. */
  private version = -1;

  constructor(registry: Registry) {
    this.registry = registry;
  }

  /** Every service, object and workflow, in the order they were given to `serve()`. */
  list(): ServiceInfo[] {
    return [...this.all().values()];
  }

  /** One of them; 404 `NOT_FOUND` when this process serves none of that name. */
  get(name: string): ServiceInfo {
    const info = this.all().get(name);
    if (!info) {
      throw new IngressError(404, ErrorCode.NOT_FOUND, `no service named '${name.slice(0, 256)}'`);
    }
    return info;
  }

  /** The OpenAPI 3.1 document of the HTTP ingress's routes (see `openapi.ts`). */
  openApi(): object {
    this.fresh();
    return (this.openapi ??= openApiDocument(
      this.registry.all().map((def) => ({ def, handlers: handlerSpecs(this.registry, def) })),
    ));
  }

  /** Forgets what was computed from an older registry (deployments came or went). */
  private fresh(): void {
    if (this.version === this.registry.version) return;
    this.version = this.registry.version;
    this.infos = undefined;
    this.openapi = undefined;
  }

  private all(): Map<string, ServiceInfo> {
    this.fresh();
    if (this.infos) return this.infos;
    const infos = new Map<string, ServiceInfo>();
    for (const def of this.registry.all()) {
      infos.set(
        def.name,
        defined({
          name: def.name,
          kind: def.kind,
          description: def.description,
          metadata: def.metadata ? { ...def.metadata } : undefined,
          handlers: handlerSpecs(this.registry, def).map(handlerInfo),
        }),
      );
    }
    return (this.infos = infos);
  }
}

/**
 * Answers the services routes of the admin API, or returns undefined for any other request:
 * `GET /services`, `GET /services/{service}`, `GET /openapi.json`.
 */
export function servicesRoute(
  catalog: ServiceCatalog,
  method: string | undefined,
  segs: readonly string[],
): unknown {
  if (method !== 'GET') return undefined;
  if (segs.length === 1 && segs[0] === 'openapi.json') return catalog.openApi();
  if (segs[0] !== 'services') return undefined;
  if (segs.length === 1) return { services: catalog.list() };
  if (segs.length === 2) return catalog.get(segs[1]!);
  return undefined;
}
