/**
 * The benchmark's services on Latchkey: the shared handler source
 * (`bench-services.ts`) given `@latchkey/core`'s factories.
 */
import { object, service, workflow, type AnyDefinition } from '@latchkey/core';
import { defineBenchServices } from './bench-services.js';

export const services: AnyDefinition[] = defineBenchServices<AnyDefinition>({ service, object, workflow });
