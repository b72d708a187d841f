/**
 * `durability: 'replicated'`: a script's write counts only once a replica has it. Redis
 * replicates asynchronously, so a master that dies can take its last writes with it; `WAIT n t`
 * blocks until `n` replicas acknowledged every earlier write of the connection (or `t` ms passed)
 * and answers how many did.
 *
 * One WAIT serves every script reply that arrived in the same event-loop turn on the same master
 * (a group commit): it is sent after those replies, on the connection they came on, so it covers
 * their writes whatever else the connection carries. A WAIT that answers fewer than `n` fails
 * the writes it covers (`NOT_REPLICATED`): the caller did not get an acknowledgement, and what it
 * wrote may or may not survive a failover, as with any unanswered request.
 */
import calculateSlot from 'cluster-key-slot';
import { Command, type Cluster, type Redis } from 'ioredis';
import { isCluster } from './connection.js';
import { StoreError } from './errors.js';

/** What a store waits for before a write counts (see `RedisStoreOptions.durability`). */
export interface Replicated {
  /** Replicas that must acknowledge each write. */
  replicas: number;
  /** How long to wait for them (ms). */
  timeoutMs: number;
}

/** `WAIT`, routed on a cluster to the master of the slot the writes it covers were made on. */
class WaitCommand extends Command {
  private readonly at: number;
  constructor(need: Replicated, slot: number) {
    super('wait', [need.replicas, need.timeoutMs], { replyEncoding: 'utf8' });
    this.at = slot;
  }
  override getSlot(): number {
    return this.at;
  }
}

/** The replication a store's `durability` asks for (none for `'primary'`). */
export function replicationFor(
  redis: Redis,
  durability: 'primary' | 'replicated' | Replicated | undefined,
): Replication | undefined {
  if (durability === undefined || durability === 'primary') return undefined;
  const need = durability === 'replicated' ? { replicas: 1, timeoutMs: 2000 } : durability;
  return new Replication(redis, need);
}

interface Group {
  slot: number;
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
}

export class Replication {
  private readonly redis: Redis;
  private readonly cluster: Cluster | undefined;
  private readonly need: Replicated;
  /** Replies of this turn waiting for their master's WAIT, by master (one server: ''). */
  private groups = new Map<string, Group>();
  private scheduled = false;

  constructor(redis: Redis, need: Replicated) {
    this.redis = redis;
    this.cluster = isCluster(redis) ? (redis as unknown as Cluster) : undefined;
    this.need = need;
  }

  /**
   * Resolves once everything written on `barrier`'s master so far is on `need.replicas` replicas,
   * whoever wrote it: a write of our own to the barrier key, then its WAIT (a master's replication
   * stream is ordered, so acknowledging our write acknowledges every earlier one). An outcome
   * another process published is answered only after this, so a client never gets an answer the
   * replica does not have yet.
   */
  barrier(barrier: string): Promise<void> {
    return this.after(this.redis.set(barrier, '1'), barrier).then(() => undefined);
  }

  /** `reply`, once a WAIT after it confirmed its write on `need.replicas` replicas. */
  after<T>(reply: Promise<T>, key: string): Promise<T> {
    return reply.then(
      (value) =>
        new Promise<T>((resolve, reject) => {
          const slot = calculateSlot(key);
          const node = this.cluster ? (this.cluster.slots[slot]?.[0] ?? `slot:${slot}`) : '';
          let group = this.groups.get(node);
          if (!group) this.groups.set(node, (group = { slot, waiters: [] }));
          group.waiters.push({ resolve: () => resolve(value), reject });
          if (!this.scheduled) {
            this.scheduled = true;
            setImmediate(() => this.flush());
          }
        }),
    );
  }

  private flush(): void {
    this.scheduled = false;
    const groups = this.groups;
    this.groups = new Map();
    for (const group of groups.values()) {
      const wait = new WaitCommand(this.need, group.slot);
      (this.redis.sendCommand(wait) as Promise<unknown>).then(
        (acked) => {
          if (Number(acked) >= this.need.replicas) {
            for (const w of group.waiters) w.resolve();
            return;
          }
          const e = new StoreError(
            `${Number(acked)} of ${this.need.replicas} replicas acknowledged the write within ${this.need.timeoutMs} ms`,
            'NOT_REPLICATED',
          );
          for (const w of group.waiters) w.reject(e);
        },
        (e: unknown) => {
          for (const w of group.waiters) w.reject(e);
        },
      );
    }
  }
}
