/**
 * The deployments one engine process serves: their definitions in the process's registry (so the
 * ingress accepts calls to them and the admin API describes them) and their clients, by service,
 * for the push executor.
 */
import type { AnyDefinition } from '../define/definitions.js';
import type { Registry } from '../runtime/registry.js';
import {
  DeploymentClient,
  definitionsOf,
  type DeploymentClientOptions,
  type DeploymentInfo,
} from './deployments.js';
import type { PushRoutes } from './push-executor.js';

export class Deployments implements PushRoutes {
  private readonly registry: Registry;
  private readonly opts: DeploymentClientOptions;
  private readonly byId = new Map<string, { info: DeploymentInfo; client: DeploymentClient }>();
  private readonly byService = new Map<string, DeploymentClient>();

  constructor(registry: Registry, opts: DeploymentClientOptions = {}) {
    this.registry = registry;
    this.opts = opts;
  }

  /** Every registered deployment. */
  list(): DeploymentInfo[] {
    return [...this.byId.values()].map((d) => d.info);
  }

  get(id: string): DeploymentInfo | undefined {
    return this.byId.get(id)?.info;
  }

  deploymentOf(service: string): DeploymentClient | undefined {
    return this.byService.get(service);
  }

  /**
   * What registering `info` would change: services another deployment or this process's own
   * code serves (a conflict), and services of the same deployment whose handlers differ.
   */
  conflicts(info: DeploymentInfo): { taken: string[]; changed: string[] } {
    const taken: string[] = [];
    const changed: string[] = [];
    const old = this.byId.get(info.id)?.info;
    for (const s of info.services) {
      const owner = this.byService.get(s.name);
      if (owner && owner.info.id !== info.id) taken.push(s.name);
      else if (!owner && this.registry.service(s.name)) taken.push(s.name);
      const before = old?.services.find((o) => o.name === s.name);
      if (before && JSON.stringify(before) !== JSON.stringify(s)) changed.push(s.name);
    }
    for (const o of old?.services ?? []) {
      if (!info.services.some((s) => s.name === o.name)) changed.push(o.name);
    }
    return { taken, changed };
  }

  /** Adds (or replaces) a deployment; the caller checked {@link conflicts}. */
  put(info: DeploymentInfo): void {
    this.remove(info.id);
    const client = new DeploymentClient(info, this.opts);
    const defs: AnyDefinition[] = definitionsOf(info);
    this.registry.add(defs);
    this.byId.set(info.id, { info, client });
    for (const d of defs) this.byService.set(d.name, client);
  }

  /** Removes a deployment and its services; false when none has that id. */
  remove(id: string): boolean {
    const d = this.byId.get(id);
    if (!d) return false;
    this.byId.delete(id);
    const names = d.info.services.map((s) => s.name);
    for (const n of names) this.byService.delete(n);
    this.registry.remove(names);
    return true;
  }
}
