import { randomUUID, timingSafeEqual } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type {
  Accepted,
  AttemptListener,
  Completion,
  Entry,
  Executor,
  InvocationInfo,
  InvocationRequest,
  InvocationStatus,
  OutgoingInvocation,
  Outcome,
  SerializedError,
  Target,
  StartedInvocation,
  StopSignal,
  Store,
  TargetMode,
  WorkerHandle,
  WorkerOptions,
} from '@latchkey/core';
import { StoreError } from './errors.js';
import { Keys, newInvocationId, partitionOf, partitionOfId } from './keys.js';
import { cancelToken, deriveSecret, parseAwakeableId } from '@latchkey/core/internal';
import { coalesceWrites } from './coalesce.js';
import { RedisAttempt } from './attempt.js';
import { ArrivalOrder, EagerAttempt, StateCache, eagerArgs, stateKey, type CommittedState, type EagerRun, type PreparedEager } from './eager.js';
import { DEFAULTS, type RedisStoreOptions, type StoreConfig } from './options.js';
import { defineScripts, type ScriptedRedis } from './scripts.js';
import {
  DAY_MS,
  applyOps,
  completionOf,
  parseCompletions,
  randomId,
  retentionJson,
  seedOf,
  stateMap,
  toSerializedError,
  type JobData,
  type OutboxItem,
  type ScriptKeys,
} from './wire.js';

/** The local fast path of a process's worker: attempts it starts itself, up to `capacity`. */
interface LocalDispatch {
  executor: Executor;
  capacity: number;
  active: number;
  closing: boolean;
  idle?: () => void;
}

interface Waiter {
  resolve: (o: Outcome) => void;
  reject: (e: unknown) => void;
}

/** Key states this process remembers for eager completion (see `StateCache`). */
const EAGER_STATES = 10_000;
/** After this many eager runs of a handler in a row stopped short, eager runs of it are only probes... */
const EAGER_MISSES = 3;
/** ...one in this many calls (a handler's code may change with its input). */
const EAGER_PROBE = 64;

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

/** The invocation hash fields `describe` reads. */
const DESCRIBE_FIELDS = ['st', 'svc', 'h', 'key', 'mode', 'rc', 'ct', 'lastErr', 'out', 'err'] as const;

const KILLED: SerializedError = { name: 'TerminalError', code: 'KILLED', message: 'the invocation was killed', status: 409 };
const CANCELLED: SerializedError = { name: 'CancelledError', code: 'CANCELLED', message: 'Cancelled', status: 409 };

/**
 * Latchkey's store on Redis + BullMQ. Redis decides (every write is a fenced Lua
 * script); BullMQ delivers (sharded queues wake workers); a reconciler closes
 * every crash window between the two.
 */
export class RedisStore implements Store {
  readonly keys: Keys;
  readonly redis: ScriptedRedis;
  private readonly sub: Redis;
  private readonly opts: StoreConfig;
  private readonly url: string;
  private readonly queues: Queue[] = [];
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly listeners = new Map<string, AttemptListener>();
  /** Attempts running in this process, by invocation id (to stop a killed or paused one at once). */
  readonly attempts = new Map<string, RedisAttempt>();
  private readonly workers: Worker[] = [];
  /** The local fast path of this process's worker (see `dispatch`). */
  private local: LocalDispatch | undefined;
  /** The key states this process committed last (eager completion). */
  private readonly stateCache = new StateCache(EAGER_STATES);
  /** Eager runs in a row that stopped short, by `service/handler`. */
  private readonly eagerMisses = new Map<string, number>();
  /** Keeps accepts and lookups in arrival order around eager runs. */
  private readonly order = new ArrivalOrder();
  private bootMarker: string | undefined;
  private initialized = false;
  private closed = false;
  private readonly workerId: string;
  /** The channel on which this process hears the outcomes it waits for (see `watchOutcome`). */
  private readonly outcomeChannel: string;
  private readonly logger: Pick<Console, 'warn' | 'error' | 'info'>;
  /** What Redis reported at start-up. */
  persistence: { aof: boolean; appendfsync: string } = { aof: false, appendfsync: '' };

  constructor(options: RedisStoreOptions = {}) {
    const url = options.url ?? process.env['REDIS_URL'];
    if (!url) throw new StoreError('no Redis configured: pass `url` or set REDIS_URL', 'REDIS_NOT_CONFIGURED');
    this.url = url;
    const o: Record<string, unknown> = { ...DEFAULTS };
    const envPrefix = process.env['LATCHKEY_PREFIX'];
    if (envPrefix) o['prefix'] = envPrefix;
    for (const [k, v] of Object.entries(options)) if (v !== undefined) o[k] = v;
    this.opts = o as unknown as StoreConfig;
    this.keys = new Keys(this.opts.prefix);
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    // Unique per instance even when two share a workerId.
    this.outcomeChannel = this.keys.outcomeChannel(`${this.workerId}:${randomUUID().slice(0, 8)}`);
    this.logger = options.logger ?? console;
    const common: RedisOptions = { maxRetriesPerRequest: null, lazyConnect: true, ...options.redisOptions };
    const redis = new Redis(url, common);
    this.redis = defineScripts(this.opts.coalesceWrites ? coalesceWrites(redis) : redis);
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
    this.sub.on('message', (ch: string, msg: string) => (ch === this.outcomeChannel ? this.onDone(msg) : this.onCompletion(msg)));
    this.sub.on('ready', () => void this.recheckWaiters());
    await this.sub.subscribe(this.outcomeChannel, this.keys.completionChannel);
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

  async accept(req: InvocationRequest, options: { awaitOutcome?: StopSignal } = {}): Promise<Accepted & { outcome?: Promise<Outcome> }> {
    if (this.wiped) throw new StoreError('Redis was wiped or replaced while Latchkey ran; refusing new invocations', 'REDIS_WIPED');
    const { service, handler, key } = req.target;
    // One draw: the first byte picks a partition when the target does not, the rest is the id.
    const random = randomId();
    const partition = this.partitionFor(req.target, req.idempotencyKey, random[0]!);
    const id = newInvocationId(partition, random.subarray(1, 23));
    const seed = seedOf(random);
    // A caller that wants the outcome listens before the invocation exists: a fresh one cannot
    // have completed yet, so it needs no read afterwards.
    const wait = options.awaitOutcome ? this.waitFor(id, options.awaitOutcome) : undefined;
    const prepared = this.prepareEager(req, id, seed);
    const turn = this.order.turn(prepared !== undefined);
    let eager: EagerRun | undefined;
    let accepted: Accepted & { fresh: boolean };
    try {
      if (prepared) eager = await this.runEager(prepared);
      if (eager) this.opts.hooks?.beforeEagerAccept?.({ invocationId: id, service, handler });
      if (turn) await turn.ready;
      const out: OutgoingInvocation = {
        id,
        service,
        handler,
        mode: req.mode,
        input: req.input,
        journalRetentionMs: req.journalRetentionMs,
        idempotencyRetentionMs: req.idempotencyRetentionMs,
        workflowRetentionMs: req.workflowRetentionMs,
      };
      if (key !== undefined) out.key = key;
      if (req.headers !== undefined) out.headers = req.headers;
      if (req.idempotencyKey !== undefined) out.idempotencyKey = req.idempotencyKey;
      if (req.delayMs !== undefined) out.delayMs = req.delayMs;
      accepted = await this.acceptWithId(out, wait !== undefined, eager, turn?.issued, partition, seed);
    } catch (e) {
      turn?.issued();
      eager?.attempt.refuse();
      wait?.waiter.drop();
      throw e;
    }
    const fresh = accepted.fresh;
    const result: Accepted = { invocationId: accepted.invocationId, status: accepted.status };
    if (accepted.reason !== undefined) result.reason = accepted.reason;
    // Only the request that created the invocation learns its cancel token.
    if (fresh) result.cancelToken = cancelToken(seed);
    if (!wait) return result;
    if (result.invocationId !== id) {
      // An earlier invocation matched (idempotency key or workflow id): latch on to it instead.
      wait.waiter.drop();
      return { ...result, outcome: this.awaitOutcome(result.invocationId, options.awaitOutcome) };
    }
    if (!fresh) this.checkNow(id, wait.waiter); // a retried accept: it may have run already
    return { ...result, outcome: wait.promise };
  }

  /**
   * Prepares an eager run (see `eager.ts`) when the handler may run eagerly: a service handler,
   * or an object's exclusive handler on a key whose committed state this process has (taken out
   * of the cache); no delay; a local worker that takes attempts; not a handler whose eager runs
   * keep stopping short.
   */
  private prepareEager(req: InvocationRequest, id: string, seed: string): PreparedEager | undefined {
    const o = this.opts;
    if (!o.eagerCompletion || !o.localDispatch) return undefined;
    if ((req.mode !== 'exclusive' && req.mode !== 'service') || (req.delayMs ?? 0) > 0) return undefined;
    const local = this.freeLocal();
    if (!local) return undefined;
    const t = req.target;
    const handlerKey = `${t.service}/${t.handler}`;
    const misses = this.eagerMisses.get(handlerKey) ?? 0;
    if (misses >= EAGER_MISSES) {
      this.eagerMisses.set(handlerKey, misses + 1);
      if ((misses - EAGER_MISSES) % EAGER_PROBE !== EAGER_PROBE - 1) return undefined;
    }
    let committed: CommittedState | undefined;
    if (req.mode === 'exclusive') {
      committed = this.stateCache.take(stateKey(t.service, t.key ?? ''));
      if (!committed) return undefined;
    }
    const attempt = new EagerAttempt({
      id,
      target: t,
      mode: req.mode,
      input: req.input,
      headers: req.headers ?? {},
      attempt: 1,
      journal: [],
      // The context works on a copy; this map becomes the key's state after the run's ops.
      state: committed?.state ?? new Map(),
      now: Date.now(),
      completions: new Map(),
      cancelRequested: false,
      seed,
    });
    return { attempt, committed, executor: local.executor, handlerKey, misses };
  }

  /**
   * Runs a prepared eager attempt. Resolves with its result, or undefined when it stopped short
   * (the invocation is then accepted the ordinary way).
   */
  private async runEager(p: PreparedEager): Promise<EagerRun | undefined> {
    const { attempt, committed, executor, handlerKey, misses } = p;
    void executor.run(attempt).catch(() => undefined);
    // A handler that has not completed when this event-loop turn's I/O is done waits for
    // something (I/O outside the journal): it is left to the ordinary path.
    const check = setImmediate(() => attempt.decline());
    const result = await attempt.result;
    clearImmediate(check);
    if (!result) {
      this.eagerMisses.set(handlerKey, misses + 1);
      return undefined;
    }
    this.eagerMisses.delete(handlerKey);
    return { attempt, result, committed };
  }

  /** Remembers a key's state as an attempt of this process committed it (for eager completion). */
  rememberState(service: string, key: string, state: Map<string, string>, ep: string): void {
    this.stateCache.put(stateKey(service, key), { state, ep });
  }

  /**
   * The partition of a target: an object or workflow key's own; for a service, the idempotency
   * key's (so duplicates meet), else the one `randomByte` picks.
   */
  private partitionFor(target: Target, idempotencyKey: string | undefined, randomByte: number): number {
    const P = this.opts.partitions;
    if (target.key !== undefined) return partitionOf(P, target.service, target.key);
    if (idempotencyKey !== undefined && idempotencyKey !== '') return partitionOf(P, target.service, target.handler, idempotencyKey);
    return randomByte % P;
  }

  /**
   * The id of the invocation that entry `index` of an invocation starts: the same on every replay,
   * derived from the parent's secret seed, so knowing the parent's id tells nobody its children's.
   */
  childId(parentSeed: string, index: number, target: Target, idempotencyKey?: string): string {
    const digest = deriveSecret(parentSeed, `child:${index}`);
    return newInvocationId(this.partitionFor(target, idempotencyKey, digest[0]!), digest.subarray(1, 23));
  }

  /**
   * Runs the accept script for an invocation with a chosen id; `fresh` when this call created it.
   * With a free local worker slot the same script also starts the attempt when the invocation is
   * ready at once, saving the start script's round trip (see `dispatch` for the fast path).
   */
  private async acceptWithId(
    req: OutgoingInvocation,
    watch = false,
    eager?: EagerRun,
    issued?: () => void,
    partition?: number,
    seed = seedOf(randomId()),
  ): Promise<Accepted & { fresh: boolean }> {
    // The partition is known to a caller that just made the id.
    const p = partition ?? partitionOfId(req.id, this.opts.partitions);
    if (p === undefined) throw new StoreError(`malformed invocation id ${req.id}`, 'INVALID_ID');
    const k = this.keys;
    const keyed = req.key !== undefined;
    const idem = req.idempotencyKey ?? '';
    const member = req.caller ? `${req.caller.id}:${req.caller.index}` : '';
    const data: JobData = { i: req.id, s: req.service, k: req.key ?? '', m: req.mode };
    const ks = this.scriptKeys(data, p);
    // Only a free slot is checked here: the slot is taken when the script leases the invocation
    // to this process (an accept that queues behind a busy key needs none). Accepts in flight can
    // so overshoot the capacity by their number, never more.
    const local = (req.delayMs ?? 0) > 0 ? undefined : this.freeLocal();
    // As in processData: completions published between the script and the attempt listening are kept.
    const ownsEarly = local !== undefined && !this.early.has(req.id);
    if (ownsEarly) this.early.set(req.id, []);
    const unreserve = (): void => {
      if (ownsEarly) this.releaseEarly(req.id);
    };
    let res: string[];
    try {
      const reply = this.redis.acceptInvocation(
        ks.inv,
        ks.inbox,
        idem !== '' ? k.idempotency(p, req.service, req.key ?? '', req.handler, idem) : k.unused(p),
        req.mode === 'workflow' && keyed ? k.workflow(p, req.service, req.key!) : k.unused(p),
        ks.due,
        ks.state,
        ks.fence,
        req.id, req.service, req.handler, req.key ?? '', req.mode, req.input, idem,
        JSON.stringify(req.headers ?? {}),
        Math.max(0, Math.round(req.delayMs ?? 0)),
        this.opts.graceMs,
        retentionJson(req.journalRetentionMs ?? DAY_MS, req.idempotencyRetentionMs ?? DAY_MS, req.workflowRetentionMs ?? DAY_MS),
        k.part(p),
        member,
        req.mode === 'workflow' && keyed ? k.promises(p, req.service, req.key!) : '',
        local ? this.workerId : '',
        this.opts.leaseMs,
        watch ? this.outcomeChannel : '',
        seed,
        ...(eager ? eagerArgs(eager) : ['']),
      );
      issued?.();
      res = (await reply) as string[];
    } catch (e) {
      unreserve();
      throw e;
    }
    if (res[0] === 'done') {
      // Accepted and completed by the script with the eager run's outcome.
      unreserve();
      const { attempt, result, committed } = eager!;
      attempt.confirm();
      if (committed) {
        applyOps(committed.state, result.ops);
        this.rememberState(req.service, req.key ?? '', committed.state, res[1]!);
      }
      this.resolveWaiters(req.id, result.outcome);
      return { invocationId: req.id, status: 'Accepted', fresh: true };
    }
    eager?.attempt.refuse();
    if (res[0] === 'run') {
      // Leased by the accept script: a fresh invocation, so everything but the epoch, the clock and
      // the key's state is known here.
      const now = Number(res[2]);
      const inv: StartedInvocation = {
        id: req.id,
        target: { service: req.service, handler: req.handler, ...(keyed ? { key: req.key! } : {}) },
        mode: req.mode,
        input: req.input,
        headers: req.headers ?? {},
        attempt: 1,
        journal: [],
        state: stateMap(res[3] as unknown as string[]),
        now,
        completions: new Map(),
        cancelRequested: false,
        seed,
      };
      void this.inSlot(local!, () => this.runAttempt(data, ks, inv, res[1]!, now, local!)).finally(unreserve);
      return { invocationId: req.id, status: 'Accepted', fresh: true };
    }
    unreserve();
    const deliverNow = async (completionJson: string | undefined): Promise<void> => {
      if (completionJson && req.caller) {
        await this.deliver(req.caller.id, req.caller.index, JSON.parse(completionJson) as Completion, 'result');
      }
    };
    if (res[0] === 'dup') {
      await deliverNow(res[3]);
      return { invocationId: res[1]!, status: 'PreviouslyAccepted', reason: res[2] as 'idempotency' | 'workflow', fresh: false };
    }
    if (res[0] === 'exists') {
      await deliverNow(res[1]);
      return { invocationId: req.id, status: 'Accepted', fresh: false };
    }
    const st = res[1];
    if (st === 'ready' || st === 'delayed') {
      await this.dispatch({ i: req.id, s: req.service, k: req.key ?? '', m: req.mode }, Number(res[2]), Number(res[3]));
    }
    return { invocationId: req.id, status: 'Accepted', fresh: true };
  }

  /**
   * Delivers a completion to entry `index` of an invocation, waking it when suspended: only to an
   * entry that waits for it (`want`: 'result' for a call's or attach's outcome, 'pget' for a
   * workflow promise, or an awakeable's exact id), see `deliver` in the prelude. An awakeable's
   * completion comes from a client (or a handler given its id), so it counts against the
   * invocation's cap on completions.
   */
  async deliver(invocationId: string, index: number, completion: Completion, want: string): Promise<'ok' | 'dup' | 'done' | 'gone' | 'full'> {
    const p = partitionOfId(invocationId, this.opts.partitions);
    if (p === undefined) return 'gone';
    const r = (await this.redis.deliverCompletion(
      this.keys.inv(p, invocationId),
      invocationId, index, JSON.stringify(completion), this.keys.part(p), this.opts.graceMs, this.keys.completionChannel,
      want, want === 'result' || want === 'pget' ? '' : this.opts.maxCompletions,
    )) as [string, string[]];
    await this.dispatchWakes(r[1]);
    return r[0] as 'ok' | 'dup' | 'done' | 'gone' | 'full';
  }

  /**
   * Resolves or rejects the named signal of an invocation: stored once (the first resolution
   * wins) and delivered to the entries waiting for it, now or when they come.
   */
  async resolveSignal(invocationId: string, name: string, completion: Completion): Promise<'ok' | 'dup' | 'done' | 'gone'> {
    const p = partitionOfId(invocationId, this.opts.partitions);
    if (p === undefined) return 'gone';
    const r = (await this.redis.resolveSignal(
      this.keys.inv(p, invocationId),
      invocationId, name, JSON.stringify(completion), this.keys.part(p), this.opts.graceMs, this.keys.completionChannel,
    )) as [string, string[]];
    await this.dispatchWakes(r[1]);
    return r[0] as 'ok' | 'dup' | 'done' | 'gone';
  }

  /** Dispatches flat wake tuples {id, ds, svc, key, mode, ...} returned by scripts. */
  async dispatchWakes(flat: unknown): Promise<void> {
    const a = (flat ?? []) as (string | number)[];
    for (let i = 0; i < a.length; i += 5) {
      await this.dispatch({ i: String(a[i]), s: String(a[i + 2]), k: String(a[i + 3] ?? ''), m: a[i + 4] as TargetMode }, Number(a[i + 1]), 0);
    }
  }

  /** Performs one outbox effect (idempotently), then acknowledges it. */
  async performOutbox(p: number, member: string): Promise<void> {
    const item = JSON.parse(member) as OutboxItem;
    const e = item.e;
    switch (e.t) {
      case 'accept':
        await this.acceptWithId(e.req);
        break;
      case 'awakeable': {
        const a = parseAwakeableId(e.id);
        if (a) await this.deliver(a.invocationId, a.index, e.completion, e.id);
        break;
      }
      case 'cancel':
        await this.cancel(e.id);
        break;
      case 'signal':
        await this.resolveSignal(e.id, e.name, e.completion);
        break;
      case 'attach': {
        const tp = partitionOfId(e.id, this.opts.partitions);
        if (tp === undefined) {
          await this.deliver(item.s, e.index, { ok: false, e: { name: 'TerminalError', code: 'NOT_FOUND', message: `invocation ${e.id} not found`, status: 404 } }, 'result');
          break;
        }
        const r = (await this.redis.attachInvocation(this.keys.inv(tp, e.id), e.id, this.keys.part(tp), `${item.s}:${e.index}`)) as string[];
        if (r[0] === 'completed') await this.deliver(item.s, e.index, JSON.parse(r[1]!) as Completion, 'result');
        else if (r[0] === 'gone') {
          await this.deliver(item.s, e.index, { ok: false, e: { name: 'TerminalError', code: 'NOT_FOUND', message: `invocation ${e.id} not found`, status: 404 } }, 'result');
        }
        break;
      }
      default:
        break;
    }
    await this.redis.zrem(this.keys.outbox(p), member);
  }

  /** Delivers a completed invocation's outcome to everyone in its notify set. */
  async deliverOutcome(invocationId: string): Promise<void> {
    const p = partitionOfId(invocationId, this.opts.partitions);
    if (p === undefined) return;
    const k = this.keys;
    const [members, outcome] = await Promise.all([this.redis.smembers(k.notify(p, invocationId)), this.readOutcome(invocationId)]);
    if (!outcome) return;
    const c = completionOf(outcome);
    for (const m of members) {
      const sep = m.lastIndexOf(':');
      await this.deliver(m.slice(0, sep), Number(m.slice(sep + 1)), c, 'result');
    }
    if (members.length > 0) await this.redis.ackDeliveries(k.notify(p, invocationId), k.due(p), invocationId, ...members);
  }

  /** This process's local fast path when it takes attempts (`force`: even past its capacity). */
  private freeLocal(force = false): LocalDispatch | undefined {
    const local = this.local;
    if (!local || local.closing || this.wiped || (!force && local.active >= local.capacity)) return undefined;
    return local;
  }

  /** Runs `work` in a slot of the local fast path: taken now, given back when it settles (failures are the reconciler's). */
  private inSlot(local: LocalDispatch, work: () => Promise<void>): Promise<void> {
    local.active++;
    return work()
      .catch(() => undefined)
      .finally(() => {
        local.active--;
        if (local.active === 0) local.idle?.();
      });
  }

  /** Adds the mailbox job that wakes a worker for an invocation. */
  private async dispatch(data: JobData, ds: number, delayMs: number, suffix = ''): Promise<void> {
    const p = partitionOfId(data.i, this.opts.partitions);
    if (p === undefined) return;
    const local = delayMs <= 0 ? this.freeLocal() : undefined;
    if (local) {
      // Fast path: this process has a free worker slot, so it starts the attempt itself instead of a
      // mailbox round trip. A crash here is covered like a lost job: the invocation's deadline in
      // `due` passes and the reconciler dispatches it again.
      void this.inSlot(local, () => this.processData(data, local.executor, local));
      return;
    }
    const q = this.queues[p % this.opts.shards]!;
    await q.add('run', data, {
      jobId: `${data.i}-${ds}${suffix}`,
      // At most a day: a longer wait is dispatched again by startAttempt's 'early' until it is due.
      delay: Math.min(Math.max(0, delayMs), DAY_MS),
      removeOnComplete: true,
      removeOnFail: true,
      attempts: 1,
    });
  }

  awaitOutcome(invocationId: string, signal?: StopSignal): Promise<Outcome> {
    const { promise, waiter } = this.waitFor(invocationId, signal);
    this.checkNow(invocationId, waiter);
    return promise;
  }

  /**
   * Registers a waiter for an invocation's outcome in this process: resolved from this process's
   * outcome channel, or directly when this process completes the invocation. Callers then make
   * the process a watcher (`checkNow`), unless the accept script registers it for a fresh call.
   */
  private waitFor(invocationId: string, signal?: StopSignal): { promise: Promise<Outcome>; waiter: Waiter & { drop(): void } } {
    let set = this.waiters.get(invocationId);
    if (!set) this.waiters.set(invocationId, (set = new Set()));
    const waiters = set;
    let waiter!: Waiter & { drop(): void };
    const promise = new Promise<Outcome>((resolve, reject) => {
      const onAbort = (): void => waiter.reject(signal?.reason ?? new Error('aborted'));
      const cleanup = (): void => {
        waiters.delete(waiter);
        if (waiters.size === 0) this.waiters.delete(invocationId);
        signal?.removeEventListener('abort', onAbort);
      };
      waiter = {
        resolve: (o) => {
          cleanup();
          resolve(o);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
        drop: cleanup,
      };
      waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    // Whoever stops listening (an aborted call) must not leave an unhandled rejection behind.
    promise.catch(() => undefined);
    return { promise, waiter };
  }

  /**
   * Makes this process a watcher of an invocation's outcome, resolving the registered waiter at
   * once when the invocation has already completed.
   */
  private checkNow(invocationId: string, waiter: Waiter): void {
    this.watchOutcome(invocationId).then(
      (o) => {
        if (o) waiter.resolve(o);
      },
      (e: unknown) => waiter.reject(e),
    );
  }

  /**
   * Registers this process's outcome channel with an invocation (the completing script
   * publishes there), or returns the outcome when the invocation has already completed.
   */
  private async watchOutcome(invocationId: string): Promise<Outcome | undefined> {
    const p = partitionOfId(invocationId, this.opts.partitions);
    if (p === undefined) return undefined;
    const r = (await this.redis.watchOutcome(this.keys.inv(p, invocationId), invocationId, this.keys.part(p), this.outcomeChannel)) as string[];
    if (r[0] !== 'completed') return undefined;
    return r[1] === 'err' ? { ok: false, error: toSerializedError(r[2]!) } : { ok: true, value: r[2] === '' ? undefined : r[2] };
  }

  /** @internal Resolves this process's waiters for an invocation it just completed itself. */
  resolveWaiters(invocationId: string, outcome: Outcome): void {
    const set = this.waiters.get(invocationId);
    if (set) for (const w of [...set]) w.resolve(outcome);
  }

  /** @internal The channel this process's waiters hear outcomes on. */
  get ownOutcomeChannel(): string {
    return this.outcomeChannel;
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

  private onCompletion(msg: string): void {
    const nl = msg.indexOf('\n');
    const id = msg.slice(0, nl);
    const early = this.early.get(id);
    if (early) {
      // The attempt is starting: keep the message until it listens (see processData).
      early.push(msg);
      return;
    }
    const rest = msg.slice(nl + 1);
    if (rest === 'stop') {
      this.attempts.get(id)?.stopNow();
      return;
    }
    const l = this.listeners.get(id);
    if (!l) return;
    if (rest === 'cancel') {
      l.cancel();
      return;
    }
    const nl2 = rest.indexOf('\n');
    l.completion(Number(rest.slice(0, nl2)), JSON.parse(rest.slice(nl2 + 1)) as Completion);
  }

  /** @internal attempts register to receive completions while running */
  listenTo(id: string, l: AttemptListener | undefined): void {
    if (l) this.listeners.set(id, l);
    else this.listeners.delete(id);
    this.releaseEarly(id);
  }

  /**
   * Messages for an invocation whose attempt is starting: registered before the start script
   * runs, so a completion published after the script read the completions is never lost.
   */
  private readonly early = new Map<string, string[]>();

  private releaseEarly(id: string): void {
    const msgs = this.early.get(id);
    if (!msgs) return;
    this.early.delete(id);
    for (const m of msgs) this.onCompletion(m);
  }

  private async recheckWaiters(): Promise<void> {
    for (const [id, set] of this.waiters) {
      try {
        // Registers again too: a Redis restart may have lost the registration.
        const o = await this.watchOutcome(id);
        if (o) for (const w of [...set]) w.resolve(o);
      } catch {
        // reconnecting again; the next ready re-checks
      }
    }
  }

  async describe(invocationId: string, withJournal = false): Promise<InvocationInfo | undefined> {
    const p = partitionOfId(invocationId, this.opts.partitions);
    if (p === undefined) return undefined;
    // Named fields only: never the input, the headers or the secret seed.
    const f = await this.redis.hmget(this.keys.inv(p, invocationId), ...DESCRIBE_FIELDS, ...(withJournal ? ['jf'] : []));
    const h: Record<string, string | undefined> = {};
    DESCRIBE_FIELDS.forEach((name, i) => (h[name] = f[i] ?? undefined));
    if (withJournal) h['jf'] = f[DESCRIBE_FIELDS.length] ?? undefined;
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
      // A journal written whole at completion is a field of the hash ('jf'), else it is a list.
      const jf = h['jf'];
      info.journal = jf !== undefined ? (JSON.parse(jf) as Entry[]) : (await this.redis.lrange(this.keys.journal(p, invocationId), 0, -1)).map((e) => JSON.parse(e) as Entry);
    }
    return info;
  }

  async progress(invocationId: string, fromIndex: number): Promise<{ status: InvocationStatus; entries: Entry[] } | undefined> {
    const p = partitionOfId(invocationId, this.opts.partitions);
    if (p === undefined) return undefined;
    const res = await this.redis
      .pipeline()
      .hmget(this.keys.inv(p, invocationId), 'st', 'jf')
      .lrange(this.keys.journal(p, invocationId), fromIndex, -1)
      .exec();
    const [st, jf] = (res?.[0]?.[1] as (string | null)[] | undefined) ?? [];
    if (!st) return undefined;
    // A journal written whole at completion is a field of the hash ('jf'), else it is a list.
    const entries = jf ? (JSON.parse(jf) as Entry[]).slice(fromIndex) : ((res?.[1]?.[1] as string[]) ?? []).map((e) => JSON.parse(e) as Entry);
    return { status: st as InvocationStatus, entries };
  }

  async lookup(ref: { service: string; handler: string; key?: string; idempotencyKey: string } | { workflow: string; key: string }): Promise<string | undefined> {
    const P = this.opts.partitions;
    let name: string;
    if ('workflow' in ref) {
      name = this.keys.workflow(partitionOf(P, ref.workflow, ref.key), ref.workflow, ref.key);
    } else {
      const p = ref.key !== undefined ? partitionOf(P, ref.service, ref.key) : partitionOf(P, ref.service, ref.handler, ref.idempotencyKey);
      name = this.keys.idempotency(p, ref.service, ref.key ?? '', ref.handler, ref.idempotencyKey);
    }
    // After the accepts that reached the store before it (see ArrivalOrder).
    const turn = this.order.turn(false);
    if (turn) await turn.ready;
    const reply = this.redis.get(name);
    turn?.issued();
    return (await reply) ?? undefined;
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
    const local: LocalDispatch = { executor, capacity: concurrency * this.opts.shards, active: 0, closing: false };
    if (this.opts.localDispatch) this.local = local;
    return {
      close: async (timeoutMs = 30_000) => {
        clearInterval(timer);
        local.closing = true;
        this.stopping = true;
        // Attempts waiting on timers suspend now; running ones finish (up to timeoutMs).
        executor.hurry();
        let t: NodeJS.Timeout | undefined;
        const expire = new Promise<void>((r) => (t = setTimeout(r, timeoutMs)));
        const idle = new Promise<void>((r) => {
          const check = (): void => {
            if (this.bullActive === 0 && local.active === 0) r();
          };
          this.drained = check;
          local.idle = check;
          check();
        });
        await Promise.race([idle, expire]);
        clearTimeout(t);
        // Nothing of ours is running now, so closing the mailbox workers by force loses nothing
        // (a graceful BullMQ close can wait forever on a blocking connection after a Redis restart).
        let t2: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(workers.map((w) => w.close(true))), new Promise<void>((r) => (t2 = setTimeout(r, 5000)))]);
        clearTimeout(t2);
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
          this.keys.outbox(p),
          this.keys.part(p),
          100,
          this.opts.graceMs,
        );
      }
      const results = (await pipe.exec()) ?? [];
      let n = 0;
      for (const [p, [err, res]] of results.entries()) {
        if (err) continue;
        const [flat, deliveries, outbox] = res as [string[], string[], string[]];
        for (let i = 0; i < flat.length; i += 5) {
          n++;
          await this.dispatch(
            { i: flat[i]!, s: flat[i + 2]!, k: flat[i + 3]!, m: flat[i + 4] as TargetMode },
            Number(flat[i + 1]),
            0,
          );
        }
        for (const id of deliveries) {
          n++;
          await this.deliverOutcome(id).catch(() => undefined);
        }
        for (const m of outbox) {
          n++;
          await this.performOutbox(p, m).catch(() => undefined);
        }
      }
      return n;
    } catch {
      return 0; // Redis unreachable: the next sweep tries again
    }
  }

  private scriptKeys(data: JobData, partition?: number): ScriptKeys {
    const p = partition ?? partitionOfId(data.i, this.opts.partitions)!;
    const k = this.keys;
    const keyed = data.m !== 'service';
    const exclusive = data.m === 'exclusive' || data.m === 'workflow';
    const inv = k.inv(p, data.i);
    const object = keyed ? k.objectKeys(p, data.s, data.k) : undefined;
    return {
      p,
      inv,
      journal: k.journal(p, data.i),
      state: object ? object.state : k.unused(p),
      inbox: exclusive ? object!.inbox : k.unused(p),
      fence: exclusive ? object!.fence : inv,
      due: k.due(p),
    };
  }

  private async process(job: Job<JobData>, executor: Executor): Promise<void> {
    const local = this.local;
    if (this.stopping) {
      // Taken while this worker shuts down: leave it to the others (its deadline in `due` stands).
      throw new StoreError('worker is shutting down', 'SHUTTING_DOWN');
    }
    this.bullActive++;
    try {
      await this.processData(job.data, executor);
    } finally {
      this.bullActive--;
      if (this.bullActive === 0 && (local?.active ?? 0) === 0) this.drained?.();
    }
  }

  private bullActive = 0;
  private stopping = false;
  private drained: (() => void) | undefined;

  /** Starts and runs an attempt for a mailbox job or a local dispatch (`local`: in a fast-path slot). */
  private async processData(data: JobData, executor: Executor, local?: LocalDispatch): Promise<void> {
    if (this.wiped) throw new StoreError('Redis was wiped; not running invocations', 'REDIS_WIPED');
    if (partitionOfId(data.i, this.opts.partitions) === undefined) return;
    const ks = this.scriptKeys(data);
    const ownsEarly = !this.early.has(data.i);
    if (ownsEarly) this.early.set(data.i, []);
    try {
      await this.startAndRun(data, ks, executor, local);
    } finally {
      if (ownsEarly) this.releaseEarly(data.i);
    }
  }

  private async startAndRun(data: JobData, ks: ScriptKeys, executor: Executor, local: LocalDispatch | undefined): Promise<void> {
    const res = (await this.redis.startAttempt(
      ks.inv, ks.journal, ks.state, ks.inbox, ks.fence, ks.due,
      data.i, this.workerId, this.opts.leaseMs, this.opts.graceMs, this.keys.part(ks.p),
    )) as unknown[];
    const kind = res[0] as string;
    if (kind === 'early') {
      // The script answers 1 ms to a day; never dispatch it again at once, whatever the reply.
      const ms = Number(res[1]);
      await this.dispatch(data, 0, ms >= 1 ? ms : 1000, `e${Date.now()}`);
      return;
    }
    if (kind !== 'run') return;
    await this.runLeased(data, ks, res, executor, local);
  }

  /** Runs an attempt from startAttempt's 'run' reply (`state`: the key's state, when the reply leaves it out). */
  private async runLeased(
    data: JobData,
    ks: ScriptKeys,
    res: unknown[],
    executor: Executor,
    local: LocalDispatch | undefined,
    state?: Map<string, string>,
  ): Promise<void> {
    const epoch = res[1] as string;
    const now = Number(res[3]);
    const inv: StartedInvocation = {
      id: data.i,
      target: { service: res[6] as string, handler: res[7] as string, ...(res[8] ? { key: res[8] as string } : {}) },
      mode: res[9] as TargetMode,
      input: res[4] as string,
      headers: JSON.parse(res[5] as string) as Record<string, string>,
      attempt: Number(res[2]),
      journal: (res[10] as string[]).map((e) => JSON.parse(e) as Entry),
      state: state ?? stateMap(res[11] as string[]),
      now,
      completions: parseCompletions(res[12]),
      cancelRequested: Number(res[13]) === 1,
      // An invocation accepted before seeds were drawn has none: its id stands in (as it did then).
      seed: (res[14] as string | undefined) || data.i,
    };
    await this.runAttempt(data, ks, inv, epoch, now, local ?? executor);
  }

  /**
   * Runs one leased attempt with the executor: a mailbox job's, or (given the local fast path)
   * one in a fast-path slot, which its completion may pass on to the key's next invocation.
   */
  private async runAttempt(data: JobData, ks: ScriptKeys, inv: StartedInvocation, epoch: string, now: number, run: Executor | LocalDispatch): Promise<void> {
    this.opts.hooks?.afterStart?.({ invocationId: inv.id, service: inv.target.service, handler: inv.target.handler, attempt: inv.attempt });
    const inSlot = 'capacity' in run;
    const executor = inSlot ? run.executor : run;
    // The key is busy here: no eager run on it until an attempt leaves its state behind.
    if (data.m === 'exclusive') this.stateCache.drop(stateKey(data.s, data.k));
    const attempt = new RedisAttempt(this, ks, data, inv, epoch, now, inSlot);
    this.attempts.set(inv.id, attempt);
    if (this.early.get(inv.id)?.some((m) => m.endsWith('\nstop'))) attempt.stopNow();
    try {
      await executor.run(attempt);
    } finally {
      attempt.stopHeartbeat();
      this.listenTo(inv.id, undefined);
      if (this.attempts.get(inv.id) === attempt) this.attempts.delete(inv.id);
    }
  }

  // ---------------------------------------------------------------- control

  async resolveAwakeable(awakeableId: string, completion: Completion): Promise<'ok' | 'refused' | 'full'> {
    const a = parseAwakeableId(awakeableId);
    if (!a) return 'refused';
    const r = await this.deliver(a.invocationId, a.index, completion, awakeableId);
    return r === 'ok' || r === 'full' ? r : 'refused';
  }

  /** KEYS of the terminate/control scripts for an invocation (reads its target first). */
  private async controlKeys(id: string): Promise<{ p: number; inv: string; inbox: string; fence: string; due: string; svc: string; key: string; mode: TargetMode } | undefined> {
    const p = partitionOfId(id, this.opts.partitions);
    if (p === undefined) return undefined;
    const k = this.keys;
    const [svc, key, mode] = await this.redis.hmget(k.inv(p, id), 'svc', 'key', 'mode');
    if (svc === null || svc === undefined) return undefined;
    const exclusive = mode === 'exclusive' || mode === 'workflow';
    return {
      p,
      inv: k.inv(p, id),
      inbox: exclusive ? k.inbox(p, svc, key ?? '') : k.unused(p),
      fence: exclusive ? k.fence(p, svc, key ?? '') : k.inv(p, id),
      due: k.due(p),
      svc,
      key: key ?? '',
      mode: mode as TargetMode,
    };
  }

  private async terminate(id: string, kind: 'kill' | 'cancel'): Promise<boolean> {
    const c = await this.controlKeys(id);
    if (!c) return false;
    const k = this.keys;
    const r = (await this.redis.terminateInvocation(
      c.inv, c.inbox, c.fence, c.due,
      id, kind, k.part(c.p), this.opts.graceMs, '', k.completionChannel,
      JSON.stringify(kind === 'kill' ? KILLED : CANCELLED),
      c.mode === 'workflow' ? k.state(c.p, c.svc, c.key) : '',
    )) as unknown[];
    switch (r[0]) {
      case 'wake':
        await this.dispatchWakes(r[1]);
        return true;
      case 'signalled':
        return true;
      case 'terminated': {
        if (String(r[1]) !== '') await this.dispatch({ i: String(r[1]), s: c.svc, k: c.key, m: c.mode }, Number(r[2]), 0);
        if (Number(r[3]) === 1) await this.deliverOutcome(id).catch(() => undefined);
        if (kind === 'kill') await this.killChildren(id, c.p);
        return true;
      }
      default:
        return false;
    }
  }

  /** Kills the children an invocation was still waiting for (its call tree). */
  private async killChildren(id: string, p: number): Promise<void> {
    const [journal, comps] = await Promise.all([
      this.redis.lrange(this.keys.journal(p, id), 0, -1),
      this.redis.hgetall(this.keys.completions(p, id)),
    ]);
    for (const [i, raw] of journal.entries()) {
      const e = JSON.parse(raw) as Entry;
      if (e.k === 'call' && comps[String(i)] === undefined) await this.kill(e.id);
    }
  }

  async cancel(invocationId: string, options: { token?: string } = {}): Promise<boolean> {
    if (options.token !== undefined && !(await this.tokenMatches(invocationId, options.token))) return false;
    return this.terminate(invocationId, 'cancel');
  }

  /** Whether `token` is the invocation's cancel token (derived from its seed; see `Accepted.cancelToken`). */
  private async tokenMatches(invocationId: string, token: string): Promise<boolean> {
    const p = partitionOfId(invocationId, this.opts.partitions);
    if (p === undefined) return false;
    const seed = await this.redis.hget(this.keys.inv(p, invocationId), 'rs');
    if (!seed) return false;
    const want = Buffer.from(cancelToken(seed));
    const got = Buffer.from(token);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  kill(invocationId: string): Promise<boolean> {
    return this.terminate(invocationId, 'kill');
  }

  private async control(id: string, kind: 'pause' | 'resume'): Promise<boolean> {
    const c = await this.controlKeys(id);
    if (!c) return false;
    const r = (await this.redis.controlInvocation(c.inv, c.fence, c.due, id, kind, this.opts.graceMs, this.keys.part(c.p), this.keys.completionChannel)) as unknown[];
    if (r[0] === 'wake') await this.dispatchWakes(r[1]);
    return r[0] === 'wake' || r[0] === 'paused';
  }

  pause(invocationId: string): Promise<boolean> {
    return this.control(invocationId, 'pause');
  }

  resume(invocationId: string): Promise<boolean> {
    return this.control(invocationId, 'resume');
  }

  async purge(invocationId: string): Promise<boolean> {
    const c = await this.controlKeys(invocationId);
    if (!c) return false;
    const r = (await this.redis.purgeInvocation(
      c.inv, invocationId, this.keys.part(c.p),
      c.mode === 'workflow' ? this.keys.state(c.p, c.svc, c.key) : '',
      c.mode === 'workflow' ? this.keys.fence(c.p, c.svc, c.key) : '',
    )) as string[];
    return r[0] === 'purged';
  }

  async list(filter: { service?: string; key?: string; status?: InvocationStatus; limit?: number }): Promise<InvocationInfo[]> {
    const limit = filter.limit ?? 100;
    const out: InvocationInfo[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.keys.prefix}:{*}:inv:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const id = key.slice(key.lastIndexOf(':') + 1);
        const info = await this.describe(id);
        if (!info) continue;
        if (filter.service !== undefined && info.target.service !== filter.service) continue;
        if (filter.key !== undefined && info.target.key !== filter.key) continue;
        if (filter.status !== undefined && info.status !== filter.status) continue;
        out.push(info);
      }
    } while (cursor !== '0');
    return out.sort((a, b) => a.createdAt - b.createdAt).slice(0, limit);
  }

  async patchState(service: string, key: string, patch: Record<string, unknown>): Promise<boolean> {
    const p = partitionOf(this.opts.partitions, service, key);
    const args: string[] = [];
    for (const [name, v] of Object.entries(patch)) args.push(name, v === null || v === undefined ? '' : JSON.stringify(v));
    const r = (await this.redis.patchState(this.keys.state(p, service, key), this.keys.fence(p, service, key), args.length / 2, ...args)) as string[];
    return r[0] === 'ok';
  }

  /** @internal used by attempts */
  get options(): StoreConfig {
    return this.opts;
  }

  /** @internal used by attempts */
  redispatch(data: JobData, ds: number, delayMs: number): Promise<void> {
    return this.dispatch(data, ds, delayMs);
  }

  /**
   * @internal The local fast path, when a completion may lease the key's next invocation to this
   * worker. An attempt completing in a slot of its own passes it on (`inherit`: no capacity check,
   * one attempt ends as the next starts); one run by a mailbox job needs a free slot. As for an
   * accept, the slot is taken only when the script has leased (`run`).
   */
  nextSlot(inherit: boolean): { workerId: string; run(data: JobData, res: unknown[], state: Map<string, string>): void } | undefined {
    const local = this.freeLocal(inherit);
    if (!local) return undefined;
    return {
      workerId: this.workerId,
      run: (data, res, state) => void this.inSlot(local, () => this.runLeased(data, this.scriptKeys(data), res, local.executor, local, state)),
    };
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

/** Creates a {@link RedisStore}; `serve()` calls this when no store is passed. */
export function createRedisStore(options: RedisStoreOptions = {}): RedisStore {
  return new RedisStore(options);
}
