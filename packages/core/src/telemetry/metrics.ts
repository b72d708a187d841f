/**
 * Prometheus metrics of one process (docs/METRICS.md), through `prom-client` on a registry of its
 * own (several servers may run in one process). Labels are bounded: service, handler and small
 * fixed sets (outcome, result, status, script, queue state); never an invocation id or a key.
 *
 * Hot path: one label child per (service, handler[, outcome]) is looked up once and kept, so an
 * observation is a map lookup and an increment.
 */
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type CounterConfiguration,
} from 'prom-client';
import type { AdminStore } from '../store.js';
import { INVOCATION_STATUSES } from '../store/listing.js';
import type { QueueDepth, StoreObserver } from '../store/store.js';

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

interface Inc {
  inc(n?: number): void;
}
interface Obs {
  observe(v: number): void;
}

/** Label children kept by their label values joined with NUL (names never hold one). */
class Children<C> {
  private readonly map = new Map<string, C>();
  private readonly make: (values: string[]) => C;
  constructor(make: (values: string[]) => C) {
    this.make = make;
  }
  get(...values: string[]): C {
    const k = values.join('\u0000');
    let c = this.map.get(k);
    if (c === undefined) this.map.set(k, (c = this.make(values)));
    return c;
  }
}

/** Where the scrape-time gauges read (see {@link Metrics.readFrom}). */
interface Sources {
  store?: AdminStore;
  depths?: () => Promise<QueueDepth[]>;
}

/** The metrics of one process, and its `/metrics` text. */
export class Metrics implements StoreObserver {
  readonly registry: Registry;
  private readonly acceptedC: Children<Inc>;
  private readonly endedC: Children<Inc>;
  private readonly retriesC: Children<Inc>;
  private readonly attemptH: Children<Obs>;
  private readonly invocationH: Children<Obs>;
  private readonly queueWaitH: Children<Obs>;
  private readonly scriptH: Children<Obs>;
  private readonly redispatchedC: Children<Inc>;
  private readonly lagH: Histogram;
  private readonly wsConnections: Gauge;
  private readonly wsSubscriptions: Gauge;
  private readonly ingressRequests: Children<Inc>;
  private sources: Sources = {};

  private constructor(registry: Registry, defaults: boolean) {
    this.registry = registry;
    const r = [registry];
    const counter = (c: CounterConfiguration<string>): Counter =>
      new Counter({ ...c, registers: r });
    const byTarget = ['service', 'handler'];
    const accepted = counter({
      name: 'latchkey_invocations_accepted_total',
      help: 'Invocations accepted: from clients (ingresses, admin invoke) and from handlers (calls and sends, counted when journaled).',
      labelNames: byTarget,
    });
    this.acceptedC = new Children((v) => accepted.labels(...v));
    const ended = counter({
      name: 'latchkey_invocations_ended_total',
      help: 'Invocations ended, by how: completed (a result), failed (a terminal error, also after retries ran out or a cancellation), killed (by an operator).',
      labelNames: [...byTarget, 'result'],
    });
    this.endedC = new Children((v) => ended.labels(...v));
    const retries = counter({
      name: 'latchkey_retries_total',
      help: 'Attempts that failed with a retryable error and were scheduled again.',
      labelNames: byTarget,
    });
    this.retriesC = new Children((v) => retries.labels(...v));
    const histogram = (name: string, help: string, labelNames: string[], buckets: number[]) =>
      new Histogram({ name, help, labelNames, buckets, registers: r });
    const attempt = histogram(
      'latchkey_attempt_duration_seconds',
      'Duration of attempts (lease to end), by how each ended.',
      [...byTarget, 'outcome'],
      DURATION_BUCKETS,
    );
    this.attemptH = new Children((v) => attempt.labels(...v));
    const invocation = histogram(
      'latchkey_invocation_duration_seconds',
      'Accept to completion, by result (success or failure).',
      [...byTarget, 'result'],
      DURATION_BUCKETS,
    );
    this.invocationH = new Children((v) => invocation.labels(...v));
    const wait = histogram(
      'latchkey_queue_wait_seconds',
      'Ready to running: from when an invocation became ready (accepted, woken, due after a backoff) to its attempt starting.',
      byTarget,
      DURATION_BUCKETS,
    );
    this.queueWaitH = new Children((v) => wait.labels(...v));
    const script = histogram(
      'latchkey_redis_script_duration_seconds',
      'Round trip of each Latchkey Lua script call, as the process sees it.',
      ['script'],
      SCRIPT_BUCKETS,
    );
    this.scriptH = new Children((v) => script.labels(...v));
    const redispatched = counter({
      name: 'latchkey_reconciler_redispatched_total',
      help: 'Work the reconciler handed out again: overdue invocations (dispatch), outcomes still owed (deliver), outbox effects (outbox).',
      labelNames: ['kind'],
    });
    this.redispatchedC = new Children((v) => redispatched.labels(...v));
    this.lagH = histogram(
      'latchkey_reconciler_lag_seconds',
      'Per partition sweep that found overdue work: how far past its deadline the most overdue invocation was.',
      [],
      DURATION_BUCKETS,
    );
    const ingressRequests = counter({
      name: 'latchkey_ingress_requests_total',
      help: 'Requests to start an invocation through an ingress (http, ws, admin invoke) that the store answered: accepted (a new invocation) or duplicate (an earlier one matched its idempotency key or workflow id).',
      labelNames: ['transport', 'answer'],
    });
    this.ingressRequests = new Children((v) => ingressRequests.labels(...v));
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
    this.acceptedC.get(service, handler).inc();
  }

  /** A request to start an invocation, through `transport`, and how it was answered. */
  request(transport: 'http' | 'ws' | 'admin', answer: 'accepted' | 'duplicate'): void {
    this.ingressRequests.get(transport, answer).inc();
  }

  ended(service: string, handler: string, how: EndKind): void {
    this.endedC.get(service, handler, how).inc();
  }

  retried(service: string, handler: string): void {
    this.retriesC.get(service, handler).inc();
  }

  attempt(service: string, handler: string, outcome: AttemptOutcome, seconds: number): void {
    this.attemptH.get(service, handler, outcome).observe(seconds);
  }

  invocation(service: string, handler: string, ok: boolean, seconds: number): void {
    this.invocationH.get(service, handler, ok ? 'success' : 'failure').observe(seconds);
  }

  queueWait(service: string, handler: string, seconds: number): void {
    this.queueWaitH.get(service, handler).observe(seconds);
  }

  wsConnection(delta: 1 | -1): void {
    this.wsConnections.inc(delta);
  }

  wsSubscription(delta: 1 | -1): void {
    this.wsSubscriptions.inc(delta);
  }

  script(name: string, seconds: number): void {
    this.scriptH.get(name).observe(seconds);
  }

  swept(
    lagMs: number | undefined,
    counts: { dispatch: number; deliver: number; outbox: number },
  ): void {
    if (lagMs !== undefined && lagMs >= 0) this.lagH.observe(lagMs / 1000);
    if (counts.dispatch) this.redispatchedC.get('dispatch').inc(counts.dispatch);
    if (counts.deliver) this.redispatchedC.get('deliver').inc(counts.deliver);
    if (counts.outbox) this.redispatchedC.get('outbox').inc(counts.outbox);
  }
}
