/**
 * `RedisStore`, the facade: builds the shared {@link StoreContext}, wires the rooms (boot, accept,
 * mailbox, attempts, outcomes, deliveries, control, queries, listing, objects, duties) and
 * implements core's `Store` by handing each call to the room that does it.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis, RedisOptions } from 'ioredis';
import type {
  Accepted,
  Completion,
  Entry,
  EventFilter,
  EventWatch,
  Executor,
  InvocationDetail,
  InvocationInfo,
  InvocationRef,
  InvocationRequest,
  InvocationCounts,
  InvocationStatus,
  KeyPage,
  KeyQueue,
  ListPage,
  ListQuery,
  Outcome,
  PromiseInfo,
  QueueDepth,
  RestartOptions,
  RestartResult,
  StartedInvocation,
  StopSignal,
  Store,
  StoreEvent,
  StoreObserver,
  WorkerHandle,
  WorkerOptions,
} from '@latchkey/core';
import { Acceptor } from './accept.js';
import { AdminDetail } from './admin-detail.js';
import { Attempts, type Adopted } from './attempts.js';
import {
  bootMarker,
  checkBootMarker,
  adoptLayout,
  checkRedis,
  ready,
  type Persistence,
} from './boot.js';
import { connect, redisTarget } from './connection.js';
import type { ScriptWatch, StoreContext } from './context.js';
import { Control } from './control.js';
import { Deliveries } from './deliveries.js';
import { replicationFor } from './durability.js';
import { Events } from './events.js';
import { Handoffs } from './handoff.js';
import { StateCache } from './eager.js';
import { listen } from './subscriber.js';
import { Keys } from './keys.js';
import { Mailbox } from './mailbox.js';
import { storeConfig, type RedisStoreOptions } from './options.js';
import { Outcomes } from './outcomes.js';
import { Queries } from './queries.js';
import { Listing } from './listing.js';
import { Objects } from './objects.js';
import { Duties } from './duties.js';
import { StoredDeployments } from './deployments.js';
import { expirePartitionIndexes, reconcile, sweepPartition } from './reconciler.js';
import { defineScripts, type ScriptedRedis } from './scripts.js';
import type { JobData } from './wire.js';

/**
 * Latchkey's store on Redis + BullMQ. Redis decides (every write is a fenced Lua
 * script); BullMQ delivers (sharded queues wake workers); a reconciler closes
 * every crash window between the two.
 */
export class RedisStore implements Store {
  readonly keys: Keys;
  readonly redis: ScriptedRedis;
  private readonly sub: Redis;
  private readonly ctx: StoreContext;
  private readonly mailbox: Mailbox;
  private readonly outcomes: Outcomes;
  private readonly attempts: Attempts;
  private readonly acceptor: Acceptor;
  private readonly deliveries: Deliveries;
  private readonly controls: Control;
  private readonly queries: Queries;
  private readonly events: Events;
  private readonly listing: Listing;
  private readonly objects: Objects;
  private readonly details: AdminDetail;
  private readonly duties: Duties;
  readonly deployments: StoredDeployments;
  /** Worker handles open in this process (the duties run while there is one). */
  private workers = 0;
  private bootMarker: string | undefined;
  /** Whether `partitions` was configured (else the number stored in Redis is used). */
  private readonly partitionsGiven: boolean;
  /** This store instance's name in its outcome channels (unique even when two share a workerId). */
  private readonly instance: string;
  private outcomeChannels: string[] = [];
  private initialized = false;
  /** What Redis reported at start-up. */
  persistence: Persistence = { aof: false, appendfsync: '' };

  constructor(options: RedisStoreOptions = {}) {
    const target = redisTarget(options);
    const opts = storeConfig(options);
    this.keys = new Keys(opts.prefix, opts.partitions);
    this.partitionsGiven = options.partitions !== undefined;
    const workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.instance = `${workerId}:${randomUUID().slice(0, 8)}`;
    const common: RedisOptions = {
      maxRetriesPerRequest: null,
      lazyConnect: true,
      ...options.redisOptions,
    };
    const redis = connect(target, common, false, opts.coalesceWrites);
    const watch: ScriptWatch = {};
    const replication = replicationFor(redis, options.durability);
    this.redis = defineScripts(redis, watch, replication);
    this.sub = connect(target, common, true);
    for (const c of [this.redis, this.sub]) c.on('error', () => undefined);
    this.ctx = {
      redis: this.redis,
      keys: this.keys,
      opts,
      workerId,
      // Unique per instance even when two share a workerId.
      outcomeChannel: (p) => this.outcomeChannels[p] ?? this.keys.outcomeChannel(p, this.instance),
      logger: options.logger ?? console,
      life: { wiped: false, closed: false },
      watch,
      replication,
    };
    const ctx = this.ctx;
    const stateCache = new StateCache();
    this.outcomes = new Outcomes(ctx);
    this.mailbox = new Mailbox(
      ctx,
      target,
      {
        job: (data, executor, local) => this.attempts.run(data, executor, local),
        handed: (l, local) => this.attempts.runHanded(l, local),
        fired: (data, lease, local) => this.attempts.runFired(data, lease, local),
        delegated: (d) => this.acceptor.takeDelegated(d),
        // A local slot came free: due timers waiting for one can fire (see duties.ts).
        slotFreed: () => this.duties.slotFreed(),
      },
      new Handoffs(ctx, this.sub),
    );
    this.deliveries = new Deliveries(ctx, this.mailbox, this.outcomes, {
      acceptChild: (req) => this.acceptor.acceptWithId(req),
      cancel: (id) => this.controls.cancel(id),
    });
    this.attempts = new Attempts(ctx, this.mailbox, this.outcomes, stateCache, this.deliveries);
    this.acceptor = new Acceptor(ctx, {
      mailbox: this.mailbox,
      outcomes: this.outcomes,
      attempts: this.attempts,
      stateCache,
      deliver: (id, index, completion, want) =>
        this.deliveries.deliver(id, index, completion, want),
    });
    this.outcomes.noted = (id, note) => this.acceptor.delegations.note(id, note);
    this.controls = new Control(ctx, this.mailbox, this.deliveries);
    this.queries = new Queries(ctx, this.acceptor.order);
    this.events = new Events(ctx, this.sub);
    this.listing = new Listing(ctx);
    this.objects = new Objects(ctx, this.listing);
    this.details = new AdminDetail(ctx, this.mailbox);
    this.deployments = new StoredDeployments(ctx);
    this.duties = new Duties(ctx, this.sub, {
      sweep: (p, fireMax) => sweepPartition(ctx, p, this.mailbox, this.deliveries, fireMax),
      freeSlots: () => this.mailbox.freeSlots(),
      expire: (p) => expirePartitionIndexes(ctx, p),
    });
  }

  /** True when the boot marker vanished: Redis was wiped or replaced while we ran. */
  get wiped(): boolean {
    return this.ctx.life.wiped;
  }

  async init(): Promise<void> {
    if (this.initialized) return;
    this.initialized = true;
    await Promise.all([ready(this.redis), ready(this.sub)]);
    this.persistence = await checkRedis(this.ctx);
    await adoptLayout(this.ctx, this.partitionsGiven);
    // Queues only after the checks passed, so a refused start writes nothing.
    await this.mailbox.open();
    this.bootMarker = await bootMarker(this.ctx);
    this.redis.on(
      'ready',
      () => void checkBootMarker(this.ctx, this.bootMarker, () => this.mailbox.abandon()),
    );
    this.outcomeChannels = await listen(this.ctx, this.sub, this.instance, {
      events: this.events,
      outcomes: this.outcomes,
      duties: this.duties,
    });
  }

  // ---------------------------------------------------------------- ingress side

  accept(
    req: InvocationRequest,
    options?: { awaitOutcome?: StopSignal },
  ): Promise<Accepted & { outcome?: Promise<Outcome> }> {
    return this.acceptor.accept(req, options);
  }

  awaitOutcome(invocationId: string, signal?: StopSignal): Promise<Outcome> {
    return this.outcomes.awaitOutcome(invocationId, signal);
  }

  /** The outcome of a completed invocation, or undefined. */
  readOutcome(invocationId: string): Promise<Outcome | undefined> {
    return this.outcomes.readOutcome(invocationId);
  }

  describe(invocationId: string, withJournal = false): Promise<InvocationInfo | undefined> {
    return this.queries.describe(invocationId, withJournal);
  }

  progress(
    invocationId: string,
    fromIndex: number,
  ): Promise<{ status: InvocationStatus; entries: Entry[] } | undefined> {
    return this.queries.progress(invocationId, fromIndex);
  }

  watchEvents(filter: EventFilter, listener: (e: StoreEvent) => void): EventWatch {
    return this.events.watch(filter, listener);
  }

  lookup(ref: InvocationRef): Promise<string | undefined> {
    return this.queries.lookup(ref);
  }

  getState(service: string, key: string): Promise<Map<string, string>> {
    return this.queries.getState(service, key);
  }

  // ---------------------------------------------------------------- admin listing and objects

  list(query: ListQuery): Promise<ListPage> {
    return this.listing.list(query);
  }

  counts(filter?: { service?: string }): Promise<InvocationCounts> {
    return this.listing.counts(filter);
  }

  listKeys(service: string, page?: { cursor?: string; limit?: number }): Promise<KeyPage> {
    return this.objects.listKeys(service, page);
  }

  keyQueue(service: string, key: string, limit?: number): Promise<KeyQueue> {
    return this.objects.keyQueue(service, key, limit);
  }

  promises(workflow: string, key: string): Promise<PromiseInfo[]> {
    return this.objects.promises(workflow, key);
  }

  clearState(service: string, key: string): Promise<boolean> {
    return this.objects.clearState(service, key);
  }

  // ---------------------------------------------------------------- deliveries and control

  /** Delivers a completion to entry `index` of an invocation (see `Deliveries.deliver`). */
  deliver(
    invocationId: string,
    index: number,
    completion: Completion,
    want: string,
  ): Promise<'ok' | 'dup' | 'done' | 'gone' | 'full'> {
    return this.deliveries.deliver(invocationId, index, completion, want);
  }

  /** Resolves or rejects the named signal of an invocation (see `Deliveries.resolveSignal`). */
  resolveSignal(
    invocationId: string,
    name: string,
    completion: Completion,
  ): Promise<'ok' | 'dup' | 'done' | 'gone'> {
    return this.deliveries.resolveSignal(invocationId, name, completion);
  }

  resolveAwakeable(
    awakeableId: string,
    completion: Completion,
  ): Promise<'ok' | 'refused' | 'full'> {
    return this.controls.resolveAwakeable(awakeableId, completion);
  }

  cancel(invocationId: string, options: { token?: string } = {}): Promise<boolean> {
    return this.controls.cancel(invocationId, options);
  }

  kill(invocationId: string): Promise<boolean> {
    return this.controls.kill(invocationId);
  }

  pause(invocationId: string): Promise<boolean> {
    return this.controls.control(invocationId, 'pause');
  }

  resume(invocationId: string): Promise<boolean> {
    return this.controls.control(invocationId, 'resume');
  }

  purge(invocationId: string): Promise<boolean> {
    return this.controls.purge(invocationId);
  }

  patchState(service: string, key: string, patch: Record<string, unknown>): Promise<boolean> {
    return this.controls.patchState(service, key, patch);
  }

  inspect(invocationId: string): Promise<InvocationDetail | undefined> {
    return this.details.inspect(invocationId);
  }

  restartAsNew(invocationId: string, options?: RestartOptions): Promise<RestartResult> {
    return this.details.restartAsNew(invocationId, options);
  }

  // ---------------------------------------------------------------- worker side

  /** Starts a worker; this process takes its share of the partition duties while it runs one. */
  async startWorker(executor: Executor, options: WorkerOptions = {}): Promise<WorkerHandle> {
    const handle = await this.mailbox.start(executor, options);
    if (this.workers++ === 0) this.duties.start();
    let closed = false;
    return {
      close: async (timeoutMs?: number) => {
        // Given back first: the processes still running take the partitions (and their timers) now.
        if (!closed && --this.workers === 0) await this.duties.stop();
        closed = true;
        await handle.close(timeoutMs);
      },
    };
  }

  /** @internal The partitions this process sweeps now (tests). */
  ownedPartitions(): number[] {
    return this.duties.partitions();
  }

  /** @internal Adds a mailbox job, as a lost or stale one would (crash tests: stale wake-ups). */
  redispatch(data: JobData, ds: number, delayMs: number): Promise<void> {
    return this.mailbox.dispatch(data, ds, delayMs);
  }

  /** Takes over an attempt another process of this store leased, once (`Attempt.handle`; push). */
  adoptAttempt(handle: string, inv: StartedInvocation): Promise<Adopted> {
    return this.attempts.adopt(handle, inv);
  }

  /** Reports script latency and reconciler sweeps to `observer` (metrics; see docs/METRICS.md). */
  observe(observer: StoreObserver): void {
    this.ctx.watch.observer = observer;
  }

  /** The mailbox shard queues' jobs by state (BullMQ `getJobCounts`), for metrics. */
  queueDepths(): Promise<QueueDepth[]> {
    return this.mailbox.depths();
  }

  /** One sweep of every partition, whoever owns it (each partition its own call); items handled. */
  reconcile(): Promise<number> {
    return reconcile(this.ctx, this.mailbox, this.deliveries);
  }

  async close(): Promise<void> {
    if (this.ctx.life.closed) return;
    this.ctx.life.closed = true;
    await this.duties.stop();
    this.outcomes.rejectAll();
    this.events.close();
    await this.mailbox.close();
    this.sub.disconnect();
    await this.redis.quit().catch(() => undefined);
    this.redis.disconnect();
  }
}

/** Creates a {@link RedisStore}; `serve()` calls this when no store is passed. */
export function createRedisStore(options: RedisStoreOptions = {}): RedisStore {
  return new RedisStore(options);
}
