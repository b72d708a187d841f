/**
 * The tracing example's services: the quickstart's greeter and an `order` workflow with three
 * durable steps. The handlers know nothing about tracing, except the second step, which calls a
 * function that opens a span of its own (as an instrumented HTTP or database client would): it
 * nests under the step's `run` span because Latchkey runs each `ctx.run` closure with that span
 * active.
 */
import { z } from 'zod';
import { trace } from '@opentelemetry/api';
import { handlers, service, workflow, type Context, type WorkflowContext } from '@latchkey/core';

export const greeter = service({
  name: 'greeter',
  handlers: {
    greet: handlers.handler(
      { input: z.object({ name: z.string().min(1) }) },
      async (ctx: Context, req: { name: string }) =>
        ctx.run('compose', () => `Hello, ${req.name}!`),
    ),
  },
});

/** The user span's name, and the attribute naming its order (the summary finds it by this). */
export const CHARGE_SPAN = 'payments.charge';
export const ORDER_ATTRIBUTE = 'example.order.id';

// The global tracer, looked up when a span starts (a provider registered later is still used).
const tracer = trace.getTracer('example');

/** Stands in for a payment provider's SDK: opens a span of its own around the "request". */
function chargeCard(orderId: string, cents: number): Promise<string> {
  return tracer.startActiveSpan(
    CHARGE_SPAN,
    { attributes: { [ORDER_ATTRIBUTE]: orderId, 'example.amount.cents': cents } },
    async (span) => {
      try {
        await Promise.resolve(); // the provider's HTTP round trip would be here
        return `receipt-${orderId}`;
      } finally {
        span.end();
      }
    },
  );
}

export const order = workflow({
  name: 'order',
  handlers: {
    run: async (ctx: WorkflowContext, req: { item: string; cents: number }) => {
      const reservation = await ctx.run('reserve stock', () => `${req.item}@shelf-7`);
      const receipt = await ctx.run('charge card', () => chargeCard(ctx.key, req.cents));
      const parcel = await ctx.run('ship', () => `parcel-${ctx.key}`);
      return { reservation, receipt, parcel };
    },
  },
});
