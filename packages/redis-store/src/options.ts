// The options of a Redis store (createRedisStore) and their defaults.
import type { RedisOptions } from 'ioredis';
import type { NewEntry } from '@latchkey/core';
import type { Replicated } from './durability.js';

/** Fault-injection points for crash tests: each runs synchronously at its point. */
export interface StoreHooks {
  /** After a journal commit was acknowledged by Redis, before the handler continues. */
  afterCommit?(info: {
    invocationId: string;
    service: string;
    handler: string;
    fromIndex: number;
    entries: NewEntry[];
  }): void;
  /** After an attempt was leased (start script ran), before the handler runs. */
  afterStart?(info: {
    invocationId: string;
    service: string;
    handler: string;
    attempt: number;
  }): void;
  /** After the completion script ran, before the mailbox job is acknowledged. */
  afterComplete?(info: { invocationId: string; service: string; handler: string }): void;
  /**
   * When a hand-off reached this worker (see `handoff`), before it starts the attempt in a free
   * slot (`local`) or, with none free, adds the mailbox job.
   */
  afterHandoff?(info: { invocationId: string; service: string; local: boolean }): void;
  /**
   * When this process's sweep fired a timer by leasing it to this process (a suspended or
   * backing-off invocation come due), before its attempt starts.
   */
  afterFire?(info: { invocationId: string; service: string }): void;
  /** After an eager run produced its outcome, before the accept script (see `eagerCompletion`). */
  beforeEagerAccept?(info: { invocationId: string; service: string; handler: string }): void;
}

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /** Redis URL; defaults to `REDIS_URL`. */
  url?: string;
  /**
   * A Redis Cluster instead of one server: its seed nodes, `host:port` (the others are found from
   * them). Defaults to `REDIS_CLUSTER_NODES` (comma-separated) when neither this, `url` nor
   * `REDIS_URL` is set. Needs Redis 7 or later (sharded pub/sub); see docs/SCALING.md.
   */
  cluster?: readonly string[];
  /** Extra ioredis options. */
  redisOptions?: RedisOptions;
  /** Key prefix; default `LATCHKEY_PREFIX`, else `lk`. */
  prefix?: string;
  /**
   * Number of partitions (hash tags: on a cluster, the most masters the work spreads over). Chosen
   * when the store's data is first created and kept in Redis (`<prefix>:layout`): a process
   * started without this option uses the stored number, one configured with another refuses to
   * start (`PARTITIONS_MISMATCH`). Default 16.
   */
  partitions?: number;
  /** Number of BullMQ mailbox queues; default 4. */
  shards?: number;
  /** Lease of a running attempt (ms); the worker renews it every third. Default 4000. */
  leaseMs?: number;
  /** How long a ready invocation may wait for its mailbox job before the reconciler redispatches it (ms). Default 5000. */
  graceMs?: number;
  /**
   * The longest a partition's owner waits between two sweeps of it (ms); default 1000. The owner
   * sweeps sooner when a deadline in the partition comes (a timer's wake time, a lease's expiry),
   * so this bounds only how late a deadline it was not told of is found (see `dutyLeaseMs`).
   */
  reconcileIntervalMs?: number;
  /**
   * Partition duties (sweeping a partition and firing its timers; see ARCHITECTURE.md "Partition
   * duties"): how long a worker process's hold on a partition, and its place among the live
   * processes, last unless renewed (ms). A process killed without closing loses its partitions
   * after at most this long, and the processes now assigned take them over. Default: `leaseMs`,
   * so a dead process's partitions are taken over about when its attempts' leases expire.
   */
  dutyLeaseMs?: number;
  /**
   * How often a worker process renews its partitions and its place among the live processes, and
   * looks at who else is alive (ms). Default: a third of `dutyLeaseMs`. One heartbeat per process,
   * one renewal per partition: background load does not grow with the number of processes.
   */
  dutyRenewMs?: number;
  /** BullMQ job lock (ms); default 4000. */
  lockDurationMs?: number;
  /**
   * BullMQ stalled-job check period (ms); default 30,000. Every worker process runs it for every
   * shard queue, so it is background load per process. Recovery does not wait for it (the
   * partition's owner dispatches an invocation whose lease expired); it only returns the mailbox
   * jobs a dead process left active.
   */
  stalledIntervalMs?: number;
  /** BullMQ `maxStalledCount`; default 1. Exceeding it never fails an invocation: the reconciler takes over. */
  maxStalledCount?: number;
  /**
   * When a write counts as done (docs/SCALING.md "Durability"). `'primary'` (default): when the
   * master applied it; Redis replicates asynchronously, so a failover may lose the last writes
   * acknowledged before it. `'replicated'`: every script's write is followed by `WAIT` (one per
   * master per event-loop turn) and counts once 1 replica acknowledged it, within 2,000 ms, else
   * it fails with `NOT_REPLICATED` (an accept is then answered 503, an attempt retried); or give
   * `{ replicas, timeoutMs }`.
   */
  durability?: 'primary' | 'replicated' | Replicated;
  /** Test hooks. */
  hooks?: StoreHooks;
  /**
   * Start ready invocations in this process when it runs a worker with a free slot, instead of
   * a mailbox round trip (default true). Timers (delayed starts, sleeps, retries) are fired by
   * the partition's owner, through this path when it has a free slot, else a mailbox job.
   */
  localDispatch?: boolean;
  /**
   * The cheap hand-off (default true; see `handoff.ts`): a worker process with the local fast path
   * announces itself in Redis and listens on a pub/sub channel per partition; a process that makes
   * an invocation ready without a free worker slot of its own wakes such a worker with one message
   * (published by the accept script itself) instead of a BullMQ job. The start script still
   * decides; a lost message costs the grace period. Delayed starts, timers and retries, and a
   * worker without a free slot, still go through BullMQ.
   */
  handoff?: boolean;
  /**
   * Send the commands issued within one event-loop turn in one socket write (default true; see
   * `coalesceWrites`). Turn off only to compare.
   */
  coalesceWrites?: boolean;
  /**
   * Eager completion (default true; needs the local fast path): a service handler, or an
   * object's exclusive handler on a key whose state this process committed last, runs before
   * its invocation is accepted; when it only reads and writes state and finishes within the
   * event-loop turn, one script accepts and completes it (checked against the key's fence).
   * See `Attempt.eager` and ARCHITECTURE.md "Eager completion".
   */
  eagerCompletion?: boolean;
  /**
   * Delegated accepts (default true; needs `handoff` and `eagerCompletion`; see `delegate.ts`):
   * a process without a free worker slot of its own (an ingress-only process) asks a worker of
   * another process to accept a call to a service handler, so that the worker runs it eagerly and
   * one script accepts and completes it. Off with `durability: 'replicated'`. Nothing is
   * acknowledged before an accept script ran; see `delegateTimeoutMs` for a lost message.
   */
  delegateAccepts?: boolean;
  /**
   * How long a delegating process waits to hear that the worker accepted a delegated call
   * (ms, default 1,000) before it accepts the call itself, with the same id (the second accept
   * finds the first: nothing runs twice that was recorded). Bounds what a worker dying with the
   * message costs the caller.
   */
  delegateTimeoutMs?: number;
  /**
   * The most completions an invocation may hold before a further awakeable resolution (from a
   * client, or a handler given the id) is refused; default 10,000. The engine's own completions
   * (call results, promise values) are never refused.
   */
  maxCompletions?: number;
  /**
   * Live events (`Store.watchEvents`): how long a listening process's interest lasts in Redis
   * (ms) unless renewed; it renews every third of it while it has listeners. The scripts publish
   * events while some process's interest lasts, so after the last listener leaves they go on
   * publishing for at most this long. Default 15,000.
   */
  eventsFlagTtlMs?: number;
  /**
   * The most index entries one partition examines for a page of the admin API's listing when
   * filters the chosen index does not answer are checked against each invocation (default 2,000;
   * never fewer than the page's limit). A page that reaches it ends there, with a cursor for the
   * rest; it bounds how long one listing script runs in Redis.
   */
  listExamineLimit?: number;
  /** A name for this process in invocation records. */
  workerId?: string;
  /** Where warnings go. */
  logger?: Pick<Console, 'warn' | 'error' | 'info'>;
}

export const DEFAULTS = {
  prefix: 'lk',
  partitions: 16,
  shards: 4,
  leaseMs: 4000,
  graceMs: 5000,
  reconcileIntervalMs: 1000,
  lockDurationMs: 4000,
  stalledIntervalMs: 30_000,
  maxStalledCount: 1,
  localDispatch: true,
  handoff: true,
  coalesceWrites: true,
  eagerCompletion: true,
  delegateAccepts: true,
  delegateTimeoutMs: 1000,
  maxCompletions: 10_000,
  eventsFlagTtlMs: 15_000,
  listExamineLimit: 2000,
};

/** A store's options with the defaults filled in. */
export type StoreConfig = typeof DEFAULTS & RedisStoreOptions;

/** The options with their defaults (and `LATCHKEY_PREFIX`) filled in. */
export function storeConfig(options: RedisStoreOptions): StoreConfig {
  const o: Record<string, unknown> = { ...DEFAULTS };
  const envPrefix = process.env['LATCHKEY_PREFIX'];
  if (envPrefix) o['prefix'] = envPrefix;
  for (const [k, v] of Object.entries(options)) if (v !== undefined) o[k] = v;
  return o as unknown as StoreConfig;
}
