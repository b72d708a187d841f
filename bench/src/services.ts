/**
 * The benchmark's services on Latchkey: the shared handler source
 * (`bench-services.ts`) given `@latchkey/core`'s factories, plus `memory`,
 * the Latchkey-only service of the `--memory` run (short retention, so that
 * completed invocations expire during the run).
 */
import {
  handlers,
  object,
  service,
  workflow,
  type AnyDefinition,
  type Context,
} from '@latchkey/core';
import { defineBenchServices } from './bench-services.js';

/** Journal and idempotency retention of the `memory` service's handlers (ms). */
export const MEMORY_RETENTION_MS = 1000;

const retention = {
  journalRetention: MEMORY_RETENTION_MS,
  idempotencyRetention: MEMORY_RETENTION_MS,
};

/** `--memory`: a no-op handler and a one-step handler (returns 1), both with 1 s retention. */
const memory = service({
  name: 'memory',
  handlers: {
    noop: handlers.handler(retention, async (_ctx: Context): Promise<void> => {}),
    step: handlers.handler(retention, async (ctx: Context): Promise<number> =>
      ctx.run('one', () => 1),
    ),
  },
});

export const services: AnyDefinition[] = [
  ...defineBenchServices<AnyDefinition>({ service, object, workflow }),
  memory,
];
