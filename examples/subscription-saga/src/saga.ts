/**
 * The subscription saga: a workflow that creates a recurring payment and one
 * subscription per product, and undoes all of it if any step fails for good.
 *
 * - Each step's compensation is registered *before* the step runs: if the step
 *   fails halfway (or its worker dies after the provider acted), the undo still
 *   runs. Compensations must therefore tolerate "nothing to undo".
 * - On a `TerminalError` the compensations run in reverse order, each as its own
 *   durable step: a worker that dies in the middle of the rollback is replaced,
 *   and the new one resumes the rollback where the journal says it stopped.
 * - Errors that are not terminal are not compensated: Latchkey retries them.
 */
import {
  isTerminalError,
  workflow,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';

/** The billing provider (idempotent by the ids we choose). */
export interface Billing {
  createRecurringPayment(req: {
    paymentId: string;
    userId: string;
    creditCard: string;
  }): Promise<void>;
  removeRecurringPayment(paymentId: string): Promise<void>;
  /** Throws a `TerminalError` when the product cannot be subscribed to. */
  createSubscription(req: {
    subscriptionId: string;
    userId: string;
    product: string;
  }): Promise<void>;
  removeSubscription(subscriptionId: string): Promise<void>;
}

export interface SubscriptionRequest {
  creditCard: string;
  products: string[];
}

export type SagaStatus = 'creating' | 'active' | 'rolling_back' | 'rolled_back';

export function subscriptionSaga(billing: Billing) {
  return workflow({
    name: 'subscription',
    handlers: {
      run: async (ctx: WorkflowContext, req: SubscriptionRequest) => {
        const userId = ctx.key;
        const compensations: Array<{ step: string; undo: () => Promise<void> }> = [];
        ctx.set<SagaStatus>('status', 'creating');
        try {
          const paymentId = `pay-${userId}`;
          compensations.push({
            step: 'remove recurring payment',
            undo: () => billing.removeRecurringPayment(paymentId),
          });
          await ctx.run('create recurring payment', () =>
            billing.createRecurringPayment({ paymentId, userId, creditCard: req.creditCard }),
          );

          const subscriptions: string[] = [];
          for (const product of req.products) {
            const subscriptionId = `sub-${userId}-${product}`;
            compensations.push({
              step: `remove subscription ${product}`,
              undo: () => billing.removeSubscription(subscriptionId),
            });
            await ctx.run(`subscribe ${product}`, () =>
              billing.createSubscription({ subscriptionId, userId, product }),
            );
            subscriptions.push(subscriptionId);
          }
          ctx.set<SagaStatus>('status', 'active');
          return { paymentId, subscriptions };
        } catch (e) {
          if (!isTerminalError(e)) throw e; // retried by Latchkey, not compensated
          ctx.set<SagaStatus>('status', 'rolling_back');
          for (const { step, undo } of compensations.reverse()) await ctx.run(step, undo);
          ctx.set<SagaStatus>('status', 'rolled_back');
          throw e; // the workflow's result is the original failure
        }
      },

      /** Answers during and after the run. */
      getStatus: async (ctx: WorkflowSharedContext) => ctx.get<SagaStatus>('status'),
    },
  });
}
