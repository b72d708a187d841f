/** `latchkey services …`: the services a server runs, their handlers and schemas. */
import type { Command } from 'commander';
import type { ServiceInfo } from '@latchkey/core';
import { seg } from '../api.js';
import { formatService, formatServiceList } from '../format/services.js';
import { outputOption, type Program } from '../program.js';

/** Adds `services` and its commands. */
export function registerServices(program: Command, p: Program): void {
  const services = program
    .command('services')
    .alias('svc')
    .description('services, objects and workflows served');

  services
    .command('ls')
    .alias('list')
    .description('every service, object and workflow')
    .addOption(outputOption())
    .action(async (_o: unknown, cmd: Command) => {
      const c = p.context(cmd);
      const r = await c.api.get<{ services: ServiceInfo[] }>('/services');
      c.show(r, (v) => formatServiceList(v.services, c.style));
    });

  services
    .command('describe <name>')
    .alias('get')
    .description(
      'handlers, their kinds, options and input/output schemas (-o json for whole schemas)',
    )
    .addOption(outputOption())
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const c = p.context(cmd);
      const s = await c.api.get<ServiceInfo>(`/services/${seg(name)}`);
      c.show(s, (v) => formatService(v, c.style));
    });
}
