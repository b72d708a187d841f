/**
 * `latchkey deployments …` (the built binary, as a child process) against `latchkey serve
 * test/fixtures/cli-services.mjs` (another child process with its own private redis-server and an
 * admin token), the function a third process (test/fixtures/deployment.mjs):
 * - `add` discovers and registers it (a table; `-o json` the API's answer), after which the served
 *   engine runs its handlers; `ls` and `describe` show it; `rm` removes it (its services are 404
 *   afterwards), and again exits 3;
 * - an unreachable URI and a changed registration without `--force` exit 1 with the API's message;
 *   a malformed `--header` is a usage error (2).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '@latchkey/redis-store/testing';
import { newPrefix, post, spawnWorker, type WorkerProcess } from './helpers/harness.js';
import { json, runCli, startServe, type Served } from './helpers/cli.js';
import { onClusterPass } from './helpers/redis.js';

const redisTarget = inject('redisTarget');
const TOKEN = 'cli-deployments-token';

let served: Served;
let env: Record<string, string>;
const procs: WorkerProcess[] = [];

beforeAll(async () => {
  if (onClusterPass) return;
  served = await startServe('test/fixtures/cli-services.mjs', ['--admin-token', TOKEN]);
  env = { LATCHKEY_ADMIN_URL: served.adminUrl, LATCHKEY_ADMIN_TOKEN: TOKEN };
});
afterAll(async () => {
  await Promise.all(procs.map((w) => w.kill('SIGKILL')));
  await served?.stop();
});

async function fn(services: string, port: number): Promise<WorkerProcess> {
  const w = await spawnWorker(redisTarget, newPrefix(), {
    script: 'deployment.mjs',
    env: { LK_SERVICES: services, LK_PORT: String(port) },
  });
  procs.push(w);
  return w;
}

// Skipped on the cluster pass, as cli.redis.test.ts: `latchkey serve` starts its own redis-server.
describe.skipIf(onClusterPass)('latchkey deployments', () => {
  it('adds, lists, describes and removes a deployment whose handlers the engine then runs', async () => {
    const port = await freePort();
    await fn('push-services.mjs', port);
    const uri = `http://127.0.0.1:${port}`;
    const add = await runCli(['deployments', 'add', uri, '--header', 'x-api-key: k1'], env);
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/^dp_\S+\n/);
    expect(add.stdout).toMatch(/uri\s+http:\/\/127\.0\.0\.1/);
    expect(add.stdout).toMatch(/pushcounter\s+object\s+add, get/);
    const id = add.stdout.split('\n')[0]!;

    const r = await post(served.ingressUrl, '/pushcounter/c/add', 4);
    expect(r).toMatchObject({ status: 200, body: 4 });

    const ls = await runCli(['dp', 'ls', '-o', 'json'], env);
    expect(ls.code).toBe(0);
    expect(json<{ deployments: { id: string; headers: string[] }[] }>(ls).deployments).toEqual([
      expect.objectContaining({ id, uri, headers: ['x-api-key'] }),
    ]);
    const table = await runCli(['deployments', 'ls'], env);
    expect(table.stdout).toMatch(/^ID\s+URI\s+SERVICES\n/);
    expect(table.stdout).toContain(id);
    const one = await runCli(['deployments', 'describe', id], env);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/pushflow\s+workflow\s+run, stage/);

    const rm = await runCli(['deployments', 'rm', id], env);
    expect(rm).toMatchObject({ code: 0, stdout: `removed ${id}\n` });
    expect((await post(served.ingressUrl, '/pushcounter/c/add', 1)).status).toBe(404);
    const again = await runCli(['deployments', 'rm', id], env);
    expect(again.code).toBe(3);
  });

  it('exits 1 with the reason when the endpoint cannot be registered, 2 on a bad option', async () => {
    const dead = await runCli(['deployments', 'add', `http://127.0.0.1:${await freePort()}`], env);
    expect(dead.code).toBe(1);
    expect(dead.stderr).toMatch(/is unreachable: .*ECONNREFUSED/);

    const port = await freePort();
    const first = await fn('push-local.mjs', port);
    const uri = `http://127.0.0.1:${port}`;
    // cli-services.mjs does not serve localgreeter: this registers.
    expect((await runCli(['deployments', 'add', uri], env)).code).toBe(0);
    await first.kill('SIGKILL');
    await fn('push-local.mjs,push-services.mjs', port);
    const changed = await runCli(['deployments', 'add', uri], env);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toContain('force');
    const forced = await runCli(['deployments', 'add', uri, '--force', '-o', 'json'], env);
    expect(forced.code).toBe(0);
    expect(json<{ services: { name: string }[] }>(forced).services.map((s) => s.name)).toContain(
      'pushflow',
    );

    const usage = await runCli(['deployments', 'add', uri, '--header', 'no-colon'], env);
    expect(usage.code).toBe(2);
  });
});
