/**
 * `@latchkey/client`: a client of Latchkey's WebSocket ingress for Node.js
 * (over the `ws` package) and browsers (over the native `WebSocket`).
 *
 * @example
 * ```ts
 * import { connect } from '@latchkey/client';
 * import type { signup } from './services.js';
 *
 * const client = connect('ws://localhost:8080/ws');
 * await client.workflowSubmit<typeof signup>({ name: 'signup' }, 'user-42', 'ada@example.com');
 * for await (const ev of client.subscribe({ workflow: 'signup', key: 'user-42' })) console.log(ev);
 * await client.close();
 * ```
 *
 * @packageDocumentation
 */
export { connect } from './client.js';
export type { LatchkeyClient } from './types.js';
export { CallError } from './errors.js';
export type {
  AnyObject,
  AnyService,
  AnyWorkflow,
  CallOptions,
  ConnectOptions,
  ConnectionState,
  DefinitionRef,
  GenericRequest,
  HandlerClient,
  HandlerInput,
  HandlerOutput,
  HandlerSendClient,
  InvocationTarget,
  Output,
  ProgressEvent,
  ReconnectOptions,
  RequestOptions,
  SendOptions,
  SendResult,
  SubmitArgs,
  SubmitOptions,
  Subscription,
  UntypedClient,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';
