/**
 * Seeding a store with many invocations fast, for load tests and benchmarks of the admin listing:
 * each is accepted by the accept script itself (pipelined batches, no mailbox job), delayed long
 * enough that nothing runs it. The records and indexes are exactly those a real accept writes.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { TargetMode } from '@latchkey/core';
import { acceptArgs } from './calls.js';
import { partitionBatch } from './connection.js';
import { Keys, newInvocationId, partitionOf } from './keys.js';
import { DEFAULTS } from './options.js';
import { defineScripts, type ScriptedRedis } from './scripts.js';
import { retentionArg } from './wire.js';

/** What one seeded invocation targets. */
export interface SeedTarget {
  service: string;
  handler: string;
  /** `service` (default), `exclusive` or `shared` (workflows are not seeded). */
  mode?: Exclude<TargetMode, 'workflow'>;
  /** The object key (exclusive and shared). */
  key?: string;
  idempotencyKey?: string;
}

/** Options of {@link seedInvocations}. */
export interface SeedOptions {
  /** The store's key prefix. */
  prefix: string;
  /** The store's partitions (default 16). */
  partitions?: number;
  /** How many invocations. */
  count: number;
  /** The target of the i-th invocation. */
  target: (i: number) => SeedTarget;
  /** Their delay (ms; default two days). */
  delayMs?: number;
  /** Accepts per pipeline (default 2,000). */
  batch?: number;
}

const DAY = 86_400_000;

/**
 * Accepts `count` delayed invocations through the accept script on `redis` (a connection of its
 * own: the store's scripts are defined on it) and returns their ids.
 */
export async function seedInvocations(redis: Redis, o: SeedOptions): Promise<string[]> {
  const scripted: ScriptedRedis = defineScripts(redis);
  const P = o.partitions ?? DEFAULTS.partitions;
  const keys = new Keys(o.prefix, P);
  const batch = o.batch ?? 2000;
  const retention = retentionArg(DAY, DAY, DAY);
  const ids: string[] = [];
  for (let from = 0; from < o.count; from += batch) {
    const pipe = partitionBatch(scripted) as unknown as Record<
      'acceptInvocation',
      (...args: (string | number)[]) => void
    > & { exec(): Promise<[Error | null, unknown][] | null> };
    for (let i = from; i < Math.min(o.count, from + batch); i++) {
      const t = o.target(i);
      const mode = t.mode ?? 'service';
      const key = t.key ?? '';
      const idem = t.idempotencyKey ?? '';
      const p =
        mode !== 'service'
          ? partitionOf(P, t.service, key)
          : idem !== ''
            ? partitionOf(P, t.service, t.handler, idem)
            : Math.floor(Math.random() * P);
      const id = newInvocationId(p, randomBytes(20));
      const object = mode !== 'service' ? keys.objectKeys(p, t.service, key) : undefined;
      const inv = keys.inv(p, id);
      pipe.acceptInvocation(
        ...acceptArgs({
          keys: {
            inv,
            due: keys.due(p),
            fence: mode === 'exclusive' ? object!.fence : inv,
            state: object?.state,
            inbox: mode === 'exclusive' ? object!.inbox : undefined,
            workflow: undefined,
            idempotency:
              idem !== '' ? keys.idempotency(p, t.service, key, t.handler, idem) : undefined,
          },
          id,
          service: t.service,
          handler: t.handler,
          key,
          mode,
          input: 'null',
          idempotencyKey: idem,
          headersJson: '{}',
          delayMs: o.delayMs ?? 2 * DAY,
          graceMs: DEFAULTS.graceMs,
          retention,
          part: keys.part(p),
          member: '',
          workerId: '',
          leaseMs: DEFAULTS.leaseMs,
          outcomeChannel: '',
          seed: randomBytes(16).toString('base64url'),
          invokedBy: '',
          trace: '',
          eager: undefined,
        }),
      );
      ids.push(id);
    }
    for (const [err] of (await pipe.exec()) ?? []) if (err) throw err;
  }
  return ids;
}
