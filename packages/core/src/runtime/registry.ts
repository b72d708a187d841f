import { resolveHandlers, type AnyDefinition, type HandlerSpec } from '../define/definitions.js';

/** The services a process serves, resolved for lookup by name. */
export class Registry {
  private readonly services = new Map<
    string,
    { def: AnyDefinition; handlers: Map<string, HandlerSpec> }
  >();

  constructor(defs: readonly AnyDefinition[]) {
    for (const def of defs) {
      if (this.services.has(def.name)) throw new TypeError(`service ${def.name} is defined twice`);
      this.services.set(def.name, { def, handlers: resolveHandlers(def) });
    }
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
