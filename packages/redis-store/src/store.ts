import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type {
  Accepted,
  Attempt,
  Entry,
  Executor,
  InvocationInfo,
  InvocationRequest,
  InvocationStatus,
  NewEntry,
  Outcome,
  SerializedError,
  StartedInvocation,
  StateOp,
  Store,
  TargetMode,
  WorkerHandle,
  WorkerOptions,
} from '@latchkey/core';
import { LeaseLostError, StoreError } from './errors.js';
import { Keys, newInvocationId, partitionOf, partitionOfId } from './keys.js';
import { defineScripts, type ScriptedRedis } from './scripts.js';

/** Fault-injection points for crash tests: each runs synchronously at its point. */
export interface StoreHooks {
  /** After a journal commit was acknowledged by Redis, before the handler continues. */
  afterCommit?(info: { invocationId: string; service: string; handler: string; fromIndex: number; entries: NewEntry[] }): void;
  /** After an attempt was leased (start script ran), before the handler runs. */
  afterStart?(info: { invocationId: string; service: string; handler: string; attempt: number }): void;
  /** After the completion script ran, before the mailbox job is acknowledged. */
  afterComplete?(info: { invocationId: string; service: string; handler: string }): void;
}

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /** Redis URL; defaults to `REDIS_URL`. */
  url?: string;
  /** Extra ioredis options. */
  redisOptions?: RedisOptions;
  /** Key prefix; default `lk`. */
  prefix?: string;
  /** Number of partitions (hash tags). Fixed for the life of the data; default 16. */
  partitions?: number;
  /** Number of BullMQ mailbox queues; default 4. */
  shards?: number;
  /** Lease of a running attempt (ms); the worker renews it every third. Default 4000. */
  leaseMs?: number;
  /** How long a ready invocation may wait for its mailbox job before the reconciler redispatches it (ms). Default 5000. */
  graceMs?: number;
  /** Reconciler sweep period (ms); default 1000. */
  reconcileIntervalMs?: number;
  /** BullMQ job lock (ms); default 4000. */
  lockDurationMs?: number;
  /** BullMQ stalled-job check period (ms); default 2000. */
  stalledIntervalMs?: number;
  /** BullMQ `maxStalledCount`; default 1. Exceeding it never fails an invocation: the reconciler takes over. */
  maxStalledCount?: number;
  /** Test hooks. */
  hooks?: StoreHooks;
  /** A name for this process in invocation records. */
  workerId?: string;
  /** Where warnings go. */
  logger?: Pick<Console, 'warn' | 'error' | 'info'>;
}

interface JobData {
  i: string;
  s: string;
  k: string;
  m: TargetMode;
}

interface ScriptKeys {
  p: number;
  inv: string;
  journal: string;
  state: string;
  inbox: string;
  fence: string;
  due: string;
}

interface Waiter {
  resolve: (o: Outcome) => void;
  reject: (e: unknown) => void;
}

const DEFAULTS = {
  prefix: 'lk',
  partitions: 16,
  shards: 4,
  leaseMs: 4000,
  graceMs: 5000,
  reconcileIntervalMs: 1000,
  lockDurationMs: 4000,
  stalledIntervalMs: 2000,
  maxStalledCount: 1,
};

function toSerializedError(json: string): SerializedError {
  try {
    return JSON.parse(json) as SerializedError;
  } catch {
    return { name: 'Error', code: 'INTERNAL', message: json };
  }
}

/** Connects a lazy connection, or waits until an already-connecting one is ready. */
async function ready(r: Redis): Promise<void> {
  if (r.status === 'ready') return;
  if (r.status === 'wait') {
    await r.connect();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const onReady = (): void => {
      r.off('end', onEnd);
      resolve();
    };
    const onEnd = (): void => {
      r.off('ready', onReady);
      reject(new StoreError('Redis connection ended before it was ready', 'REDIS_UNREACHABLE'));
    };
    r.once('ready', onReady);
    r.once('end', onEnd);
  });
}

/** Serializes a new entry; a sleep's due time is left as a token the script fills from the Redis clock. */
function encodeEntry(e: NewEntry): string {
  if (e.k === 'sleep') {
    const name = e.n === undefined ? '' : `,"n":${JSON.stringify(e.n)}`;
    return `{"k":"sleep"${name},"due":"@+${Math.max(0, Math.round(e.ms))}"}`;
  }
  return JSON.stringify(e);
}

function batchArgs(entries: NewEntry[], ops: StateOp[]): (string | number)[] {
  const args: (string | number)[] = [entries.length, ...entries.map(encodeEntry), ops.length];
  for (const op of ops) {
    if (op.op === 'set') args.push('s', op.n, op.v);
    else if (op.op === 'clear') args.push('c', op.n, '');
    else args.push('a', '', '');
  }
  return args;
}

/**
 * Latchkey's store on Redis + BullMQ. Redis decides (every write is a fenced Lua
 * script); BullMQ delivers (sharded queues wake workers); a reconciler closes
 * every crash window between the two.
 */
export class RedisStore implements Store {
  readonly keys: Keys;
  readonly redis: ScriptedRedis;
  private readonly sub: Redis;
  private readonly opts: typeof DEFAULTS & RedisStoreOptions;
  private readonly url: string;
  private readonly queues: Queue[] = [];
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly workers: Worker[] = [];
  private bootMarker: string | undefined;
  private initialized = false;
  private closed = false;
  private readonly workerId: string;
  private readonly logger: Pick<Console, 'warn' | 'error' | 'info'>;
  /** What Redis reported at start-up. */
  persistence: { aof: boolean; appendfsync: string } = { aof: false, appendfsync: '' };

  constructor(options: RedisStoreOptions = {}) {
    const url = options.url ?? process.env['REDIS_URL'];
    if (!url) throw new StoreError('no Redis configured: pass `url` or set REDIS_URL', 'REDIS_NOT_CONFIGURED');
    this.url = url;
    const o: Record<string, unknown> = { ...DEFAULTS };
    for (const [k, v] of Object.entries(options)) if (v !== undefined) o[k] = v;
    this.opts = o as unknown as typeof DEFAULTS & RedisStoreOptions;
    this.keys = new Keys(this.opts.prefix);
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.logger = options.logger ?? console;
    const common: RedisOptions = { maxRetriesPerRequest: null, lazyConnect: true, ...options.redisOptions };
    this.redis = defineScripts(new Redis(url, common));
    this.sub = new Redis(url, common);
    this.redis.on('error', () => undefined);
    this.sub.on('error', () => undefined);
  }

  private connectionOptions(): ConnectionOptions {
    return { url: this.url, maxRetriesPerRequest: null, ...this.opts.redisOptions } as ConnectionOptions;
  }

  async init(): Promise<void> {
    if (this.initialized) return;
    this.initialized = true;
    await Promise.all([ready(this.redis), ready(this.sub)]);
    const info = await this.redis.info();
    const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
    if (policy !== undefined && policy !== 'noeviction') {
      throw new StoreError(
        `Redis maxmemory-policy is ${policy}; Latchkey needs noeviction (evicted journals would be silently lost)`,
        'REDIS_EVICTION_POLICY',
      );
    }
    const aof = /aof_enabled:(\d)/.exec(info)?.[1] === '1';
    let appendfsync = '';
    try {
      const cfg = (await this.redis.config('GET', 'appendfsync')) as string[];
      appendfsync = cfg[1] ?? '';
    } catch {
      // CONFIG may be disabled on managed Redis
    }
    this.persistence = { aof, appendfsync };
    if (!aof) this.logger.warn('[latchkey] Redis has AOF off: acknowledged invocations are lost if Redis restarts');
    // Queues only after the checks passed, so a refused start writes nothing.
    for (let s = 0; s < this.opts.shards; s++) {
      const q = new Queue('jobs', { connection: this.redis, prefix: this.keys.queuePrefix(s) });
      q.on('error', (e) => {
        if (!this.closed) this.logger.warn(`[latchkey] mailbox queue error: ${e.message}`);
      });
      this.queues.push(q);
    }
    await this.redis.set(this.keys.boot, `${randomUUID()} ${new Date().toISOString()}`, 'NX');
    const marker = await this.redis.get(this.keys.boot);
    this.bootMarker = marker ?? undefined;
    this.redis.on('ready', () => void this.checkBootMarker());
    this.sub.on('message', (_ch: string, msg: string) => this.onDone(msg));
    this.sub.on('ready', () => void this.recheckWaiters());
    await this.sub.subscribe(this.keys.channel);
  }

  /** True when the boot marker vanished: Redis was wiped or replaced while we ran. */
  wiped = false;

  private async checkBootMarker(): Promise<void> {
    try {
      const m = await this.redis.get(this.keys.boot);
      if (m !== this.bootMarker) {
        this.wiped = true;
        for (const w of this.workers) void w.close(true).catch(() => undefined);
        this.logger.error(
          `[latchkey] Redis boot marker ${m === null ? 'is gone' : 'changed'}: Redis was wiped or replaced. Refusing to run invocations.`,
        );
      }
    } catch {
      // reconnecting; checked again on the next ready
    }
  }

  // ---------------------------------------------------------------- ingress side

  async accept(req: InvocationRequest): Promise<Accepted> {
    if (this.wiped) throw new StoreError('Redis was wiped or replaced while Latchkey ran; refusing new invocations', 'REDIS_WIPED');
    const P = this.opts.partitions;
    const { service, handler, key } = req.target;
    const idem = req.idempotencyKey ?? '';
    let p: number;
    if (key !== undefined) p = partitionOf(P, service, key);
    else if (idem !== '') p = partitionOf(P, service, handler, idem);
    else p = randomBytes(1)[0]! % P;
    const id = newInvocationId(p, randomBytes(22));
    const k = this.keys;
    const keyed = key !== undefined;
    const res = (await this.redis.acceptInvocation(
      k.inv(p, id),
      keyed ? k.inbox(p, service, key) : k.unused(p),
      idem !== '' ? k.idempotency(p, service, key ?? '', handler, idem) : k.unused(p),
      keyed ? k.workflow(p, service, key) : k.unused(p),
      k.due(p),
      id,
      service,
      handler,
      key ?? '',
      req.mode,
      req.input,
      idem,
      JSON.stringify(req.headers ?? {}),
      Math.max(0, Math.round(req.delayMs ?? 0)),
      this.opts.graceMs,
      JSON.stringify({
        journal: req.journalRetentionMs,
        idempotency: req.idempotencyRetentionMs,
        workflow: req.workflowRetentionMs,
      }),
    )) as string[];
    if (res[0] === 'dup') {
      return { invocationId: res[1]!, status: 'PreviouslyAccepted', reason: res[2] as 'idempotency' | 'workflow' };
    }
    if (res[0] === 'ok') {
      const st = res[1];
      if (st === 'ready' || st === 'delayed') {
        await this.dispatch({ i: id, s: service, k: key ?? '', m: req.mode }, Number(res[2]), Number(res[3]));
      }
    }
    return { invocationId: id, status: 'Accepted' };
  }

  /** Adds the mailbox job that wakes a worker for an invocation. */
  private async dispatch(data: JobData, ds: number, delayMs: number, suffix = ''): Promise<void> {
    const p = partitionOfId(data.i, this.opts.partitions);
    if (p === undefined) return;
    const q = this.queues[p % this.opts.shards]!;
    await q.add('run', data, {
      jobId: `${data.i}-${ds}${suffix}`,
      delay: Math.max(0, delayMs),
      removeOnComplete: true,
      removeOnFail: true,
      attempts: 1,
    });
  }

  awaitOutcome(invocationId: string, signal?: AbortSignal): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      let set = this.waiters.get(invocationId);
      if (!set) this.waiters.set(invocationId, (set = new Set()));
      const w: Waiter = {
        resolve: (o) => {
          cleanup();
          resolve(o);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      };
      const onAbort = (): void => w.reject(signal?.reason ?? new Error('aborted'));
      const cleanup = (): void => {
        set.delete(w);
        if (set.size === 0) this.waiters.delete(invocationId);
        signal?.removeEventListener('abort', onAbort);
      };
      set.add(w);
      signal?.addEventListener('abort', onAbort, { once: true });
      // Registered before reading, so a completion between the two is never missed.
      this.readOutcome(invocationId).then(
        (o) => {
          if (o) w.resolve(o);
        },
        (e: unknown) => w.reject(e),
      );
    });
  }

  /** The outcome of a completed invocation, or undefined. */
  async readOutcome(invocationId: string): Promise<Outcome | undefined> {
    const p = partitionOfId(invocationId, this.opts.partitions);
    if (p === undefined) return undefined;
    const [st, out, err] = await this.redis.hmget(this.keys.inv(p, invocationId), 'st', 'out', 'err');
    if (st !== 'completed') return undefined;
    if (err !== null && err !== undefined) return { ok: false, error: toSerializedError(err) };
    return { ok: true, value: out === null || out === undefined || out === '' ? undefined : out };
  }

  private onDone(msg: string): void {
    const nl = msg.indexOf('\n');
    const id = nl < 0 ? msg : msg.slice(0, nl);
    const set = this.waiters.get(id);
    if (!set) return;
    if (nl < 0) {
      void this.readOutcome(id).then((o) => {
        if (o) for (const w of [...set]) w.resolve(o);
      });
      return;
    }
    const rest = msg.slice(nl + 1);
    const nl2 = rest.indexOf('\n');
    const kind = rest.slice(0, nl2);
    const payload = rest.slice(nl2 + 1);
    const o: Outcome =
      kind === 'ok'
        ? { ok: true, value: payload === '' ? undefined : payload }
        : { ok: false, error: toSerializedError(payload) };
    for (const w of [...set]) w.resolve(o);
  }

  private async recheckWaiters(): Promise<void> {
    for (const [id, set] of this.waiters) {
      try {
        const o = await this.readOutcome(id);
        if (o) for (const w of [...set]) w.resolve(o);
      } catch {
        // reconnecting again; the next ready re-checks
      }
    }
  }

  async describe(invocationId: string, withJournal = false): Promise<InvocationInfo | undefined> {
    const p = partitionOfId(invocationId, this.opts.partitions);
    if (p === undefined) return undefined;
    const h = await this.redis.hgetall(this.keys.inv(p, invocationId));
    if (!h['st']) return undefined;
    const info: InvocationInfo = {
      id: invocationId,
      target: { service: h['svc']!, handler: h['h']!, ...(h['key'] ? { key: h['key'] } : {}) },
      mode: h['mode'] as TargetMode,
      status: h['st'] as InvocationStatus,
      attempts: Number(h['rc'] ?? 0),
      createdAt: Number(h['ct']),
    };
    if (h['lastErr']) info.lastFailure = toSerializedError(h['lastErr']);
    if (h['st'] === 'completed') {
      info.outcome =
        h['err'] !== undefined
          ? { ok: false, error: toSerializedError(h['err']) }
          : { ok: true, value: h['out'] === '' ? undefined : h['out'] };
    }
    if (withJournal) {
      const raw = await this.redis.lrange(this.keys.journal(p, invocationId), 0, -1);
      info.journal = raw.map((e) => JSON.parse(e) as Entry);
    }
    return info;
  }

  async getState(service: string, key: string): Promise<Map<string, string>> {
    const p = partitionOf(this.opts.partitions, service, key);
    return new Map(Object.entries(await this.redis.hgetall(this.keys.state(p, service, key))));
  }

  // ---------------------------------------------------------------- worker side

  async startWorker(executor: Executor, options: WorkerOptions = {}): Promise<WorkerHandle> {
    const workers: Worker[] = [];
    const concurrency = options.concurrency ?? 32;
    for (let s = 0; s < this.opts.shards; s++) {
      const w = new Worker<JobData>('jobs', (job) => this.process(job, executor), {
        connection: this.connectionOptions(),
        prefix: this.keys.queuePrefix(s),
        concurrency,
        lockDuration: this.opts.lockDurationMs,
        stalledInterval: this.opts.stalledIntervalMs,
        maxStalledCount: this.opts.maxStalledCount,
        drainDelay: 5,
      });
      w.on('error', (e) => {
        if (!this.closed) this.logger.warn(`[latchkey] mailbox worker error: ${e.message}`);
      });
      workers.push(w);
      this.workers.push(w);
    }
    const timer = setInterval(() => void this.reconcile(), this.opts.reconcileIntervalMs);
    timer.unref();
    return {
      close: async (timeoutMs = 30_000) => {
        clearInterval(timer);
        executor.hurry();
        const all = Promise.all(workers.map((w) => w.close()));
        let t: NodeJS.Timeout | undefined;
        const expire = new Promise<void>((r) => (t = setTimeout(r, timeoutMs)));
        const done = await Promise.race([all.then(() => true), expire.then(() => false)]);
        clearTimeout(t);
        if (!done) await Promise.all(workers.map((w) => w.close(true)));
      },
    };
  }

  /** One reconciler sweep over every partition (one pipeline). */
  async reconcile(): Promise<number> {
    if (this.wiped || this.closed) return 0;
    try {
      const pipe = this.redis.pipeline();
      for (let p = 0; p < this.opts.partitions; p++) {
        (pipe as unknown as Record<string, (...a: unknown[]) => void>)['reconcilePartition']!(
          this.keys.due(p),
          this.keys.part(p),
          100,
          this.opts.graceMs,
        );
      }
      const results = (await pipe.exec()) ?? [];
      let n = 0;
      for (const [err, res] of results) {
        if (err) continue;
        const flat = res as string[];
        for (let i = 0; i < flat.length; i += 5) {
          n++;
          await this.dispatch(
            { i: flat[i]!, s: flat[i + 2]!, k: flat[i + 3]!, m: flat[i + 4] as TargetMode },
            Number(flat[i + 1]),
            0,
          );
        }
      }
      return n;
    } catch {
      return 0; // Redis unreachable: the next sweep tries again
    }
  }

  private scriptKeys(data: JobData): ScriptKeys {
    const p = partitionOfId(data.i, this.opts.partitions)!;
    const k = this.keys;
    const keyed = data.m !== 'service';
    const exclusive = data.m === 'exclusive' || data.m === 'workflow';
    return {
      p,
      inv: k.inv(p, data.i),
      journal: k.journal(p, data.i),
      state: keyed ? k.state(p, data.s, data.k) : k.unused(p),
      inbox: exclusive ? k.inbox(p, data.s, data.k) : k.unused(p),
      fence: exclusive ? k.fence(p, data.s, data.k) : k.inv(p, data.i),
      due: k.due(p),
    };
  }

  private async process(job: Job<JobData>, executor: Executor): Promise<void> {
    if (this.wiped) throw new StoreError('Redis was wiped; not running invocations', 'REDIS_WIPED');
    const data = job.data;
    if (partitionOfId(data.i, this.opts.partitions) === undefined) return;
    const ks = this.scriptKeys(data);
    const res = (await this.redis.startAttempt(
      ks.inv, ks.journal, ks.state, ks.inbox, ks.fence, ks.due,
      data.i, this.workerId, this.opts.leaseMs, this.opts.graceMs,
    )) as unknown[];
    const kind = res[0] as string;
    if (kind === 'early') {
      const ms = Number(res[1]);
      await this.dispatch(data, 0, ms, `e${Date.now()}`);
      return;
    }
    if (kind !== 'run') return;
    const epoch = res[1] as string;
    const now = Number(res[3]);
    const stateFlat = res[11] as string[];
    const state = new Map<string, string>();
    for (let i = 0; i < stateFlat.length; i += 2) state.set(stateFlat[i]!, stateFlat[i + 1]!);
    const inv: StartedInvocation = {
      id: data.i,
      target: { service: res[6] as string, handler: res[7] as string, ...(res[8] ? { key: res[8] as string } : {}) },
      mode: res[9] as TargetMode,
      input: res[4] as string,
      headers: JSON.parse(res[5] as string) as Record<string, string>,
      attempt: Number(res[2]),
      journal: (res[10] as string[]).map((e) => JSON.parse(e) as Entry),
      state,
      now,
    };
    this.opts.hooks?.afterStart?.({ invocationId: inv.id, service: inv.target.service, handler: inv.target.handler, attempt: inv.attempt });
    const attempt = new RedisAttempt(this, ks, data, inv, epoch, now);
    try {
      await executor.run(attempt);
    } finally {
      attempt.stopHeartbeat();
    }
  }

  /** @internal used by attempts */
  get options(): typeof DEFAULTS & RedisStoreOptions {
    return this.opts;
  }

  /** @internal used by attempts */
  redispatch(data: JobData, ds: number, delayMs: number): Promise<void> {
    return this.dispatch(data, ds, delayMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [, set] of this.waiters) for (const w of [...set]) w.reject(new StoreError('store closed', 'CLOSED'));
    await Promise.all(this.queues.map((q) => q.close().catch(() => undefined)));
    this.sub.disconnect();
    await this.redis.quit().catch(() => undefined);
    this.redis.disconnect();
  }
}

/** One leased attempt; every write goes through a fenced script. */
class RedisAttempt implements Attempt {
  private readonly ac = new AbortController();
  private offset: number;
  private heartbeat: NodeJS.Timeout | undefined;

  private readonly store: RedisStore;
  private readonly ks: ScriptKeys;
  private readonly data: JobData;
  readonly invocation: StartedInvocation;
  private readonly epoch: string;

  constructor(store: RedisStore, ks: ScriptKeys, data: JobData, invocation: StartedInvocation, epoch: string, now: number) {
    this.store = store;
    this.ks = ks;
    this.data = data;
    this.invocation = invocation;
    this.epoch = epoch;
    this.offset = now - Date.now();
    const lease = store.options.leaseMs;
    this.heartbeat = setInterval(() => void this.renew(), Math.max(50, Math.floor(lease / 3)));
    this.heartbeat.unref();
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  stopHeartbeat(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Observes the store clock: a reply's time minus the local receive time never overstates the offset. */
  private observe(now: number): void {
    this.offset = Math.max(this.offset, now - Date.now());
  }

  storeNow(): number {
    return Date.now() + this.offset;
  }

  private lost(reason: string): never {
    const e = new LeaseLostError(this.invocation.id, reason);
    this.stopHeartbeat();
    this.ac.abort(e);
    throw e;
  }

  private async renew(): Promise<void> {
    try {
      const r = (await this.store.redis.renewLease(
        this.ks.inv, this.ks.fence, this.ks.due, this.invocation.id, this.epoch, this.store.options.leaseMs,
      )) as string[];
      if (r[0] === 'fenced') this.lost(r[1] ?? 'fenced');
    } catch {
      // Redis unreachable or lease lost: the lease expires and the reconciler recovers
    }
  }

  async commit(fromIndex: number, entries: NewEntry[], ops: StateOp[]): Promise<number> {
    const r = (await this.store.redis.commitEntries(
      this.ks.inv, this.ks.journal, this.ks.state, this.ks.fence,
      this.invocation.id, this.epoch, fromIndex, ...batchArgs(entries, ops),
    )) as (string | number)[];
    if (r[0] !== 'ok') this.lost(String(r[1]));
    const now = Number(r[1]);
    this.observe(now);
    const t = this.invocation.target;
    this.store.options.hooks?.afterCommit?.({ invocationId: this.invocation.id, service: t.service, handler: t.handler, fromIndex, entries });
    return now;
  }

  async suspend(fromIndex: number, entries: NewEntry[], ops: StateOp[], wakeAt: number | null): Promise<void> {
    this.stopHeartbeat();
    const r = (await this.store.redis.suspendInvocation(
      this.ks.inv, this.ks.journal, this.ks.state, this.ks.fence, this.ks.due,
      this.invocation.id, this.epoch, fromIndex, wakeAt === null ? '' : wakeAt, this.store.options.graceMs,
      ...batchArgs(entries, ops),
    )) as (string | number)[];
    if (r[0] !== 'ok') this.lost(String(r[1]));
    const now = Number(r[1]);
    if (wakeAt !== null) await this.store.redispatch(this.data, Number(r[2]), wakeAt - now);
  }

  async complete(fromIndex: number, entries: NewEntry[], ops: StateOp[], outcome: Outcome): Promise<void> {
    this.stopHeartbeat();
    const k = this.store.keys;
    const t = this.invocation.target;
    const r = (await this.store.redis.completeInvocation(
      this.ks.inv, this.ks.journal, this.ks.state, this.ks.fence, this.ks.due, this.ks.inbox,
      this.invocation.id, this.epoch, fromIndex,
      outcome.ok ? 'ok' : 'err',
      outcome.ok ? (outcome.value ?? '') : JSON.stringify(outcome.error),
      k.part(this.ks.p), this.store.options.graceMs, k.channel,
      '',
      ...batchArgs(entries, ops),
    )) as (string | number)[];
    if (r[0] !== 'ok') this.lost(String(r[1]));
    this.store.options.hooks?.afterComplete?.({ invocationId: this.invocation.id, service: t.service, handler: t.handler });
    const next = String(r[1]);
    if (next !== '') {
      await this.store.redispatch({ ...this.data, i: next }, Number(r[2]), 0);
    }
  }

  async retry(failure: SerializedError, delayMs: number): Promise<void> {
    await this.end('retry', failure, delayMs);
  }

  async pause(failure: SerializedError): Promise<void> {
    await this.end('pause', failure, 0);
  }

  private async end(kind: 'retry' | 'pause', failure: SerializedError, delayMs: number): Promise<void> {
    this.stopHeartbeat();
    const r = (await this.store.redis.endAttempt(
      this.ks.inv, this.ks.fence, this.ks.due,
      this.invocation.id, this.epoch, kind, JSON.stringify(failure), Math.round(delayMs), this.store.options.graceMs,
    )) as (string | number)[];
    if (r[0] !== 'ok') this.lost(String(r[1]));
    if (kind === 'retry') await this.store.redispatch(this.data, Number(r[1]), Number(r[2]));
  }
}

/** Creates a {@link RedisStore}; `serve()` calls this when no store is passed. */
export function createRedisStore(options: RedisStoreOptions = {}): RedisStore {
  return new RedisStore(options);
}
