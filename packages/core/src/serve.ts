import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { AnyDefinition } from './define/definitions.js';
import { durationMs, type Duration } from './define/duration.js';
import { createAdmin, isLoopback } from './ingress/admin.js';
import { eventStreamOptions, type EventStreamOptions } from './ingress/admin-events.js';
import { ingressRules, type IngressRules } from './ingress/input.js';
import { createIngress } from './ingress/http.js';
import { attachWebSocket, type WebSocketOptions } from './ingress/ws.js';
import { createExecutor } from './runtime/invoker.js';
import type { DeploymentOptions } from './push/deployments.js';
import { Deployments } from './push/engine.js';
import { pushExecutor } from './push/push-executor.js';
import { Registry } from './runtime/registry.js';
import { Metrics, type MetricsOption } from './telemetry/metrics.js';
import { Tracing, type TracingOption } from './telemetry/tracing.js';
import type { Store, WorkerHandle } from './store.js';

/**
 * Options of {@link serve}. The public ingress's limits (`maxBodyBytes`, `bodyTimeout`,
 * `maxBufferedBodyBytes`, `maxConnections`, `maxDelay`, `maxJsonDepth`, `redactHeaders`, and the
 * WebSocket's in `webSocket`) each have a default; docs/SECURITY.md says what each one guards.
 */
export interface ServeOptions extends IngressRules {
  /** The services, objects and workflows to serve (run by this process's workers). */
  services?: AnyDefinition[];
  /**
   * Push deployments (handlers on serverless functions or any HTTP endpoint serving
   * `createEndpointHandler`): each is discovered at start and its services served here, their
   * handlers run by the deployment (docs/PROTOCOL.md). The admin API's `POST /deployments` adds
   * more while the process runs.
   */
  deployments?: (string | DeploymentOptions)[];
  /**
   * Ed25519 private key (PEM or base64 PKCS#8) requests to deployments are signed with; default
   * `LATCHKEY_SIGNING_KEY`, else unsigned. A deployment given the public key (`identityKeys`)
   * serves only signed requests.
   */
  signingKey?: string;
  /**
   * How often this process reads the deployments registered by any process of the engine (ms);
   * default 5,000 (a lookup of a service it does not know reads them at once, at most once a
   * second). 0: only then.
   */
  deploymentRefreshMs?: number;
  /**
   * Where the data lives: a Redis URL, or `{ cluster: ['host:port', …] }` (a Redis Cluster's seed
   * nodes; docs/SCALING.md). Defaults to `REDIS_URL`, else `REDIS_CLUSTER_NODES`. Ignored when
   * `store` is given.
   */
  redis?: string | { url: string } | { cluster: string[] };
  /** Options passed to `createRedisStore` (prefix, partitions, lease timings, hooks…). */
  storeOptions?: Record<string, unknown>;
  /** A store to use instead of Redis (e.g. one already created). */
  store?: Store;
  /** Ingress port (HTTP); default 8080. `0` picks a free port; `false` runs no ingress. */
  port?: number | false;
  /**
   * The address the ingress listens on; default `127.0.0.1` (this machine only). Set `0.0.0.0` (or
   * `LATCHKEY_HOST`) to serve clients on other machines.
   */
  host?: string;
  /** Run workers in this process; default true. */
  workers?: boolean;
  /** Invocations run at once per mailbox shard; default 32. */
  concurrency?: number;
  /** Overrides every handler's inactivity timeout; `LATCHKEY_INACTIVITY_TIMEOUT` (ms) does too. 0 = always suspend. */
  inactivityTimeout?: Duration;
  /** Close gracefully on SIGTERM/SIGINT; default true. */
  handleSignals?: boolean;
  /** Largest request body (bytes); larger ones get 413 `BODY_TOO_LARGE`. Default 10 MiB. */
  maxBodyBytes?: number;
  /** Time a request body may take to arrive; later, 408 `BODY_TIMEOUT`. Default 30 s. */
  bodyTimeout?: Duration;
  /**
   * Bytes all unfinished request bodies together may hold; beyond, 503 `BODY_BUFFER_FULL`.
   * Default 128 MiB.
   */
  maxBufferedBodyBytes?: number;
  /** Connections (HTTP and WebSocket) the ingress holds at once; more are closed at once. Default 10,000. */
  maxConnections?: number;
  /** WebSocket ingress options (path, allowed origins, frame size, per-socket caps, heartbeat); it shares the ingress port. */
  webSocket?: WebSocketOptions;
  /**
   * Runs the admin API on its own port (`0` = a free port); off unless given. Its host defaults to
   * `127.0.0.1`; on any other address it needs a token (`token` or `LATCHKEY_ADMIN_TOKEN`), else
   * `serve()` refuses to start. The limits of its live event streams (`GET /events`) are
   * {@link EventStreamOptions}. `previewBytes`: how much of a JSON value the admin views show
   * before cutting it (default 1,024).
   */
  admin?: {
    port: number;
    host?: string;
    token?: string;
    /** Bytes of JSON a value shows in the admin views before it is cut (default 1,024). */
    previewBytes?: number;
    /** Default and largest `limit` of a bulk action (default 1,000). */
    maxBulk?: number;
    /** Serve the web UI at `/ui` on the admin port; default true. */
    ui?: boolean;
  } & EventStreamOptions;
  logger?: Console;
  /**
   * OpenTelemetry tracing (docs/TRACING.md). Default: spans go to the tracer provider the
   * application registered globally (none registered: the API's no-op, nearly free), as
   * `trace.getTracer('latchkey')`; `{ tracer }` uses that tracer instead; `false` turns every
   * tracing call off. A client's `traceparent`/`tracestate` is honoured either way the spans go.
   */
  tracing?: TracingOption;
  /**
   * Prometheus metrics (docs/METRICS.md), served at `GET /metrics` on the admin port. Default: on
   * when the admin API runs; `false`: none; `{ registry }` adds them to a `prom-client` registry
   * of the application's (to serve with its own); `defaultMetrics: false` leaves out
   * prom-client's process metrics (CPU, memory, event loop).
   */
  metrics?: MetricsOption;
}

/** What {@link serve} returns. */
export interface LatchkeyServer {
  /** The ingress port (0 when no ingress runs). */
  readonly port: number;
  /** The ingress base URL. */
  readonly url: string;
  /** The admin API base URL, when it runs. */
  readonly adminUrl: string | undefined;
  readonly store: Store;
  /** Stops the ingress, drains the workers (attempts waiting on timers suspend), closes the store. */
  close(): Promise<void>;
}

async function loadRedisStore(opts: ServeOptions): Promise<Store> {
  // Loaded at run time so that @latchkey/core does not depend on @latchkey/redis-store.
  const specifier = '@latchkey/redis-store';
  let mod: { createRedisStore(o: Record<string, unknown>): Store };
  try {
    mod = (await import(specifier)) as typeof mod;
  } catch (e) {
    throw new Error(
      `serve() needs @latchkey/redis-store when no store is passed: npm install @latchkey/redis-store`,
      { cause: e },
    );
  }
  return mod.createRedisStore({
    ...(typeof opts.redis === 'string' ? { url: opts.redis } : opts.redis),
    ...opts.storeOptions,
  });
}

/**
 * Serves services, objects and workflows: runs workers and the ingress in
 * this process (Restate's `restate.serve`).
 *
 * @example
 * ```ts
 * await serve({ services: [greeter, counter], port: 8080 });
 * ```
 */
export async function serve(opts: ServeOptions): Promise<LatchkeyServer> {
  const registry = new Registry(opts.services ?? []);
  const signingKey = opts.signingKey ?? process.env['LATCHKEY_SIGNING_KEY'];

  const rules = ingressRules(opts);
  const adminToken = opts.admin
    ? (opts.admin.token ?? process.env['LATCHKEY_ADMIN_TOKEN'])
    : undefined;
  const adminHost = opts.admin?.host ?? '127.0.0.1';
  if (opts.admin && !adminToken && !isLoopback(adminHost)) {
    throw new Error(
      `the admin API may listen on ${adminHost} only with a token: set admin.token or LATCHKEY_ADMIN_TOKEN`,
    );
  }
  const store = opts.store ?? (await loadRedisStore(opts));
  await store.init();
  const logger = opts.logger ?? console;
  const deployments = new Deployments(registry, {
    ...(signingKey ? { signingKey } : {}),
    records: store.deployments,
    logger,
  });
  await deployments.refresh();
  // The deployments given here are registered (again) at every start: this code declares them.
  for (const d of opts.deployments ?? []) {
    await deployments.register(typeof d === 'string' ? { uri: d } : d, true);
  }
  deployments.start(opts.deploymentRefreshMs ?? 5000);
  const tracing = Tracing.of(opts.tracing);
  const metrics = Metrics.of(opts.metrics, opts.admin !== undefined);
  if (metrics) {
    store.observe?.(metrics);
    metrics.readFrom(store, store.queueDepths?.bind(store));
  }
  const telemetry = { tracing, metrics };
  const envTimeout = process.env['LATCHKEY_INACTIVITY_TIMEOUT'];
  const inactivityTimeoutMs =
    opts.inactivityTimeout !== undefined
      ? durationMs(opts.inactivityTimeout)
      : envTimeout !== undefined && envTimeout !== ''
        ? Number(envTimeout)
        : undefined;
  let worker: WorkerHandle | undefined;
  if (opts.workers !== false) {
    const local = createExecutor(registry, {
      ...(inactivityTimeoutMs !== undefined ? { inactivityTimeoutMs } : {}),
      logger,
      tracing,
      metrics,
    });
    const executor = pushExecutor(local, registry, deployments, { tracing, metrics });
    worker = await store.startWorker(executor, {
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
    });
  }
  let server: Server | undefined;
  let wsIngress: { close(): Promise<void> } | undefined;
  let port = 0;
  if (opts.port !== false) {
    const s = createIngress(registry, store, {
      logger,
      rules,
      telemetry,
      ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
      ...(opts.bodyTimeout !== undefined ? { bodyTimeoutMs: durationMs(opts.bodyTimeout) } : {}),
      ...(opts.maxBufferedBodyBytes !== undefined
        ? { maxBufferedBodyBytes: opts.maxBufferedBodyBytes }
        : {}),
    });
    s.maxConnections = opts.maxConnections ?? 10_000;
    server = s;
    wsIngress = attachWebSocket(
      s,
      registry,
      store,
      { logger, ...opts.webSocket },
      rules,
      telemetry,
    );
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(
        opts.port === undefined ? 8080 : (opts.port as number),
        opts.host ?? process.env['LATCHKEY_HOST'] ?? '127.0.0.1',
        () => resolve(),
      );
    });
    port = (s.address() as AddressInfo).port;
  }
  let admin: Server | undefined;
  let adminUrl: string | undefined;
  if (opts.admin) {
    const a = createAdmin(store, registry, {
      ...eventStreamOptions(opts.admin),
      logger,
      maxJsonDepth: rules.maxJsonDepth,
      ...(adminToken ? { token: adminToken } : {}),
      ...(opts.admin.previewBytes !== undefined ? { previewBytes: opts.admin.previewBytes } : {}),
      ...(opts.admin.maxBulk !== undefined ? { maxBulk: opts.admin.maxBulk } : {}),
      ...(opts.admin.ui === false ? { ui: false } : {}),
      invoke: { store, rules, telemetry },
      deployments,
      ...(metrics ? { metrics } : {}),
    });
    admin = a;
    await new Promise<void>((resolve, reject) => {
      a.once('error', reject);
      a.listen(opts.admin!.port, adminHost, () => resolve());
    });
    adminUrl = `http://127.0.0.1:${(a.address() as AddressInfo).port}`;
  }
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      if (admin) {
        const a = admin;
        const closed = new Promise<void>((r) => a.close(() => r()));
        a.closeAllConnections();
        await closed;
      }
      await wsIngress?.close();
      if (server) {
        const s = server;
        const closed = new Promise<void>((r) => s.close(() => r()));
        s.closeAllConnections();
        await closed;
      }
      deployments.stop();
      await worker?.close();
      await store.close();
    })());
  const onSignal = (): void => {
    void close().then(() => process.exit(0));
  };
  if (opts.handleSignals !== false) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  return { port, url: `http://127.0.0.1:${port}`, adminUrl, store, close };
}
