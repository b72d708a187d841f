import type { Duration } from './duration.js';
import type { Serde } from './serde.js';

const CALL_OPTS = Symbol.for('latchkey.rpc.opts');
const SEND_OPTS = Symbol.for('latchkey.rpc.sendOpts');

/** Options of a request-response call from a handler. */
export interface CallOptions {
  /** Dedupes the call per (service, key, handler) for the target's idempotency retention. */
  idempotencyKey?: string;
  /** Headers passed to the target (`ctx.request().headers`). */
  headers?: Record<string, string>;
  /** How the input is encoded; default: the target's input serde when this process serves it, else JSON. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any serde fits, whatever its type
  input?: Serde<any>;
  /** How the result is decoded; default: the target's output serde when this process serves it, else JSON. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any serde fits, whatever its type
  output?: Serde<any>;
}

/** Options of a one-way send from a handler. */
export interface SendOptions extends CallOptions {
  /** Delivers the message after this delay (a durable timer). */
  delay?: Duration;
}

/** Branded call options (what {@link rpc.opts} returns). */
export interface Opts {
  readonly [CALL_OPTS]: true;
  readonly options: CallOptions;
}
/** Branded send options (what {@link rpc.sendOpts} returns). */
export interface SendOpts {
  readonly [SEND_OPTS]: true;
  readonly options: SendOptions;
}

/** Options for calls and sends between handlers, as Restate's `rpc`. */
export const rpc = {
  /** Options of a call: `ctx.serviceClient(svc).h(input, rpc.opts({ idempotencyKey }))`. */
  opts(options: CallOptions): Opts {
    return { [CALL_OPTS]: true, options };
  },
  /** Options of a send: `ctx.objectSendClient(obj, key).h(input, rpc.sendOpts({ delay: 1000 }))`. */
  sendOpts(options: SendOptions): SendOpts {
    return { [SEND_OPTS]: true, options };
  },
};

/** Extracts call/send options from a trailing argument, if it is one. */
export function optionsOf(arg: unknown): SendOptions | undefined {
  if (typeof arg !== 'object' || arg === null) return undefined;
  if (CALL_OPTS in arg || SEND_OPTS in arg) return (arg as Opts | SendOpts).options;
  return undefined;
}
