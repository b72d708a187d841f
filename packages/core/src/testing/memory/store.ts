/**
 * The in-memory {@link Store}: the ingress, admin and worker sides over one {@link Engine}.
 */
import { cancelToken, parseAwakeableId } from '../../context/secrets.js';
import type { Completion, Entry } from '../../journal/entry.js';
import type { StopSignal } from '../../runtime/stop-signal.js';
import type { Executor, WorkerHandle, WorkerOptions } from '../../store/attempt.js';
import type {
  Accepted,
  InvocationInfo,
  InvocationRef,
  InvocationRequest,
  InvocationStatus,
  Outcome,
} from '../../store/invocation.js';
import type {
  InvocationCounts,
  KeyPage,
  KeyQueue,
  ListPage,
  ListQuery,
  PromiseInfo,
} from '../../store/listing.js';
import type { DeploymentRecords, Store } from '../../store/store.js';
import type { DeploymentInfo } from '../../push/deployments.js';
import type { EventFilter, EventWatch, StoreEvent } from '../../store/events.js';
import type { InvocationDetail, RestartOptions, RestartResult } from '../../store/detail.js';
import { MemoryStoreAttempt } from './attempt.js';
import { inspectRec, restartRec } from './detail.js';
import { Engine } from './engine.js';
import { countsOf, keysPage, listPage, promisesOf, queueOf } from './listing.js';
import { setStatus, type Rec } from './records.js';

/** A worker started on the in-memory store. */
interface MemoryWorker {
  executor: Executor;
  concurrency: number;
  /** Attempts running, and their runs. */
  running: Map<MemoryStoreAttempt, Promise<void>>;
  closed: boolean;
}

/** How long a lost attempt (its run ended without ending the invocation) waits to be retried. */
const LOST_RETRY_MS = 10;

/**
 * An in-memory {@link Store}: one process, nothing persisted. For tests of code that runs on a
 * store (handlers, ingresses, tools) without Redis; it passes the same `storeContract()` as the
 * Redis store. It keeps records until they are purged (no retention) and runs every invocation
 * on the workers started on it.
 */
export class MemoryStore implements Store {
  private readonly engine = new Engine();
  private readonly deploymentMap = new Map<string, DeploymentInfo>();
  /** The push deployments registered with this store's engine. */
  readonly deployments: DeploymentRecords = {
    list: () => Promise.resolve([...this.deploymentMap.values()]),
    put: (info) => {
      this.deploymentMap.set(info.id, info);
      return Promise.resolve();
    },
    remove: (id) => Promise.resolve(this.deploymentMap.delete(id)),
  };
  private readonly workers = new Set<MemoryWorker>();
  private pumping = false;

  constructor() {
    this.engine.onReady = () => this.schedule();
  }

  init(): Promise<void> {
    return Promise.resolve();
  }

  // ------------------------------------------------------------------ ingress side

  accept(
    req: InvocationRequest,
    options: { awaitOutcome?: StopSignal } = {},
  ): Promise<Accepted & { outcome?: Promise<Outcome> }> {
    const seed = this.engine.newSeed();
    const { fresh, ...accepted } = this.engine.accept(req, this.engine.newId(), seed);
    const result: Accepted & { outcome?: Promise<Outcome> } = accepted;
    if (fresh) result.cancelToken = cancelToken(seed);
    if (options.awaitOutcome) {
      result.outcome = this.awaitOutcome(accepted.invocationId, options.awaitOutcome);
    }
    return Promise.resolve(result);
  }

  awaitOutcome(invocationId: string, signal?: StopSignal): Promise<Outcome> {
    const rec = this.engine.recs.get(invocationId);
    if (rec?.outcome) return Promise.resolve(rec.outcome);
    const waiters = this.engine.waiters;
    const promise = new Promise<Outcome>((resolve, reject) => {
      let set = waiters.get(invocationId);
      if (!set) waiters.set(invocationId, (set = new Set()));
      const s = set;
      const onAbort = (): void => {
        s.delete(done);
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      const done = (o: Outcome): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(o);
      };
      s.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    promise.catch(() => undefined);
    return promise;
  }

  describe(invocationId: string, withJournal = false): Promise<InvocationInfo | undefined> {
    const rec = this.engine.recs.get(invocationId);
    return Promise.resolve(rec ? info(rec, withJournal) : undefined);
  }

  lookup(ref: InvocationRef): Promise<string | undefined> {
    const name =
      'workflow' in ref
        ? `wf\u0000${ref.workflow}\u0000${ref.key}`
        : ['idem', ref.service, ref.key ?? '', ref.handler, ref.idempotencyKey].join('\u0000');
    return Promise.resolve(this.engine.records.get(name));
  }

  watchEvents(filter: EventFilter, listener: (e: StoreEvent) => void): EventWatch {
    return this.engine.events.watch(filter, listener);
  }

  progress(
    invocationId: string,
    fromIndex: number,
  ): Promise<{ status: InvocationStatus; entries: Entry[] } | undefined> {
    const rec = this.engine.recs.get(invocationId);
    if (!rec) return Promise.resolve(undefined);
    return Promise.resolve({ status: rec.status, entries: copy(rec.journal.slice(fromIndex)) });
  }

  resolveAwakeable(
    awakeableId: string,
    completion: Completion,
  ): Promise<'ok' | 'refused' | 'full'> {
    const a = parseAwakeableId(awakeableId);
    if (!a) return Promise.resolve('refused');
    const r = this.engine.deliver(a.invocationId, a.index, completion, awakeableId);
    return Promise.resolve(r === 'ok' ? 'ok' : 'refused');
  }

  cancel(invocationId: string, options: { token?: string } = {}): Promise<boolean> {
    const rec = this.engine.recs.get(invocationId);
    if (options.token !== undefined && (!rec || cancelToken(rec.seed) !== options.token)) {
      return Promise.resolve(false);
    }
    return Promise.resolve(this.engine.terminate(invocationId, 'cancel'));
  }

  // ------------------------------------------------------------------ admin side

  list(query: ListQuery): Promise<ListPage> {
    try {
      return Promise.resolve(listPage(this.engine, query));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  counts(filter?: { service?: string }): Promise<InvocationCounts> {
    return Promise.resolve(countsOf(this.engine, filter));
  }

  listKeys(service: string, page?: { cursor?: string; limit?: number }): Promise<KeyPage> {
    try {
      return Promise.resolve(keysPage(this.engine, service, page));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  keyQueue(service: string, key: string, limit?: number): Promise<KeyQueue> {
    return Promise.resolve(queueOf(this.engine, service, key, limit));
  }

  promises(workflow: string, key: string): Promise<PromiseInfo[]> {
    return Promise.resolve(promisesOf(this.engine, workflow, key));
  }

  clearState(service: string, key: string): Promise<boolean> {
    const slot = this.engine.slot(service, key);
    const head = this.engine.recs.get(slot.inbox[0] ?? '');
    if (head?.started) return Promise.resolve(false);
    slot.state.clear();
    return Promise.resolve(true);
  }

  kill(invocationId: string): Promise<boolean> {
    return Promise.resolve(this.engine.terminate(invocationId, 'kill'));
  }

  pause(invocationId: string): Promise<boolean> {
    const rec = this.engine.recs.get(invocationId);
    const parked: InvocationStatus[] = ['completed', 'paused', 'queued', 'delayed'];
    if (!rec || parked.includes(rec.status)) return Promise.resolve(false);
    // A running attempt is fenced off; an exclusive invocation keeps its key.
    rec.epoch++;
    rec.stop?.();
    delete rec.stop;
    delete rec.listener;
    this.engine.clearTimer(rec);
    setStatus(rec, 'paused');
    return Promise.resolve(true);
  }

  resume(invocationId: string): Promise<boolean> {
    const rec = this.engine.recs.get(invocationId);
    if (rec?.status !== 'paused') return Promise.resolve(false);
    // A resumed invocation gets a fresh set of attempts.
    rec.failures = 0;
    this.engine.makeReady(rec);
    return Promise.resolve(true);
  }

  purge(invocationId: string): Promise<boolean> {
    const e = this.engine;
    const rec = e.recs.get(invocationId);
    if (rec?.status !== 'completed') return Promise.resolve(false);
    e.recs.delete(invocationId);
    for (const name of rec.records) {
      if (e.records.get(name) === invocationId) e.records.delete(name);
    }
    if (rec.mode === 'workflow') e.dropSlot(rec.target.service, rec.target.key ?? '');
    return Promise.resolve(true);
  }

  getState(service: string, key: string): Promise<Map<string, string>> {
    return Promise.resolve(new Map(this.engine.slot(service, key).state));
  }

  patchState(service: string, key: string, patch: Record<string, unknown>): Promise<boolean> {
    const slot = this.engine.slot(service, key);
    const head = this.engine.recs.get(slot.inbox[0] ?? '');
    if (head?.started) return Promise.resolve(false);
    for (const [name, v] of Object.entries(patch)) {
      if (v === null || v === undefined) slot.state.delete(name);
      else slot.state.set(name, JSON.stringify(v));
    }
    return Promise.resolve(true);
  }

  inspect(invocationId: string): Promise<InvocationDetail | undefined> {
    const rec = this.engine.recs.get(invocationId);
    return Promise.resolve(rec ? inspectRec(rec) : undefined);
  }

  restartAsNew(invocationId: string, options?: RestartOptions): Promise<RestartResult> {
    return Promise.resolve(restartRec(this.engine, invocationId, options));
  }

  // ------------------------------------------------------------------ worker side

  startWorker(executor: Executor, options: WorkerOptions = {}): Promise<WorkerHandle> {
    const w: MemoryWorker = {
      executor,
      concurrency: options.concurrency ?? 32,
      running: new Map(),
      closed: false,
    };
    this.workers.add(w);
    this.schedule();
    return Promise.resolve({ close: (timeoutMs?: number) => this.closeWorker(w, timeoutMs) });
  }

  private schedule(): void {
    if (this.pumping) return;
    this.pumping = true;
    setImmediate(() => {
      this.pumping = false;
      this.pump();
    });
  }

  /** Hands ready invocations to workers with free slots. */
  private pump(): void {
    for (const w of this.workers) {
      while (!w.closed && w.running.size < w.concurrency) {
        const rec = this.engine.takeReady();
        if (!rec) return;
        this.run(w, rec);
      }
    }
  }

  private run(w: MemoryWorker, rec: Rec): void {
    const attempt = new MemoryStoreAttempt(this.engine, rec);
    const ended = (): void => {
      w.running.delete(attempt);
      // A run that ended without ending its attempt lost it (as a crashed worker would).
      if (attempt.current && rec.status === 'running') this.lose(rec);
      this.schedule();
    };
    w.running.set(attempt, w.executor.run(attempt).then(ended, ended));
  }

  /** An attempt lost with its worker: counted, and dispatched again. */
  private lose(rec: Rec): void {
    rec.epoch++;
    rec.stop?.();
    delete rec.stop;
    delete rec.listener;
    rec.failures++;
    setStatus(rec, 'backing-off');
    this.engine.wakeLater(rec, LOST_RETRY_MS, 'backing-off');
  }

  private async closeWorker(w: MemoryWorker, timeoutMs = 10_000): Promise<void> {
    if (w.closed) return;
    w.closed = true;
    w.executor.hurry();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    await Promise.race([Promise.all(w.running.values()), late]);
    clearTimeout(timer);
    // Attempts still running are lost with the worker: dispatched again for another one.
    for (const a of w.running.keys()) {
      const rec = this.engine.recs.get(a.invocation.id);
      if (rec && a.current && rec.status === 'running') this.lose(rec);
    }
    this.workers.delete(w);
  }

  close(): Promise<void> {
    for (const w of this.workers) w.closed = true;
    this.engine.close();
    return Promise.resolve();
  }
}

function copy<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** What describe/list report (never the input, headers or seed). */
function info(rec: Rec, withJournal: boolean): InvocationInfo {
  const i: InvocationInfo = {
    id: rec.id,
    target: { ...rec.target },
    mode: rec.mode,
    status: rec.status,
    attempts: rec.failures,
    createdAt: rec.createdAt,
  };
  if (rec.lastFailure) i.lastFailure = rec.lastFailure;
  if (rec.outcome) i.outcome = rec.outcome;
  if (withJournal) i.journal = copy(rec.journal);
  return i;
}

/** Creates an in-memory {@link Store} (see {@link MemoryStore}). */
export function createMemoryStore(): MemoryStore {
  return new MemoryStore();
}
