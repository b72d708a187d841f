/**
 * The push deployments one engine process serves: their definitions in the process's registry (so
 * the ingress accepts calls to them and the admin API describes them) and their clients, by
 * service, for the push executor. The store keeps the registrations (`Store.deployments`), shared
 * by every process of the engine: each reads them at start, when asked for a service it does not
 * know (at most once per {@link MISS_REFRESH_MS}), and every `refreshMs`.
 */
import type { AnyDefinition } from '../define/definitions.js';
import { ErrorCode, IngressError } from '../errors.js';
import type { Registry } from '../runtime/registry.js';
import type { DeploymentRecords } from '../store/store.js';
import {
  DeploymentClient,
  definitionsOf,
  discover,
  type DeploymentClientOptions,
  type DeploymentInfo,
  type DeploymentOptions,
} from './deployments.js';
import type { PushRoutes } from './push-executor.js';

/** The least time between two refreshes a lookup of an unknown service starts (ms). */
export const MISS_REFRESH_MS = 1000;

/** The settings of two registrations of one URI are the same (headers, timeout, state size). */
function sameSettings(a: DeploymentInfo, b: DeploymentInfo): boolean {
  const settings = (d: DeploymentInfo): string =>
    JSON.stringify([d.headers ?? {}, d.timeoutMs, d.eagerStateBytes, d.direct === true]);
  return settings(a) === settings(b);
}

/** What registering a deployment did. */
export interface Registered {
  info: DeploymentInfo;
  /** False when the same deployment was registered already with the same services. */
  created: boolean;
}

export class Deployments implements PushRoutes {
  private readonly registry: Registry;
  private readonly opts: DeploymentClientOptions;
  private readonly records: DeploymentRecords | undefined;
  private readonly logger: Pick<Console, 'warn'>;
  private readonly byId = new Map<string, { info: DeploymentInfo; client: DeploymentClient }>();
  private readonly byService = new Map<string, DeploymentClient>();
  private refreshing: Promise<void> | undefined;
  /** The store's change count when the records were last read. */
  private seen: string | undefined;
  private registering: Promise<unknown> = Promise.resolve();
  private lastMissRefresh = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    registry: Registry,
    opts: DeploymentClientOptions & {
      records?: DeploymentRecords | undefined;
      logger?: Pick<Console, 'warn'>;
    } = {},
  ) {
    this.registry = registry;
    this.opts = opts.signingKey ? { signingKey: opts.signingKey } : {};
    this.records = opts.records;
    this.logger = opts.logger ?? console;
    registry.refresh = (_service, urgent) => (urgent ? this.refresh() : this.missed());
  }

  /** Every deployment this process serves. */
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
   * Discovers the deployment at `opts.uri` and registers it here and in the store. Refused with
   * 409 `CONFLICT` when one of its services is served already by this process's own code or by
   * another deployment, or when it was registered before with other services or handlers and
   * `force` is not set.
   */
  register(opts: DeploymentOptions, force = false): Promise<Registered> {
    // One registration at a time in this process: two racing ones would both pass the checks.
    const run = this.registering.then(() => this.registerNow(opts, force));
    this.registering = run.catch(() => undefined);
    return run;
  }

  private async registerNow(opts: DeploymentOptions, force: boolean): Promise<Registered> {
    const info = await discover(opts, this.opts);
    await this.refresh();
    const { taken, changed } = this.conflicts(info);
    if (taken.length > 0) {
      throw new IngressError(
        409,
        ErrorCode.CONFLICT,
        `services served already, here or by another deployment: ${taken.join(', ')}`,
      );
    }
    const before = this.byId.get(info.id)?.info;
    if (changed.length > 0 && !force) {
      throw new IngressError(
        409,
        ErrorCode.CONFLICT,
        `deployment ${info.id} was registered with other handlers (${changed.join(', ')}): register it again with force to replace them`,
      );
    }
    // The same services and the same settings: nothing to do (new settings are taken without force).
    if (before && changed.length === 0 && sameSettings(before, info)) {
      return { info: before, created: false };
    }
    await this.records?.put(info);
    this.put(info);
    return { info, created: true };
  }

  /** Removes a deployment here and from the store; false when none has that id. */
  async unregister(id: string): Promise<boolean> {
    const stored = (await this.records?.remove(id)) ?? false;
    return this.remove(id) || stored;
  }

  /** Brings this process in line with the store's registrations. */
  refresh(): Promise<void> {
    if (!this.records) return Promise.resolve();
    return (this.refreshing ??= this.sync().finally(() => (this.refreshing = undefined)));
  }

  /** Refreshes every `ms` until {@link stop} (timer unref'd). */
  start(ms: number): void {
    if (!this.records || ms <= 0) return;
    // Each tick reads the change count only; the records when it moved.
    const tick = (): Promise<void> =>
      (this.refreshing ??= this.sync(true).finally(() => (this.refreshing = undefined)));
    this.timer = setInterval(() => void tick().catch(() => undefined), ms);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async sync(changedOnly = false): Promise<void> {
    const records = this.records!;
    const version = records.version ? await records.version() : undefined;
    if (changedOnly && version !== undefined && version === this.seen) return;
    const stored = await records.list();
    this.seen = version;
    const ids = new Set(stored.map((d) => d.id));
    for (const id of [...this.byId.keys()]) if (!ids.has(id)) this.remove(id);
    for (const d of stored) {
      const cur = this.byId.get(d.id)?.info;
      if (cur && JSON.stringify(cur) === JSON.stringify(d)) continue;
      const { taken } = this.conflicts(d);
      if (taken.length > 0) {
        this.logger.warn(
          `[latchkey] deployment ${d.uri} is not served here: ${taken.join(', ')} served already`,
        );
        continue;
      }
      try {
        this.put(d);
      } catch (e) {
        // A record this version cannot serve (written by another): skipped, the others served.
        this.logger.warn(`[latchkey] deployment ${d.uri} is not served: ${(e as Error).message}`);
      }
    }
  }

  /**
   * A client's request named a service this process does not know: refresh, unless one ran within
   * the last second (so unknown names sent by anyone cost at most one read a second).
   */
  private async missed(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (!this.records || Date.now() - this.lastMissRefresh < MISS_REFRESH_MS) return;
    this.lastMissRefresh = Date.now();
    await this.refresh().catch(() => undefined);
  }

  /**
   * What registering `info` would change: services another deployment or this process's own
   * code serves (`taken`), and services of the same deployment whose description differs.
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
      if (old && JSON.stringify(before) !== JSON.stringify(s)) changed.push(s.name);
    }
    for (const o of old?.services ?? []) {
      if (!info.services.some((s) => s.name === o.name)) changed.push(o.name);
    }
    return { taken, changed };
  }

  /** Serves a deployment here (replacing the one with its id); the caller checked conflicts. */
  private put(info: DeploymentInfo): void {
    this.remove(info.id);
    const client = new DeploymentClient(info, this.opts);
    const defs: AnyDefinition[] = definitionsOf(info);
    this.registry.add(defs);
    this.byId.set(info.id, { info, client });
    for (const d of defs) this.byService.set(d.name, client);
  }

  private remove(id: string): boolean {
    const d = this.byId.get(id);
    if (!d) return false;
    this.byId.delete(id);
    const names = d.info.services.map((s) => s.name);
    for (const n of names) this.byService.delete(n);
    this.registry.remove(names);
    return true;
  }
}
