/** `latchkey deployments …`: push deployments (handlers on serverless functions) of an engine. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { DeploymentInfo } from '@latchkey/core';
import { seg } from '../api.js';
import { formatDeployment, formatDeploymentList } from '../format/deployments.js';
import { outputOption, type Program } from '../program.js';

/** A deployment as the admin API shows it (header names only). */
export type ShownDeployment = Omit<DeploymentInfo, 'headers'> & { headers?: string[] };

function header(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const i = value.indexOf(':');
  if (i <= 0) throw new InvalidArgumentError('a header is name:value');
  return { ...previous, [value.slice(0, i).trim()]: value.slice(i + 1).trim() };
}

function millis(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('a whole number of ms');
  return n;
}

/** Adds `deployments` and its commands. */
export function registerDeployments(program: Command, p: Program): void {
  const deployments = program
    .command('deployments')
    .alias('dp')
    .description('push deployments: handlers on serverless functions or any HTTP endpoint');

  deployments
    .command('add <uri>')
    .alias('register')
    .description('discover the endpoint at <uri> and serve its services (Restate: dp register)')
    .option('--force', 'replace a registration whose handlers changed')
    .addOption(
      new Option(
        '--header <name:value>',
        'a header sent with every request (repeatable)',
      ).argParser(header),
    )
    .addOption(new Option('--timeout <ms>', 'how long one request may take').argParser(millis))
    .addOption(outputOption())
    .action(
      async (
        uri: string,
        o: { force?: boolean; header?: Record<string, string>; timeout?: number },
        cmd: Command,
      ) => {
        const c = p.context(cmd);
        const body = {
          uri,
          ...(o.force ? { force: true } : {}),
          ...(o.header ? { headers: o.header } : {}),
          ...(o.timeout !== undefined ? { timeoutMs: o.timeout } : {}),
        };
        const d = await c.api.request<ShownDeployment>('POST', '/deployments', undefined, body);
        c.show(d, (v) => formatDeployment(v, c.style));
      },
    );

  deployments
    .command('ls')
    .alias('list')
    .description('every registered deployment')
    .addOption(outputOption())
    .action(async (_o: unknown, cmd: Command) => {
      const c = p.context(cmd);
      const r = await c.api.get<{ deployments: ShownDeployment[] }>('/deployments');
      c.show(r, (v) => formatDeploymentList(v.deployments, c.style));
    });

  deployments
    .command('describe <id>')
    .alias('get')
    .description('a deployment: its URI and the services it serves')
    .addOption(outputOption())
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const c = p.context(cmd);
      const d = await c.api.get<ShownDeployment>(`/deployments/${seg(id)}`);
      c.show(d, (v) => formatDeployment(v, c.style));
    });

  deployments
    .command('rm <id>')
    .alias('remove')
    .description(
      'stop serving a deployment (its services are unknown afterwards); refused while invocations of them have not ended',
    )
    .option('--force', 'remove it anyway: its unfinished invocations then fail with 404')
    .addOption(outputOption())
    .action(async (id: string, o: { force?: boolean }, cmd: Command) => {
      const c = p.context(cmd);
      const query = o.force ? { force: 'true' } : undefined;
      const r = await c.api.request<{ id: string }>('DELETE', `/deployments/${seg(id)}`, query);
      c.show(r, (v) => `removed ${v.id}\n`);
    });
}
