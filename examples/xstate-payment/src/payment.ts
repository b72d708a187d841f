/**
 * A payment flow as an XState machine, run as a durable Latchkey virtual object
 * (one actor per payment id).
 *
 *   awaitingConfirmation --CONFIRM--> charging --(charge ok)--> paid
 *          |  \--CANCEL--> cancelled      |  \--(declined)--> failed
 *          \--after confirmTimeout--> expired  \--after chargeTimeout--> timedOut
 *
 * What makes it durable:
 * - the two `after` timeouts are durable timers: they fire even if every worker
 *   restarts in between, and never before they are due;
 * - the `charge` promise actor runs as a durable step: a worker that dies in the
 *   middle of it is replaced and the charge is retried, and its result comes
 *   back to the machine as the usual done/error event;
 * - events for one payment are applied one at a time, in the order they arrive.
 */
import { assign, setup } from 'xstate';
import { fromPromise, xstate, type ErrorJson, type PromiseArgs } from '@latchkey/xstate';

/** The payment provider (a real one would be Stripe, Adyen…). */
export interface PaymentGateway {
  /** Charges once per `idempotencyKey`, however often it is called. */
  charge(req: {
    orderId: string;
    amount: number;
    idempotencyKey: string;
  }): Promise<{ receiptId: string }>;
}

/** What `create` takes: `POST /payment/{id}/create {"input": {...}}`. */
export interface PaymentInput {
  orderId: string;
  amount: number;
  /** How long the customer has to confirm (default 15 min). */
  confirmWithinMs?: number;
  /** How long the charge may take before the payment times out (default 30 s). */
  chargeWithinMs?: number;
}

export interface PaymentContext {
  orderId: string;
  amount: number;
  confirmWithinMs: number;
  chargeWithinMs: number;
  receiptId: string | null;
  failure: string | null;
  /** Free-form notes (support comments…), in the order they were sent. */
  notes: string[];
}

export type PaymentEvent =
  { type: 'CONFIRM' } | { type: 'CANCEL' } | { type: 'NOTE'; text: string };

/** The machine, with the gateway it charges through. */
export function paymentMachine(gateway: PaymentGateway) {
  return setup({
    types: {
      input: {} as PaymentInput,
      context: {} as PaymentContext,
      events: {} as PaymentEvent,
    },
    actors: {
      // Runs as a durable step. `invocationId` is the same on every retry: the
      // gateway uses it to charge at most once.
      charge: fromPromise(
        async ({ input, invocationId }: PromiseArgs<{ orderId: string; amount: number }>) =>
          gateway.charge({ ...input, idempotencyKey: invocationId }),
      ),
    },
    delays: {
      confirmTimeout: ({ context }) => context.confirmWithinMs,
      chargeTimeout: ({ context }) => context.chargeWithinMs,
    },
  }).createMachine({
    id: 'payment',
    initial: 'awaitingConfirmation',
    context: ({ input }) => ({
      orderId: input.orderId,
      amount: input.amount,
      confirmWithinMs: input.confirmWithinMs ?? 15 * 60_000,
      chargeWithinMs: input.chargeWithinMs ?? 30_000,
      receiptId: null,
      failure: null,
      notes: [],
    }),
    // Notes are accepted in every state.
    on: {
      NOTE: { actions: assign({ notes: ({ context, event }) => [...context.notes, event.text] }) },
    },
    states: {
      awaitingConfirmation: {
        tags: ['open'],
        on: { CONFIRM: 'charging', CANCEL: 'cancelled' },
        after: { confirmTimeout: 'expired' },
      },
      charging: {
        tags: ['open', 'busy'],
        invoke: {
          src: 'charge',
          input: ({ context }) => ({ orderId: context.orderId, amount: context.amount }),
          onDone: {
            target: 'paid',
            actions: assign({ receiptId: ({ event }) => event.output.receiptId }),
          },
          // A TerminalError from the gateway (a declined card) arrives here as a JSON error.
          onError: {
            target: 'failed',
            actions: assign({ failure: ({ event }) => (event.error as ErrorJson).message }),
          },
        },
        // If the charge is still running when this fires, the machine moves on and
        // the late result is ignored (a real system would refund a late success).
        after: { chargeTimeout: 'timedOut' },
      },
      paid: { type: 'final' },
      failed: { type: 'final' },
      expired: { type: 'final' },
      timedOut: { type: 'final' },
      cancelled: { type: 'final' },
    },
  });
}

/**
 * The virtual object `payment`: `create`, `send`, `snapshot`, `waitFor`.
 * A finished payment's state is kept for a week, then cleared.
 */
export function paymentObject(gateway: PaymentGateway) {
  return xstate('payment', paymentMachine(gateway), { finalStateTTL: { days: 7 } });
}
