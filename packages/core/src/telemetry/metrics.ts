/**
 * Prometheus metrics of one process (docs/METRICS.md), through `prom-client` on a registry of its
 * own (several servers may run in one process). Labels are bounded: service, handler and small
 * fixed sets (outcome, result, status, script, queue state); never an invocation id or a key.
 *
 * Hot path: counters and histograms are `metrics-series.ts`' (an observation is a lookup in nested
 * maps and an increment); prom-client formats them, with its gauges, at scrape time.
 */
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AdminStore } from '../store.js';
import { INVOCATION_STATUSES } from '../store/listing.js';
import type { QueueDepth, StoreObserver } from '../store/store.js';
import { FastCounter, FastHistogram } from './metrics-series.js';

/**
 * Metrics of a process (`serve`'s `metrics`): `false` for none; `true` or options: a registry to
 * add them to (default: one of their own), `defaultMetrics` (process CPU, memory, event loop lag:
 * prom-client's defaults, on unless false).
 */
export type MetricsOption = boolean | { registry?: Registry; defaultMetrics?: boolean };

/** How an attempt ended, as the attempt metrics label it. */
export type AttemptOutcome =
  'completed' | 'suspended' | 'retry' | 'paused' | 'lease-lost' | 'eager-refused';

/** How an invocation ended, as `latchkey_invocations_ended_total` labels it. */
export type EndKind = 'completed' | 'failed' | 'killed';

/** Seconds: attempts and invocations run from a millisecond to hours. */
const DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600,
];
/** Seconds: a Lua script takes tens of microseconds to milliseconds. */
const SCRIPT_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

/** Where the scrape-time gauges read (see {@link Metrics.readFrom}). */
interface Sources {
  store?: AdminStore;
  depths?: () => Promise<QueueDepth[]>;
}

/** The metrics of one process, and its `/metrics` text. */
export class Metrics implements StoreObserver {
  readonly registry: Registry;
  private readonly acceptedC: FastCounter;
  private readonly endedC: FastCounter;
  private readonly retriesC: FastCounter;
  private readonly attemptH: FastHistogram;
  private readonly invocationH: FastHistogram;
  private readonly queueWaitH: FastHistogram;
  private readonly scriptH: FastHistogram;
  private readonly redispatchedC: FastCounter;
  private readonly lagH: FastHistogram;
  private readonly wsConnections: Gauge;
  private readonly wsSubscriptions: Gauge;
  private readonly ingressRequests: FastCounter;
  private sources: Sources = {};

  private constructor(registry: Registry, defaults: boolean) {
    this.registry = registry;
    const r = [registry];
    const byTarget = ['service', 'handler'];
    const counter = (name: string, help: string, labels: string[]): FastCounter =>
      new FastCounter(registry, name, help, labels);
    const histogram = (name: string, help: string, labels: string[], buckets: number[]) =>
      new FastHistogram(registry, name, help, labels, buckets);
    this.acceptedC = counter(
      'latchkey_invocations_accepted_total',
      'Invocations accepted: from clients (ingresses, admin invoke) and from handlers (calls and sends, counted when journaled).',
      byTarget,
    );
    this.endedC = counter(
      'latchkey_invocations_ended_total',
      'Invocations ended, by how: completed (a result), failed (a terminal error, also after retries ran out or a cancellation), killed (by an operator).',
      [...byTarget, 'result'],
    );
    this.retriesC = counter(
      'latchkey_retries_total',
      'Attempts that failed with a retryable error and were scheduled again.',
      byTarget,
    );
    this.attemptH = histogram(
      'latchkey_attempt_duration_seconds',
      'Duration of attempts (lease to end), by how each ended.',
      [...byTarget, 'outcome'],
      DURATION_BUCKETS,
    );
    this.invocationH = histogram(
      'latchkey_invocation_duration_seconds',
      'Accept to completion, by result (success or failure).',
      [...byTarget, 'result'],
      DURATION_BUCKETS,
    );
    this.queueWaitH = histogram(
      'latchkey_queue_wait_seconds',
      'Ready to running: from when an invocation became ready (accepted, woken, due after a backoff) to its attempt starting.',
      byTarget,
      DURATION_BUCKETS,
    );
    this.scriptH = histogram(
      'latchkey_redis_script_duration_seconds',
      'Round trip of each Latchkey Lua script call, as the process sees it.',
      ['script'],
      SCRIPT_BUCKETS,
    );
    this.redispatchedC = counter(
      'latchkey_reconciler_redispatched_total',
      'Work the reconciler handed out again: overdue invocations (dispatch), outcomes still owed (deliver), outbox effects (outbox).',
      ['kind'],
    );
    this.lagH = histogram(
      'latchkey_reconciler_lag_seconds',
      'Per partition sweep that found overdue work: how far past its deadline the most overdue invocation was.',
      [],
      DURATION_BUCKETS,
    );
    this.ingressRequests = counter(
      'latchkey_ingress_requests_total',
      'Requests to start an invocation through an ingress (http, ws, admin invoke) that the store answered: accepted (a new invocation) or duplicate (an earlier one matched its idempotency key or workflow id).',
      ['transport', 'answer'],
    );
    this.wsConnections = new Gauge({
      name: 'latchkey_ws_connections',
      help: 'Open WebSocket ingress connections.',
      registers: r,
    });
    this.wsSubscriptions = new Gauge({
      name: 'latchkey_ws_subscriptions',
      help: 'Live WebSocket subscriptions to invocations.',
      registers: r,
    });
    const sources = (): Sources => this.sources;
    new Gauge({
      name: 'latchkey_invocations',
      help: 'Invocations in the store by status, from its indexes at scrape time (every process reports the whole store).',
      labelNames: ['status'],
      registers: r,
      async collect() {
        const store = sources().store;
        if (!store) return;
        const counts = await store.counts();
        for (const s of INVOCATION_STATUSES) this.set({ status: s }, counts.byStatus[s] ?? 0);
      },
    });
    new Gauge({
      name: 'latchkey_queue_jobs',
      help: 'Jobs in the mailbox queues by state, at scrape time (BullMQ getJobCounts; every process reports them all).',
      labelNames: ['queue', 'state'],
      registers: r,
      async collect() {
        const depths = sources().depths;
        if (!depths) return;
        for (const q of await depths()) {
          for (const [state, n] of Object.entries(q.counts)) this.set({ queue: q.queue, state }, n);
        }
      },
    });
    if (defaults) collectDefaultMetrics({ register: registry });
  }

  /** The metrics a process runs with: none for `false`; `admin` says whether an admin API runs. */
  static of(option: MetricsOption | undefined, admin: boolean): Metrics | undefined {
    if (option === false || (option === undefined && !admin)) return undefined;
    const o = typeof option === 'object' ? option : {};
    return new Metrics(o.registry ?? new Registry(), o.defaultMetrics !== false);
  }

  /** Where the scrape-time gauges read: the store's indexes and its mailbox queues. */
  readFrom(store: AdminStore, depths?: () => Promise<QueueDepth[]>): void {
    this.sources = { store, ...(depths ? { depths } : {}) };
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  accepted(service: string, handler: string): void {
    this.acceptedC.inc(service, handler);
  }

  /** A request to start an invocation, through `transport`, and how it was answered. */
  request(transport: 'http' | 'ws' | 'admin', answer: 'accepted' | 'duplicate'): void {
    this.ingressRequests.inc(transport, answer);
  }

  ended(service: string, handler: string, how: EndKind): void {
    this.endedC.inc(service, handler, how);
  }

  retried(service: string, handler: string): void {
    this.retriesC.inc(service, handler);
  }

  attempt(service: string, handler: string, outcome: AttemptOutcome, seconds: number): void {
    this.attemptH.observe(seconds, service, handler, outcome);
  }

  invocation(service: string, handler: string, ok: boolean, seconds: number): void {
    this.invocationH.observe(seconds, service, handler, ok ? 'success' : 'failure');
  }

  queueWait(service: string, handler: string, seconds: number): void {
    this.queueWaitH.observe(seconds, service, handler);
  }

  wsConnection(delta: 1 | -1): void {
    this.wsConnections.inc(delta);
  }

  wsSubscription(delta: 1 | -1): void {
    this.wsSubscriptions.inc(delta);
  }

  script(name: string, seconds: number): void {
    this.scriptH.observe(seconds, name);
  }

  swept(
    lagMs: number | undefined,
    counts: { dispatch: number; deliver: number; outbox: number },
  ): void {
    if (lagMs !== undefined && lagMs >= 0) this.lagH.observe(lagMs / 1000);
    if (counts.dispatch) this.redispatchedC.add('dispatch', counts.dispatch);
    if (counts.deliver) this.redispatchedC.add('deliver', counts.deliver);
    if (counts.outbox) this.redispatchedC.add('outbox', counts.outbox);
  }
}
