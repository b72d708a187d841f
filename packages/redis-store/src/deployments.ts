/**
 * The push deployments registered with an engine (`Store.deployments`): one hash, `<prefix>:deployments`,
 * id -> the deployment's JSON record (its URI and the manifest its discovery returned), and its
 * field `~v`, counting the changes. Every process of the engine reads the count every few seconds
 * and the records when it moved, at start, and when asked for a service it does not know (see
 * `push/engine.ts` in core).
 */
import type { DeploymentInfo, DeploymentRecords } from '@latchkey/core';
import type { StoreContext } from './context.js';

/** The field counting the changes (no deployment id starts with `~`). */
const VERSION = '~v';

export class StoredDeployments implements DeploymentRecords {
  private readonly ctx: StoreContext;

  constructor(ctx: StoreContext) {
    this.ctx = ctx;
  }

  async list(): Promise<DeploymentInfo[]> {
    const all = await this.ctx.redis.hgetall(this.ctx.keys.deployments);
    const out: DeploymentInfo[] = [];
    for (const [field, json] of Object.entries(all)) {
      if (field === VERSION) continue;
      try {
        out.push(JSON.parse(json) as DeploymentInfo);
      } catch {
        this.ctx.logger.warn('[latchkey] a stored deployment record is not JSON; it is skipped');
      }
    }
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  async put(info: DeploymentInfo): Promise<void> {
    const k = this.ctx.keys.deployments;
    await this.ctx.redis
      .multi()
      .hset(k, info.id, JSON.stringify(info))
      .hincrby(k, VERSION, 1)
      .exec();
  }

  async remove(id: string): Promise<boolean> {
    const k = this.ctx.keys.deployments;
    const r = await this.ctx.redis.multi().hdel(k, id).hincrby(k, VERSION, 1).exec();
    return Number(r?.[0]?.[1] ?? 0) > 0;
  }

  async version(): Promise<string> {
    return (await this.ctx.redis.hget(this.ctx.keys.deployments, VERSION)) ?? '0';
  }
}
