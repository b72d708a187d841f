/**
 * The Redis key layout. Every key an invocation's scripts touch carries the
 * hash tag of its partition, `{<p>}`, so one script never crosses slots and
 * the same code runs on a Redis Cluster. User-supplied names (service, key,
 * handler, idempotency key) are percent-encoded, which never emits `{`, `}` or
 * `:`, so they can neither choose the hash tag nor collide with internal keys.
 *
 * ```
 * <prefix>:{<p>}:inv:<id>                  invocation hash
 * <prefix>:{<p>}:j:<id>                    journal list (JSON entries)
 * <prefix>:{<p>}:s:<svc>:<key>             object/workflow state hash
 * <prefix>:{<p>}:q:<svc>:<key>             key inbox list (FIFO of exclusive invocations)
 * <prefix>:{<p>}:k:<svc>:<key>             key fence hash (owner, ep)
 * <prefix>:{<p>}:wf:<svc>:<key>            workflow run record -> invocation id
 * <prefix>:{<p>}:idem:<svc>:<key>:<h>:<i>  idempotency record -> invocation id
 * <prefix>:{<p>}:c:<id>                    completions hash (journal index -> completion JSON)
 * <prefix>:{<p>}:nt:<id>                   notify set ('<invocationId>:<index>' awaiting this outcome)
 * <prefix>:{<p>}:ow:<id>                   outcome watchers: channels of the processes waiting for this outcome
 * <prefix>:{<p>}:pr:<svc>:<key>            workflow durable promises (name -> completion JSON)
 * <prefix>:{<p>}:pr:<svc>:<key>:w          names of the waiter sets of those promises
 * <prefix>:{<p>}:pw:<svc>:<key>:<name>     waiters of one workflow promise ('<invocationId>:<index>')
 * <prefix>:{<p>}:due                       partition due zset (reconciler deadlines)
 * <prefix>:{<p>}:outbox                    partition outbox zset (effects on other partitions)
 * <prefix>:{<p>}:ev                        live events flag: the events channel's name while a process listens
 * <prefix>:{<p>}:own                       the partition's duty lease: the process that sweeps it and fires its timers
 * <prefix>:{<p>}:tm                        pub/sub channel: a timer earlier than the partition's earliest deadline
 * <prefix>:{<p>}:ix:all                    index: every invocation (id -> created at)
 * <prefix>:{<p>}:ix:svc:<svc>              index: invocations of a service (id -> created at)
 * <prefix>:{<p>}:ix:h:<svc>:<h>            index: invocations of a handler (id -> created at)
 * <prefix>:{<p>}:ix:key:<svc>:<key>        index: invocations of an object/workflow key (id -> created at)
 * <prefix>:{<p>}:ix:st:<status>            index: invocations in a status (id -> modified at)
 * <prefix>:{<p>}:ix:ss:<svc>:<status>      index: a service's invocations in a status (id -> modified at)
 * <prefix>:{<p>}:ix:svcs                   set: services with indexed invocations (encoded names)
 * <prefix>:{<p>}:ix:exp                    zset: completed invocations' index entries -> expiry time
 * <prefix>:{<p>}:ix:keys:<svc>             zset: keys of an object/workflow (score 0, raw key)
 * <prefix>:boot                            boot marker
 * <prefix>:{w}:live                        zset: live worker processes (duty id -> heartbeat expiry)
 * <prefix>:done:<worker id>                pub/sub channel of one process's outcome waiters
 * <prefix>:cmp                             pub/sub channel of completions/cancels for running attempts
 * <prefix>:ev                              pub/sub channel of live events (status changes, journal commits)
 * <prefix>:{q<n>}:...                      BullMQ queue of mailbox shard n
 * ```
 */
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

/** FNV-1a, 32 bit. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Partition of a keyed target: every invocation of one object key lands in one partition. */
export function partitionOf(partitions: number, ...parts: string[]): number {
  return fnv1a(parts.join('\u0000')) % partitions;
}

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Makes an invocation id `inv_<pp><random>`; `pp` is the partition in base 36. */
export function newInvocationId(partition: number, random: Uint8Array): string {
  let s = '';
  for (const b of random) s += ALPHABET[b % 62];
  return `inv_${partition.toString(36).padStart(2, '0')}${s}`;
}

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
  /** The partition's live events flag (see `events.ts`). */
  events: 'ev',
  /** The partition's duty lease: which process sweeps it and fires its timers (see `duties.ts`). */
  owner: 'own',
  /** The partition's timer channel: a wake time earlier than every deadline in `due` (see `duties.ts`). */
  timers: 'tm',
  /** Index (zset id -> created at) of every invocation. */
  ixAll: 'ix:all',
  /** Index (zset id -> created at) by service: `ix:svc:<svc>`. */
  ixService: 'ix:svc:',
  /** Index (zset id -> created at) by service and handler: `ix:h:<svc>:<handler>`. */
  ixHandler: 'ix:h:',
  /** Index (zset id -> created at) by object/workflow key: `ix:key:<svc>:<key>`. */
  ixKey: 'ix:key:',
  /** Index (zset id -> modified at) by status: `ix:st:<status>`. */
  ixStatus: 'ix:st:',
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

/** Key names under one prefix. */
export class Keys {
  readonly prefix: string;
  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** `<prefix>:{p}:`, the start of every key of partition p. */
  part(p: number): string {
    return `${this.prefix}:{${p}}:`;
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
  /** The index of every invocation of partition p. */
  ixAll(p: number): string {
    return `${this.part(p)}${KEY.ixAll}`;
  }
  ixService(p: number, svc: string): string {
    return `${this.part(p)}${KEY.ixService}${enc(svc)}`;
  }
  ixHandler(p: number, svc: string, handler: string): string {
    return `${this.part(p)}${KEY.ixHandler}${enc(svc)}:${enc(handler)}`;
  }
  ixKey(p: number, svc: string, key: string): string {
    return `${this.part(p)}${KEY.ixKey}${this.objectSuffix(svc, key)}`;
  }
  ixStatus(p: number, status: string): string {
    return `${this.part(p)}${KEY.ixStatus}${status}`;
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
  /** The channel the scripts publish live events on (see `events.ts`). */
  get eventsChannel(): string {
    return `${this.prefix}:ev`;
  }
  get completionChannel(): string {
    return `${this.prefix}:cmp`;
  }
  get boot(): string {
    return `${this.prefix}:boot`;
  }
  /** The channel on which one process (store instance) hears the outcomes it waits for. */
  outcomeChannel(workerId: string): string {
    return `${this.prefix}:done:${workerId}`;
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
