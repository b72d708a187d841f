import type { AnyDefinition } from './define/definitions.js';
import { createEndpointHandler, type LambdaEvent, type LambdaResult } from './lambda.js';
import { serve, type LatchkeyServer, type ServeOptions } from './serve.js';

/**
 * Restate's endpoint builder, the usual last line of a Restate program:
 * `endpoint().bind(greeter).bind(counter).listen(9080)`.
 *
 * On Restate, `listen(port)` opens the *deployment endpoint* that the Restate server pushes
 * invocations to, and clients call the server's ingress on port 8080. On Latchkey the bound
 * services run in this process (its workers) and the ingress is served by this process too: on
 * port 8080 — where Restate's ingress listens, so clients written for Restate reach the services
 * unchanged — or `LATCHKEY_PORT`, or the `port` of `endpoint(options)`. The argument of `listen`
 * names the endpoint port only; nothing listens on it. Redis comes from `REDIS_URL` (or the
 * `redis` option), as for {@link serve}.
 *
 * @example
 * ```ts
 * import * as restate from '@latchkey/core';
 * restate.endpoint().bind(signupWorkflow).listen(9080); // the ingress answers on :8080
 * ```
 */
export interface Endpoint {
  /** Adds a service, virtual object or workflow. */
  bind(definition: AnyDefinition): Endpoint;
  /**
   * Serves the bound services (workers and ingress in this process); resolves with the ingress's
   * port. `port` is the deployment endpoint's port on Restate, unused here (see {@link Endpoint}).
   */
  listen(port?: number): Promise<number>;
  /**
   * Restate's serverless entry point: the bound services as an AWS Lambda handler (a push
   * deployment, as `createEndpointHandler` of `@latchkey/core/lambda`; docs/PROTOCOL.md).
   */
  handler(): (event: LambdaEvent, context?: unknown) => Promise<LambdaResult>;
  /** The running server once `listen` resolved (to close it, or to read its URLs). */
  readonly server: LatchkeyServer | undefined;
}

/**
 * Creates an {@link Endpoint}. `options` are {@link serve}'s, without `services` (bind them); the
 * ingress port defaults to `LATCHKEY_PORT`, else 8080.
 */
export function endpoint(options: Omit<ServeOptions, 'services'> = {}): Endpoint {
  const services: AnyDefinition[] = [];
  let running: LatchkeyServer | undefined;
  const self: Endpoint = {
    bind(definition) {
      services.push(definition);
      return self;
    },
    async listen() {
      if (running) throw new Error('this endpoint is listening already');
      const envPort = process.env['LATCHKEY_PORT'];
      const port =
        options.port ?? (envPort !== undefined && envPort !== '' ? Number(envPort) : 8080);
      running = await serve({ ...options, services, port });
      return running.port;
    },
    handler() {
      return createEndpointHandler({ services: [...services] });
    },
    get server() {
      return running;
    },
  };
  return self;
}
