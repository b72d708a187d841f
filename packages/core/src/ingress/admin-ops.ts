/**
 * The admin API's operations, whatever parses the request (`admin.ts`): inspect and control
 * invocations, read and patch object state. Each takes typed input and returns a typed result or
 * throws an {@link IngressError}.
 */
import type { Metrics } from '../telemetry/metrics.js';
import { ErrorCode, IngressError } from '../errors.js';
import type { Registry } from '../runtime/registry.js';
import type { AdminStore, InvocationInfo } from '../store.js';
import { checkKey } from './input.js';

/** What the admin API needs of the store (the store's admin-facing interface). */
export type { AdminStore };

/** The controls an operator may apply to an invocation. */
export type Control = 'cancel' | 'kill' | 'pause' | 'resume' | 'purge';

const CONTROLS: ReadonlySet<string> = new Set<Control>([
  'cancel',
  'kill',
  'pause',
  'resume',
  'purge',
]);

/** Whether `op` names a {@link Control}. */
export function isControl(op: string | undefined): op is Control {
  return op !== undefined && CONTROLS.has(op);
}

/** The admin API's operations on one registry and store. */
export class AdminOperations {
  private readonly store: AdminStore;
  private readonly registry: Registry;
  private readonly metrics: Metrics | undefined;

  constructor(store: AdminStore, registry: Registry, metrics?: Metrics) {
    this.store = store;
    this.registry = registry;
    this.metrics = metrics;
  }

  /** An invocation with its journal; 404 when unknown. */
  async describe(id: string): Promise<InvocationInfo> {
    const info = await this.store.describe(id, true);
    if (!info) throw notFound(id);
    return info;
  }

  /** Applies a control; 404 when the invocation is unknown, 409 when its status refuses it. */
  async control(id: string, op: Control): Promise<void> {
    const info = await this.store.describe(id);
    if (!info) throw notFound(id);
    if (!(await this.store[op](id))) {
      const message = `cannot ${op} invocation ${id} in status ${info.status}`;
      throw new IngressError(409, ErrorCode.CONFLICT, message);
    }
    if (op === 'kill') this.metrics?.ended(info.target.service, info.target.handler, 'killed');
  }

  /** The committed state of an object or workflow key (JSON values). */
  async getState(service: string, key: string): Promise<Record<string, unknown>> {
    this.stateful(service);
    checkKey(key);
    const st = await this.store.getState(service, key);
    return Object.fromEntries([...st].map(([k, v]) => [k, JSON.parse(v) as unknown]));
  }

  /**
   * Checks a state patch's target before its body is read: an object or workflow this process
   * serves, and a well-formed key.
   */
  checkStateTarget(service: string, key: string): void {
    this.stateful(service);
    checkKey(key);
  }

  /** Patches state (null deletes); 409 `KEY_BUSY` while an exclusive handler holds the key. */
  async patchState(service: string, key: string, patch: Record<string, unknown>): Promise<void> {
    if (Object.keys(patch).some((name) => name.length === 0)) {
      throw new IngressError(400, ErrorCode.INVALID_PATCH, 'state names must not be empty');
    }
    if (!(await this.store.patchState(service, key, patch))) {
      throw new IngressError(
        409,
        ErrorCode.KEY_BUSY,
        `an exclusive handler holds ${service}/${key}; retry when it is free`,
      );
    }
  }

  /** The object or workflow a state route names: one this process serves, with state. */
  private stateful(service: string): void {
    const def = this.registry.service(service);
    if (!def || def.kind === 'service') {
      const message = `no object or workflow named '${service.slice(0, 256)}'`;
      throw new IngressError(404, ErrorCode.NOT_FOUND, message);
    }
  }
}

function notFound(id: string): IngressError {
  return new IngressError(404, ErrorCode.NOT_FOUND, `invocation ${id.slice(0, 256)} not found`);
}
