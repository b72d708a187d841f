import { resolveHandlers, type AnyDefinition, type HandlerSpec } from '../define/definitions.js';

/**
 * The services a process serves, resolved for lookup by name: its own definitions, and those of
 * the push deployments registered with it (added and removed while it runs).
 */
export class Registry {
  private readonly services = new Map<
    string,
    { def: AnyDefinition; handlers: Map<string, HandlerSpec> }
  >();
  /** Counts changes: what is computed from the registry is computed again when it moved. */
  version = 0;
  /**
   * Set by a process that serves push deployments: reads the registrations again, for a service
   * this registry does not know; rate-limited by the setter unless `urgent` (a worker holding an
   * accepted invocation of it).
   */
  refresh: ((service: string, urgent: boolean) => Promise<void>) | undefined;

  constructor(defs: readonly AnyDefinition[]) {
    this.add(defs);
  }

  /** Adds definitions; a name served already is refused (and nothing is added). */
  add(defs: readonly AnyDefinition[]): void {
    const names = new Set<string>();
    for (const def of defs) {
      if (this.services.has(def.name) || names.has(def.name)) {
        throw new TypeError(`service ${def.name} is defined twice`);
      }
      names.add(def.name);
    }
    for (const def of defs) this.services.set(def.name, { def, handlers: resolveHandlers(def) });
    this.version++;
  }

  /** Removes the named services. */
  remove(names: readonly string[]): void {
    for (const n of names) this.services.delete(n);
    this.version++;
  }

  /**
   * For a service this registry does not know, when deployments may be registered elsewhere: a
   * promise that settles once a lookup sees the latest registrations. Undefined otherwise, so a
   * caller awaits nothing (and keeps its requests' order) for a service it knows.
   */
  ensure(service: string, urgent = false): Promise<void> | undefined {
    if (!this.refresh || this.services.has(service)) return undefined;
    return this.refresh(service, urgent).catch(() => undefined);
  }

  /** The definition of a service, object or workflow. */
  service(name: string): AnyDefinition | undefined {
    return this.services.get(name)?.def;
  }

  /** The resolved handler, or undefined. */
  handler(service: string, handler: string): HandlerSpec | undefined {
    return this.services.get(service)?.handlers.get(handler);
  }

  /** Every definition. */
  all(): AnyDefinition[] {
    return [...this.services.values()].map((s) => s.def);
  }
}
