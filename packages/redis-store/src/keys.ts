/**
 * The Redis key layout. Every key an invocation's scripts touch carries the
 * hash tag of its partition, `{<t>}` (see {@link partitionTag}), so one script never crosses slots
 * and the same code runs on a Redis Cluster. User-supplied names (service, key,
 * handler, idempotency key) are percent-encoded, which never emits `{`, `}` or
 * `:`, so they can neither choose the hash tag nor collide with internal keys.
 *
 * ```
 * <prefix>:{<p>}:inv:<id>                  invocation hash
 * <prefix>:{<p>}:j:<id>                    journal list (JSON entries)
 * <prefix>:{<p>}:s:<svc>:<key>             object/workflow state hash
 * <prefix>:{<p>}:q:<svc>:<key>             key inbox list (FIFO of exclusive invocations)
 * <prefix>:{<p>}:k:<svc>:<key>             key fence hash (owner, ep; a workflow's run record: run)
 * <prefix>:{<p>}:wf:<svc>:<key>            workflow run record of earlier versions (read only)
 * <prefix>:{<p>}:idem:<svc>:<key>:<h>:<i>  idempotency record -> invocation id
 * <prefix>:{<p>}:c:<id>                    completions hash (journal index -> completion JSON)
 * <prefix>:{<p>}:nt:<id>                   notify set ('<invocationId>:<index>' awaiting this outcome)
 * <prefix>:{<p>}:ow:<id>                   outcome watchers: channels of the processes waiting for this outcome
 * <prefix>:{<p>}:pr:<svc>:<key>            workflow durable promises (name -> completion JSON)
 * <prefix>:{<p>}:pr:<svc>:<key>:w          names of the waiter sets of those promises
 * <prefix>:{<p>}:pw:<svc>:<key>:<name>     waiters of one workflow promise ('<invocationId>:<index>')
 * <prefix>:{<p>}:due                       partition due zset (reconciler deadlines)
 * <prefix>:{<p>}:outbox                    partition outbox zset (effects on other partitions)
 * <prefix>:{<p>}:wb                        replication barrier (durability 'replicated')
 * <prefix>:{<p>}:ev                        live events flag: the events channel's name while a process listens
 * <prefix>:{<p>}:own                       the partition's duty lease: the process that sweeps it and fires its timers
 * <prefix>:{<p>}:tm                        pub/sub channel: a timer earlier than the partition's earliest deadline
 * <prefix>:{<p>}:ix:svc:<svc>              index: invocations of a service (id -> created at)
 * <prefix>:{<p>}:ix:key:<svc>:<key>        index: invocations of an object/workflow key (id -> created at)
 * <prefix>:{<p>}:ix:ss:<svc>:<status>      index: a service's invocations in a status (id -> modified at)
 * <prefix>:{<p>}:ix:svcs                   set: services with indexed invocations (encoded names)
 * <prefix>:{<p>}:ix:exp                    zset: completed invocations' index entries -> expiry time
 * <prefix>:{<p>}:ix:keys:<svc>             zset: keys of an object/workflow (score 0, raw key)
 * <prefix>:{<p>}:done:<process>            sharded channel: outcomes for one process's waiters
 * <prefix>:{<p>}:cmp                       sharded channel: completions/cancels for running attempts
 * <prefix>:{<p>}:evc                       sharded channel: live events (status changes, journal commits)
 * <prefix>:boot                            boot marker
 * <prefix>:layout                          the partition count the data was created with
 * <prefix>:workers                         hash: worker processes taking hand-offs -> expiry:free slots
 * <prefix>:deployments                     hash: push deployments (id -> JSON record)
 * <prefix>:{<p>}:adopted:<id>:<epoch>      string: a push deployment took this attempt over (15 min)
 * <prefix>:{<p>}:hand:<worker>             sharded channel: hand-offs of partition p to one worker
 * <prefix>:{w}:live                        zset: live worker processes (duty id -> heartbeat expiry)
 * <prefix>:{q<n>}:...                      BullMQ queue of mailbox shard n
 * ```
 */
import calculateSlot from 'cluster-key-slot';
import { StoreError } from './errors.js';
import type { JobData, ScriptKeys } from './wire.js';

/**
 * Encodes a user-supplied name injectively, without `{`, `}` or `:`. A name that is not well-formed
 * Unicode (a lone surrogate) has no encoding: a `StoreError` (`INVALID_NAME`); the ingresses and
 * the context refuse such names before they reach the store.
 */
export function enc(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    throw new StoreError('a name is not well-formed Unicode (a lone surrogate)', 'INVALID_NAME');
  }
}

export { fnv1a, newInvocationId, partitionOf } from '@latchkey/core/internal';

const ID_RE = /^inv_([0-9a-z]{2})[0-9A-Za-z]{16,64}$/;

/** The partition an invocation id names, or undefined for a malformed id. */
export function partitionOfId(id: string, partitions: number): number | undefined {
  const m = ID_RE.exec(id);
  if (!m) return undefined;
  const p = parseInt(m[1]!, 36);
  return p < partitions ? p : undefined;
}

/**
 * The key layout, defined once: each kind of partition key's name after the partition's
 * `<prefix>:{p}:`. `Keys` builds names from it, and the Lua scripts get the same names as
 * constants (`KEY_INV`, `KEY_JOURNAL`, ... see {@link luaKeyNames}), generated from it when the
 * scripts are loaded.
 */
export const KEY = {
  inv: 'inv:',
  journal: 'j:',
  state: 's:',
  inbox: 'q:',
  fence: 'k:',
  workflow: 'wf:',
  idempotency: 'idem:',
  completions: 'c:',
  notify: 'nt:',
  watchers: 'ow:',
  promises: 'pr:',
  promiseWaiters: 'pw:',
  due: 'due',
  outbox: 'outbox',
  /** The partition's replication barrier: written before a WAIT that must cover others' writes (see `durability.ts`). */
  barrier: 'wb',
  /** The partition's live events flag (see `events.ts`). */
  events: 'ev',
  /** The partition's duty lease: which process sweeps it and fires its timers (see `duties.ts`). */
  owner: 'own',
  /** The partition's timer channel: a wake time earlier than every deadline in `due` (see `duties.ts`). */
  timers: 'tm',
  /** Index (zset id -> created at) by service: `ix:svc:<svc>`. */
  ixService: 'ix:svc:',
  /** Index (zset id -> created at) by object/workflow key: `ix:key:<svc>:<key>`. */
  ixKey: 'ix:key:',
  /** Index (zset id -> modified at) by service and status: `ix:ss:<svc>:<status>`. */
  ixServiceStatus: 'ix:ss:',
  /** Set of the (encoded) services that have index entries. */
  ixServices: 'ix:svcs',
  /** Zset of completed invocations' index entries (`<id>:<svc>:<handler>:<key>`) -> expiry time. */
  ixExpiry: 'ix:exp',
  /** Zset (score 0) of the keys of an object or workflow: `ix:keys:<svc>`. */
  ixKeys: 'ix:keys:',
  /** After a workflow's promises key: the set naming its promise waiter sets. */
  promiseSets: ':w',
} as const;

/** The partitions' sharded pub/sub channels: each name after the partition's `<prefix>:{<tag>}:`. */
const CHANNEL = { events: 'evc', completion: 'cmp', outcome: 'done:' } as const;

/**
 * The Lua definitions of {@link KEY}, one `local KEY_<NAME> = '<value>'` each (`promiseSets` is
 * `KEY_PROMISE_SETS`): the scripts build partition key names only from these, as
 * `part .. KEY_INV .. id`, `part` being the partition's prefix they are given.
 */
export function luaKeyNames(): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(KEY)) {
    const lua = `KEY_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    lines.push(`-- Key layout (generated from keys.ts): ${name}.`, `local ${lua} = '${value}'`);
  }
  return lines.join('\n');
}

/** Redis Cluster's number of hash slots. */
const SLOTS = 16384;

/**
 * The hash tag of partition `p` of `partitions`: `p` itself when its slot already lies in the
 * partition's share of the slot space (`[p, p + 1) × 16384 / partitions`), else the first `p.<n>`
 * whose slot does. A cluster's slots are assigned to masters in contiguous ranges
 * (`redis-cli --cluster create` splits them evenly), so the partitions spread evenly over the
 * masters instead of where CRC16 happens to put `{0}`, `{1}`, ...
 */
export function partitionTag(p: number, partitions: number): string {
  const low = Math.floor((p * SLOTS) / partitions);
  const high = Math.max(low + 1, Math.floor(((p + 1) * SLOTS) / partitions));
  const inRange = (tag: string): boolean => {
    const slot = calculateSlot(tag);
    return slot >= low && slot < high;
  };
  if (inRange(String(p))) return String(p);
  for (let n = 0; ; n++) if (inRange(`${p}.${n}`)) return `${p}.${n}`;
}

/** Key names under one prefix. */
export class Keys {
  readonly prefix: string;
  /** Each partition's `<prefix>:{<tag>}:`, computed once per partition count. */
  private parts: string[] = [];
  constructor(prefix: string, partitions = 16) {
    this.prefix = prefix;
    this.setPartitions(partitions);
  }

  /** Lays the keys out for `partitions` partitions (at start-up, once Redis said how many). */
  setPartitions(partitions: number): void {
    this.parts = Array.from(
      { length: partitions },
      (_, p) => `${this.prefix}:{${partitionTag(p, partitions)}}:`,
    );
  }

  /** `<prefix>:{<tag>}:`, the start of every key of partition p. */
  part(p: number): string {
    const part = this.parts[p];
    if (part === undefined) throw new StoreError(`no partition ${p}`, 'INTERNAL');
    return part;
  }
  inv(p: number, id: string): string {
    return `${this.part(p)}${KEY.inv}${id}`;
  }
  journal(p: number, id: string): string {
    return `${this.part(p)}${KEY.journal}${id}`;
  }
  /** `<svc>:<key>` suffix shared by state, inbox, fence and workflow keys. */
  objectSuffix(svc: string, key: string): string {
    return `${enc(svc)}:${enc(key)}`;
  }
  /** The state, inbox and fence keys of one object key (its names encoded once). */
  objectKeys(p: number, svc: string, key: string): { state: string; inbox: string; fence: string } {
    const part = this.part(p);
    const suffix = this.objectSuffix(svc, key);
    return {
      state: `${part}${KEY.state}${suffix}`,
      inbox: `${part}${KEY.inbox}${suffix}`,
      fence: `${part}${KEY.fence}${suffix}`,
    };
  }
  state(p: number, svc: string, key: string): string {
    return `${this.part(p)}${KEY.state}${this.objectSuffix(svc, key)}`;
  }
  inbox(p: number, svc: string, key: string): string {
    return `${this.part(p)}${KEY.inbox}${this.objectSuffix(svc, key)}`;
  }
  fence(p: number, svc: string, key: string): string {
    return `${this.part(p)}${KEY.fence}${this.objectSuffix(svc, key)}`;
  }
  workflow(p: number, svc: string, key: string): string {
    return `${this.part(p)}${KEY.workflow}${this.objectSuffix(svc, key)}`;
  }
  idempotency(p: number, svc: string, key: string, handler: string, idem: string): string {
    return `${this.part(p)}${KEY.idempotency}${enc(svc)}:${enc(key)}:${enc(handler)}:${enc(idem)}`;
  }
  due(p: number): string {
    return `${this.part(p)}${KEY.due}`;
  }
  outbox(p: number): string {
    return `${this.part(p)}${KEY.outbox}`;
  }
  completions(p: number, id: string): string {
    return `${this.part(p)}${KEY.completions}${id}`;
  }
  notify(p: number, id: string): string {
    return `${this.part(p)}${KEY.notify}${id}`;
  }
  watchers(p: number, id: string): string {
    return `${this.part(p)}${KEY.watchers}${id}`;
  }
  promises(p: number, svc: string, key: string): string {
    return `${this.part(p)}${KEY.promises}${this.objectSuffix(svc, key)}`;
  }
  /** The set naming a workflow's promise waiter sets. */
  promiseSets(p: number, svc: string, key: string): string {
    return `${this.promises(p, svc, key)}${KEY.promiseSets}`;
  }
  promiseWaiters(p: number, svc: string, key: string, name: string): string {
    return `${this.part(p)}${KEY.promiseWaiters}${this.objectSuffix(svc, key)}:${enc(name)}`;
  }
  ixService(p: number, svc: string): string {
    return `${this.part(p)}${KEY.ixService}${enc(svc)}`;
  }
  ixKey(p: number, svc: string, key: string): string {
    return `${this.part(p)}${KEY.ixKey}${this.objectSuffix(svc, key)}`;
  }
  ixServiceStatus(p: number, svc: string, status: string): string {
    return `${this.part(p)}${KEY.ixServiceStatus}${enc(svc)}:${status}`;
  }
  ixServices(p: number): string {
    return `${this.part(p)}${KEY.ixServices}`;
  }
  ixExpiry(p: number): string {
    return `${this.part(p)}${KEY.ixExpiry}`;
  }
  ixKeys(p: number, svc: string): string {
    return `${this.part(p)}${KEY.ixKeys}${enc(svc)}`;
  }
  /** The replication barrier of partition p (see `durability.ts`). */
  barrier(p: number): string {
    return `${this.part(p)}${KEY.barrier}`;
  }
  /** The live events flag of partition p: holds {@link eventsChannel} while a process listens. */
  eventsFlag(p: number): string {
    return `${this.part(p)}${KEY.events}`;
  }
  /** The duty lease of partition p: the live process that sweeps it (see `duties.ts`). */
  owner(p: number): string {
    return `${this.part(p)}${KEY.owner}`;
  }
  /** The channel on which partition p's scripts announce a timer earlier than its earliest deadline. */
  timerChannel(p: number): string {
    return `${this.part(p)}${KEY.timers}`;
  }
  /** The registry of live worker processes (its own hash tag, `{w}`; see `duties.ts`). */
  get liveProcesses(): string {
    return `${this.prefix}:{w}:live`;
  }
  /**
   * The sharded channel the scripts of partition p publish live events on (see `events.ts`).
   * Every channel is a partition's: a script publishes (SPUBLISH) only in its own slot, so on a
   * cluster a message goes to the partition's shard, not to every node.
   */
  eventsChannel(p: number): string {
    return `${this.part(p)}${CHANNEL.events}`;
  }
  /** The sharded channel of completions and cancels for attempts running on partition p. */
  completionChannel(p: number): string {
    return `${this.part(p)}${CHANNEL.completion}`;
  }
  /** The sharded channel on which one process (`process`) hears the outcomes of partition p it waits for. */
  outcomeChannel(p: number, process: string): string {
    return `${this.part(p)}${CHANNEL.outcome}${process}`;
  }
  /** Which channel of ours `channel` is: its kind and partition prefix (undefined: not ours). */
  channelKind(channel: string): 'events' | 'completion' | 'outcome' | undefined {
    const at = channel.indexOf('}:');
    if (at < 0) return undefined;
    const rest = channel.slice(at + 2);
    if (rest === CHANNEL.events) return 'events';
    if (rest === CHANNEL.completion) return 'completion';
    if (rest.startsWith(CHANNEL.outcome)) return 'outcome';
    return undefined;
  }
  get boot(): string {
    return `${this.prefix}:boot`;
  }
  /** The partition count the data was created with (set once, at first start). */
  get layout(): string {
    return `${this.prefix}:layout`;
  }
  /** The push deployments registered with the engine (see `deployments.ts`). */
  get deployments(): string {
    return `${this.prefix}:deployments`;
  }
  /** The registry of worker processes that take hand-offs (see `handoff.ts`). */
  get workers(): string {
    return `${this.prefix}:workers`;
  }
  /**
   * The sharded channel (SPUBLISH/SSUBSCRIBE) on which worker `worker` hears the hand-offs of
   * partition p: it carries the partition's hash tag, so a script of that partition may publish
   * to it and a Redis Cluster routes it to the partition's shard.
   */
  handoffChannel(p: number, worker: string): string {
    return `${this.part(p)}hand:${worker}`;
  }
  /** BullMQ prefix of mailbox shard n (its own hash tag). */
  queuePrefix(shard: number): string {
    return `${this.prefix}:{q${shard}}`;
  }
}

/** The KEYS of an invocation's attempt scripts: only those its mode needs. */
export function scriptKeys(k: Keys, p: number, data: JobData): ScriptKeys {
  const inv = k.inv(p, data.i);
  const journal = k.journal(p, data.i);
  const due = k.due(p);
  if (data.m === 'service')
    return { p, inv, journal, fence: inv, due, state: undefined, inbox: undefined };
  const object = k.objectKeys(p, data.s, data.k);
  if (data.m === 'shared')
    return { p, inv, journal, fence: inv, due, state: object.state, inbox: undefined };
  return { p, inv, journal, fence: object.fence, due, state: object.state, inbox: object.inbox };
}
