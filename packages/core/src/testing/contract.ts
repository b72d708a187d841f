/**
 * `storeContract()`: the guarantees every {@link Store} gives, as a vitest suite. It runs real
 * handlers (see `contract-services.ts`) through core's executor on the store's own workers, so
 * it checks a store the way `serve()` uses it. Where stores legitimately differ (timing, how
 * long an attempt stays `running`), a test states the common guarantee only.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { awakeableId } from '../context/secrets.js';
import { adminContract } from './contract-admin.js';
import { createExecutor } from '../runtime/invoker.js';
import type { WorkerHandle } from '../store/attempt.js';
import type { InvocationStatus } from '../store/invocation.js';
import type { Store } from '../store/store.js';
import {
  awakeableOf,
  awakeablesOf,
  caller,
  counter,
  flaky,
  greeter,
  registry,
  request,
  sleeper,
  until,
  valueOf,
} from './contract-services.js';
import { eventCases } from './contract-events.js';
import { listingCases } from './contract-listing.js';

/** Options of {@link storeContract}. */
export interface StoreContractOptions {
  /**
   * The executor's inactivity timeout (ms); 0 suspends whenever an attempt waits and after every
   * step. Defaults to `LATCHKEY_INACTIVITY_TIMEOUT` when set, else the handlers' own.
   */
  inactivityTimeoutMs?: number;
}

/** Statuses of an invocation that waits for something outside it (a running or parked attempt). */
const WAITING: InvocationStatus[] = ['running', 'suspended'];

/**
 * Defines a vitest suite named `name` that checks the {@link Store} contract on stores made by
 * `makeStore` (a fresh, empty store for every test; the suite calls `init`, starts a worker and
 * closes both at the end of the test).
 *
 * @example
 * ```ts
 * import { createMemoryStore, storeContract } from '@latchkey/core/testing';
 * storeContract('memory store', () => createMemoryStore());
 * ```
 */
export function storeContract(
  name: string,
  makeStore: () => Store | Promise<Store>,
  options: StoreContractOptions = {},
): void {
  const env = process.env['LATCHKEY_INACTIVITY_TIMEOUT'];
  const inactivityTimeoutMs =
    options.inactivityTimeoutMs ?? (env !== undefined && env !== '' ? Number(env) : undefined);
  const quiet = { ...console, log: () => undefined, warn: () => undefined, info: () => undefined };

  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let worker: WorkerHandle | undefined;

    beforeEach(async () => {
      store = await makeStore();
      await store.init();
      const executor = createExecutor(registry, {
        logger: quiet,
        ...(inactivityTimeoutMs !== undefined ? { inactivityTimeoutMs } : {}),
      });
      worker = await store.startWorker(executor, { concurrency: 8 });
    });

    afterEach(async () => {
      await worker?.close(5_000);
      await store.close();
    });

    const greet = { service: greeter.name, handler: 'greet' };
    const add = (key: string) => ({ service: counter.name, handler: 'add', key });
    const hold = (key: string) => ({ service: counter.name, handler: 'hold', key });

    eventCases(() => store);

    it('accepts an invocation, runs it and reports its outcome and status', async () => {
      const a = await store.accept(request(greet, 'ada'));
      expect(a.status).toBe('Accepted');
      expect(a.reason).toBeUndefined();
      expect(typeof a.cancelToken).toBe('string');
      expect(valueOf(await store.awaitOutcome(a.invocationId))).toBe('hello ada');
      const info = await store.describe(a.invocationId);
      expect(info).toMatchObject({
        id: a.invocationId,
        target: greet,
        mode: 'service',
        status: 'completed',
        outcome: { ok: true, value: '"hello ada"' },
      });
      expect(info?.createdAt).toBeGreaterThan(0);
      const signal = new AbortController().signal;
      const awaited = await store.accept(request(greet, 'bob'), { awaitOutcome: signal });
      expect(valueOf(await awaited.outcome!)).toBe('hello bob');
    });

    it('dedupes by idempotency key: the same invocation, run once', async () => {
      const req = request(add('idem'), 5, { idempotencyKey: 'k1' });
      const first = await store.accept(req);
      const second = await store.accept(req);
      expect(second).toEqual({
        invocationId: first.invocationId,
        status: 'PreviouslyAccepted',
        reason: 'idempotency',
      });
      expect(valueOf(await store.awaitOutcome(second.invocationId))).toBe(5);
      const third = await store.accept(req);
      expect(third.invocationId).toBe(first.invocationId);
      expect(third.status).toBe('PreviouslyAccepted');
      expect((await store.getState(counter.name, 'idem')).get('count')).toBe('5');
      const ref = { service: counter.name, handler: 'add', key: 'idem', idempotencyKey: 'k1' };
      expect(await store.lookup(ref)).toBe(first.invocationId);
      expect(await store.lookup({ ...ref, idempotencyKey: 'other' })).toBeUndefined();
    });

    it('dedupes a workflow by its id, and sleeps durably', async () => {
      const run = { service: sleeper.name, handler: 'run', key: 'wf1' };
      const first = await store.accept(request(run, 40));
      const again = await store.accept(request(run, 99));
      expect(again).toEqual({
        invocationId: first.invocationId,
        status: 'PreviouslyAccepted',
        reason: 'workflow',
      });
      expect(await store.lookup({ workflow: sleeper.name, key: 'wf1' })).toBe(first.invocationId);
      expect(valueOf(await store.awaitOutcome(first.invocationId))).toBe('slept:40');
      const info = await store.describe(first.invocationId, true);
      const sleep = info?.journal?.find((e) => e.k === 'sleep');
      expect(sleep).toMatchObject({ k: 'sleep' });
      expect((sleep as { due: number }).due).toBeGreaterThanOrEqual(info!.createdAt + 40);
      expect((await store.getState(sleeper.name, 'wf1')).get('slept')).toBe('40');
      // A finished workflow run still dedupes (within its retention).
      expect((await store.accept(request(run, 1))).invocationId).toBe(first.invocationId);
    });

    it('keeps an object key state across invocations and serves shared reads', async () => {
      const signal = new AbortController().signal;
      const first = await store.accept(request(add('s'), 3), { awaitOutcome: signal });
      expect(valueOf(await first.outcome!)).toBe(3);
      const second = await store.accept(request(add('s'), 2));
      expect(valueOf(await store.awaitOutcome(second.invocationId))).toBe(5);
      const get = { service: counter.name, handler: 'get', key: 's' };
      const read = await store.accept(request(get, null));
      expect(valueOf(await store.awaitOutcome(read.invocationId))).toBe(5);
      expect(await store.getState(counter.name, 's')).toEqual(new Map([['count', '5']]));
      expect(await store.getState(counter.name, 'never-used')).toEqual(new Map());
    });

    it('holds a key: later invocations queue, state patches are refused', async () => {
      const held = await store.accept(request(hold('h'), null));
      const awk = await awakeableOf(store, held.invocationId);
      expect(WAITING).toContain((await store.describe(held.invocationId))?.status);
      const progress = await store.progress(held.invocationId, 0);
      expect(progress?.entries.map((e) => e.k)).toEqual(['awk']);
      expect(WAITING).toContain(progress?.status);
      expect((await store.progress(held.invocationId, 1))?.entries).toEqual([]);
      const next = await store.accept(request(add('h'), 1));
      expect((await store.describe(next.invocationId))?.status).toBe('queued');
      expect(await store.patchState(counter.name, 'h', { count: 10 })).toBe(false);
      const unknown = awakeableId('inv_00000000000000000000000000', 0, 'seed');
      expect(await store.resolveAwakeable(unknown, { ok: true, v: '"x"' })).toBe('refused');
      expect(await store.resolveAwakeable('sign_1garbage', { ok: true, v: '"x"' })).toBe('refused');
      expect(await store.resolveAwakeable(awk, { ok: true, v: '"go"' })).toBe('ok');
      expect(valueOf(await store.awaitOutcome(held.invocationId))).toBe('held:go');
      expect(await store.resolveAwakeable(awk, { ok: true, v: '"again"' })).toBe('refused');
      expect(valueOf(await store.awaitOutcome(next.invocationId))).toBe(1);
      expect(await store.patchState(counter.name, 'h', { count: 10, other: 'x' })).toBe(true);
      expect(await store.patchState(counter.name, 'h', { other: null })).toBe(true);
      expect(await store.getState(counter.name, 'h')).toEqual(new Map([['count', '10']]));
    });

    it('completes an awakeable once, and only the entry that names it', async () => {
      const pair = { service: counter.name, handler: 'pair', key: 'a' };
      const inv = await store.accept(request(pair, null));
      const [a, b] = await awakeablesOf(store, inv.invocationId, 2);
      expect(await store.resolveAwakeable(a!, { ok: true, v: '"x"' })).toBe('ok');
      expect(await store.resolveAwakeable(a!, { ok: true, v: '"again"' })).toBe('refused');
      // Still waiting for b (a suspended invocation may have been woken by a's completion).
      expect(['ready', ...WAITING]).toContain((await store.describe(inv.invocationId))?.status);
      expect(await store.resolveAwakeable(b!, { ok: true, v: '"y"' })).toBe('ok');
      expect(valueOf(await store.awaitOutcome(inv.invocationId))).toBe('x+y');
    });

    it('cancels only with the right token', async () => {
      const held = await store.accept(request(hold('c'), null));
      await awakeableOf(store, held.invocationId);
      expect(await store.cancel(held.invocationId, { token: 'wrong' })).toBe(false);
      expect(WAITING).toContain((await store.describe(held.invocationId))?.status);
      expect(await store.cancel(held.invocationId, { token: held.cancelToken! })).toBe(true);
      const o = await store.awaitOutcome(held.invocationId);
      expect(o).toMatchObject({ ok: false, error: { name: 'CancelledError', status: 409 } });
      expect(await store.cancel(held.invocationId)).toBe(false);
    });

    it('kills an invocation at once and frees its key', async () => {
      const held = await store.accept(request(hold('k'), null));
      await awakeableOf(store, held.invocationId);
      const next = await store.accept(request(add('k'), 1));
      expect(await store.kill(held.invocationId)).toBe(true);
      const o = await store.awaitOutcome(held.invocationId);
      expect(o).toMatchObject({ ok: false, error: { status: 409 } });
      expect((await store.describe(held.invocationId))?.status).toBe('completed');
      expect(valueOf(await store.awaitOutcome(next.invocationId))).toBe(1);
      expect(await store.kill(held.invocationId)).toBe(false);
    });

    it('pauses (no progress, completions kept) and resumes', async () => {
      const held = await store.accept(request(hold('p'), null));
      const awk = await awakeableOf(store, held.invocationId);
      expect(await store.pause(held.invocationId)).toBe(true);
      expect((await store.describe(held.invocationId))?.status).toBe('paused');
      expect(await store.pause(held.invocationId)).toBe(false);
      expect(await store.resolveAwakeable(awk, { ok: true, v: '"later"' })).toBe('ok');
      expect((await store.describe(held.invocationId))?.status).toBe('paused');
      expect(await store.resume(held.invocationId)).toBe(true);
      expect(valueOf(await store.awaitOutcome(held.invocationId))).toBe('held:later');
      expect(await store.resume(held.invocationId)).toBe(false);
    });

    it('purges only completed invocations, with their dedupe records', async () => {
      const held = await store.accept(request(hold('u'), null));
      await awakeableOf(store, held.invocationId);
      expect(await store.purge(held.invocationId)).toBe(false);
      await store.kill(held.invocationId);
      await store.awaitOutcome(held.invocationId);
      const done = await store.accept(request(greet, 'p', { idempotencyKey: 'pk' }));
      await store.awaitOutcome(done.invocationId);
      expect(await store.purge(done.invocationId)).toBe(true);
      expect(await store.describe(done.invocationId)).toBeUndefined();
      expect(await store.progress(done.invocationId, 0)).toBeUndefined();
      expect(await store.lookup({ ...greet, idempotencyKey: 'pk' })).toBeUndefined();
      expect(await store.purge(done.invocationId)).toBe(false);
      const fresh = await store.accept(request(greet, 'p', { idempotencyKey: 'pk' }));
      expect(fresh.status).toBe('Accepted');
      expect(fresh.invocationId).not.toBe(done.invocationId);
    });

    it('answers false or nothing for unknown invocations', async () => {
      const id = 'inv_00000000000000000000000000';
      expect(await store.describe(id)).toBeUndefined();
      expect(await store.progress(id, 0)).toBeUndefined();
      expect(await store.cancel(id)).toBe(false);
      expect(await store.cancel(id, { token: 'x' })).toBe(false);
      expect(await store.kill(id)).toBe(false);
      expect(await store.pause(id)).toBe(false);
      expect(await store.resume(id)).toBe(false);
      expect(await store.purge(id)).toBe(false);
    });

    listingCases(() => store);

    it('completes a call between two handlers', async () => {
      const a = await store.accept(request({ service: caller.name, handler: 'callGreeter' }, 'cy'));
      expect(valueOf(await store.awaitOutcome(a.invocationId))).toBe('called:hello cy');
      const journal = (await store.describe(a.invocationId, true))?.journal ?? [];
      const call = journal.find((e) => e.k === 'call');
      expect(call).toMatchObject({ k: 'call', n: `${greeter.name}/greet` });
      const child = await store.describe((call as { id: string }).id);
      expect(child).toMatchObject({
        target: greet,
        status: 'completed',
        outcome: { ok: true, value: '"hello cy"' },
      });
    });

    it('retries an attempt that threw, after its delay', async () => {
      const a = await store.accept(request({ service: flaky.name, handler: 'work' }, null));
      expect(valueOf(await store.awaitOutcome(a.invocationId))).toBe('attempt:2');
      const info = await until('the record', () => store.describe(a.invocationId));
      expect(info.attempts).toBe(1);
      expect(info.lastFailure).toMatchObject({ message: 'transient' });
    });

    adminContract(() => store);
  });
}
