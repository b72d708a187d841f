/**
 * The subscription saga of examples/subscription-saga, as the code of a push deployment (a
 * serverless function): a workflow that creates a recurring payment and one subscription per
 * product, and undoes all of it if any step fails for good.
 *
 * - Each step's compensation is registered *before* the step runs: if the step fails halfway
 *   (or its function dies after the provider acted), the undo still runs. Compensations must
 *   therefore tolerate "nothing to undo".
 * - On a `TerminalError` the compensations run in reverse order, each a durable step of its own:
 *   a rollback interrupted anywhere resumes where the journal says it stopped.
 * - Errors that are not terminal are not compensated: Latchkey retries them.
 *
 * A function keeps nothing between requests, so the billing provider here is a virtual object
 * of the same deployment, `billing` (one account per user, kept by the engine): each step is a
 * durable call to it. Its `account` handler shows what is live and every change in order, which
 * is how the demo and the test see the rollback. Against a real provider (an HTTP API), each
 * step would be a `ctx.run` around the API call, as in examples/subscription-saga.
 */
import {
  TerminalError,
  handlers,
  isTerminalError,
  object,
  workflow,
  type ObjectContext,
  type ObjectSharedContext,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '@latchkey/core';

/** What the billing provider holds for one user. */
export interface Account {
  /** Ids of the live payments and subscriptions. */
  live: string[];
  /** Every call that changed something or found nothing to change, in order. */
  log: string[];
}

async function account(ctx: ObjectSharedContext): Promise<Account> {
  return {
    live: (await ctx.get<string[]>('live')) ?? [],
    log: (await ctx.get<string[]>('log')) ?? [],
  };
}

async function create(ctx: ObjectContext, id: string): Promise<void> {
  const { live, log } = await account(ctx);
  if (live.includes(id)) return; // a repeated request: idempotent by the id we chose
  ctx.set('live', [...live, id]);
  ctx.set('log', [...log, `created ${id}`]);
}

async function remove(ctx: ObjectContext, id: string): Promise<void> {
  const { live, log } = await account(ctx);
  if (!live.includes(id)) {
    ctx.set('log', [...log, `nothing to remove: ${id}`]);
    return;
  }
  ctx.set(
    'live',
    live.filter((l) => l !== id),
  );
  ctx.set('log', [...log, `removed ${id}`]);
}

/** The billing provider: one account per user (the object's key). */
export const billing = object({
  name: 'billing',
  handlers: {
    createRecurringPayment: async (ctx: ObjectContext, req: { paymentId: string; card: string }) =>
      create(ctx, req.paymentId),
    removeRecurringPayment: async (ctx: ObjectContext, paymentId: string) => remove(ctx, paymentId),
    /** Fails with a `TerminalError` (409) for the product `sold-out`. */
    createSubscription: async (
      ctx: ObjectContext,
      req: { subscriptionId: string; product: string },
    ) => {
      if (req.product === 'sold-out')
        throw new TerminalError(`${req.product} is not available`, { errorCode: 409 });
      await create(ctx, req.subscriptionId);
    },
    removeSubscription: async (ctx: ObjectContext, subscriptionId: string) =>
      remove(ctx, subscriptionId),
    /** The account: live resources and the log of changes. */
    account: handlers.object.shared(account),
  },
});

export interface SubscriptionRequest {
  creditCard: string;
  products: string[];
}

export type SagaStatus = 'creating' | 'active' | 'rolling_back' | 'rolled_back';

export const subscription = workflow({
  name: 'subscription',
  handlers: {
    run: async (ctx: WorkflowContext, req: SubscriptionRequest) => {
      const userId = ctx.key;
      const provider = ctx.objectClient(billing, userId);
      const compensations: Array<() => PromiseLike<void>> = [];
      ctx.set<SagaStatus>('status', 'creating');
      try {
        const paymentId = `pay-${userId}`;
        compensations.push(() => provider.removeRecurringPayment(paymentId));
        await provider.createRecurringPayment({ paymentId, card: req.creditCard });

        const subscriptions: string[] = [];
        for (const product of req.products) {
          const subscriptionId = `sub-${userId}-${product}`;
          compensations.push(() => provider.removeSubscription(subscriptionId));
          await provider.createSubscription({ subscriptionId, product });
          subscriptions.push(subscriptionId);
        }
        ctx.set<SagaStatus>('status', 'active');
        return { paymentId, subscriptions };
      } catch (e) {
        if (!isTerminalError(e)) throw e; // retried by Latchkey, not compensated
        ctx.set<SagaStatus>('status', 'rolling_back');
        for (const undo of compensations.reverse()) await undo();
        ctx.set<SagaStatus>('status', 'rolled_back');
        throw e; // the workflow's result is the original failure
      }
    },

    /** Answers during and after the run. */
    getStatus: async (ctx: WorkflowSharedContext) => ctx.get<SagaStatus>('status'),
  },
});

/** Everything the deployment serves. */
export const services = [subscription, billing];
