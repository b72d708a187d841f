/**
 * The push deployments registered with an engine (`Store.deployments`): one hash, `<prefix>:deployments`,
 * id -> the deployment's JSON record (its URI and the manifest its discovery returned). Every
 * process of the engine reads it at start, when asked for a service it does not know, and every
 * few seconds (see `push/engine.ts` in core).
 */
import type { DeploymentInfo, DeploymentRecords } from '@latchkey/core';
import type { StoreContext } from './context.js';

export class StoredDeployments implements DeploymentRecords {
  private readonly ctx: StoreContext;

  constructor(ctx: StoreContext) {
    this.ctx = ctx;
  }

  async list(): Promise<DeploymentInfo[]> {
    const all = await this.ctx.redis.hgetall(this.ctx.keys.deployments);
    const out: DeploymentInfo[] = [];
    for (const json of Object.values(all)) {
      try {
        out.push(JSON.parse(json) as DeploymentInfo);
      } catch {
        this.ctx.logger.warn('[latchkey] a stored deployment record is not JSON; it is skipped');
      }
    }
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  async put(info: DeploymentInfo): Promise<void> {
    await this.ctx.redis.hset(this.ctx.keys.deployments, info.id, JSON.stringify(info));
  }

  async remove(id: string): Promise<boolean> {
    return (await this.ctx.redis.hdel(this.ctx.keys.deployments, id)) > 0;
  }
}
