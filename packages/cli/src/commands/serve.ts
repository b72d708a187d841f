/**
 * `latchkey serve <module>`: runs the services a module exports (its default export or its
 * `services` export) with the ingress and the admin API, on the Redis of `REDIS_URL` (or the
 * cluster of `REDIS_CLUSTER_NODES`) or on a private redis-server started for the purpose and
 * stopped on exit (SIGINT and SIGTERM included).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { serve, type AnyDefinition, type LatchkeyServer } from '@latchkey/core';
import { startLocalRedis, type LocalRedis } from '@latchkey/redis-store/testing';
import { CliError, ExitCode } from '../exit.js';
import { wholeNumber, type Program } from '../program.js';

const KINDS = new Set(['service', 'object', 'workflow']);

function isDefinition(v: unknown): v is AnyDefinition {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as Partial<AnyDefinition>;
  return (
    typeof d.name === 'string' &&
    typeof d.kind === 'string' &&
    KINDS.has(d.kind) &&
    typeof d.handlers === 'object' &&
    d.handlers !== null
  );
}

/**
 * The definitions a module exports: its default export, else its `services` export; an array of
 * definitions (a single definition is taken as an array of one). Exit 1 with a message otherwise.
 */
export function definitionsOf(mod: Record<string, unknown>, file: string): AnyDefinition[] {
  const exported = mod['default'] ?? mod['services'];
  const list = isDefinition(exported) ? [exported] : exported;
  if (!Array.isArray(list) || list.length === 0 || !list.every(isDefinition)) {
    throw new CliError(
      ExitCode.FAILURE,
      `${file} must export an array of service(), object() or workflow() definitions, as its default export or as \`services\``,
    );
  }
  return list;
}

async function load(file: string): Promise<AnyDefinition[]> {
  const url = pathToFileURL(resolve(process.cwd(), file)).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    throw new CliError(ExitCode.FAILURE, `cannot load ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return definitionsOf(mod, file);
}

/** A Redis URL fit to print: its password hidden. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((done) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      done(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

interface ServeCliOptions {
  port: number;
  adminPort: number;
  adminToken?: string;
  host?: string;
  deployment: string[];
}

/** Adds `serve`. */
export function registerServe(program: Command, p: Program): void {
  program
    .command('serve <module>')
    .description(
      'serve the services a module exports (default export or `services`: an array of definitions), with the admin API; starts a private redis-server when neither REDIS_URL nor REDIS_CLUSTER_NODES is set',
    )
    .option(
      '--port <port>',
      'ingress port (HTTP and WebSocket; 0 = any free port)',
      wholeNumber(0),
      8080,
    )
    .option('--admin-port <port>', 'admin API port (0 = any free port)', wholeNumber(0), 9070)
    .option(
      '--admin-token <token>',
      'bearer token the admin API requires (env LATCHKEY_ADMIN_TOKEN)',
    )
    .option('--host <address>', 'address the ingress listens on (default 127.0.0.1)')
    .option(
      '--deployment <uri>',
      'a push deployment to register at start (repeatable; see `latchkey deployments`)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .action(async (file: string, o: ServeCliOptions) => {
      const io = p.io;
      const services = await load(file);
      // Signals from here on stop what was started, in order.
      const stopped = untilSignal();
      let redis: LocalRedis | undefined;
      let redisUrl = io.env['REDIS_URL'] || undefined;
      const clusterNodes = io.env['REDIS_CLUSTER_NODES'] || undefined;
      if (!redisUrl && !clusterNodes) {
        redis = await startLocalRedis();
        redisUrl = redis.url;
      }
      let server: LatchkeyServer;
      try {
        server = await serve({
          services,
          redis: redisUrl ?? { cluster: clusterNodes!.split(',').map((s) => s.trim()) },
          port: o.port,
          ...(o.host !== undefined ? { host: o.host } : {}),
          ...(o.deployment.length > 0 ? { deployments: o.deployment } : {}),
          admin: {
            port: o.adminPort,
            ...(o.adminToken !== undefined ? { token: o.adminToken } : {}),
          },
          handleSignals: false,
        });
      } catch (e) {
        await redis?.stop();
        throw new CliError(ExitCode.FAILURE, `cannot serve ${file}: ${(e as Error).message}`, {
          cause: e,
        });
      }
      const names = services.map((s) => `${s.name} (${s.kind})`).join(', ');
      io.stdout.write(
        `latchkey: serving ${names} from ${file}\n` +
          `  ingress  ${server.url}\n` +
          `  admin    ${server.adminUrl ?? '(none)'}\n` +
          `  redis    ${redisUrl ? redactUrl(redisUrl) : `cluster ${clusterNodes}`}${redis ? ' (a private redis-server, stopped on exit)' : ''}\n`,
      );
      const sig = await stopped;
      io.stderr.write(`latchkey: ${sig}, stopping\n`);
      await server.close();
      await redis?.stop();
    });
}
