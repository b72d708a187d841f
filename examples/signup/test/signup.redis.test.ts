/**
 * The signup workflow end to end, every part its own process, as a Restate user runs it: the
 * server (`endpoint().bind(...).listen(9080)`, ingress on LATCHKEY_PORT), a submitter and a
 * latching process using Restate's official client (`workflowSubmit`, `workflowAttach`). The run
 * waits for the click — the latched process keeps waiting, the output is not ready — and returns
 * whether the clicked secret is the one emailed; submitting the same user id again answers
 * PreviouslyAccepted with the same invocation id.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { describe, inject, it } from 'vitest';
import { freePort } from '@latchkey/redis-store/testing';
import { deletePrefix, get, newPrefix, post, until } from '../../../test/helpers/harness.js';
import { redisEnv } from '../../../test/helpers/redis.js';

const redisTarget = inject('redisTarget');
const dist = (f: string): string => fileURLToPath(new URL(`../dist/${f}`, import.meta.url));

/** A node program of this example, run as its own process. */
function program(file: string, args: string[], env: Record<string, string>) {
  const proc = spawn(process.execPath, [dist(file), ...args], {
    env: redisEnv(redisTarget, { ...process.env, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    proc.once('close', (code) => resolve({ code, out: out.trim(), err: err.trim() })),
  );
  let done = false;
  void exited.then(() => (done = true));
  return {
    proc,
    exited,
    output: () => out,
    running: () => !done,
    kill: (sig: NodeJS.Signals = 'SIGKILL') => void (done || proc.kill(sig)),
  };
}

describe('signup workflow, the Restate way (endpoint, await ctx.promise, the official client)', () => {
  it('waits for the click, returns whether the secret matched; a resubmission is PreviouslyAccepted', async ({
    onTestFinished,
    expect,
  }) => {
    const prefix = newPrefix();
    const dir = await mkdtemp(join(tmpdir(), 'signup-'));
    const port = await freePort();
    const ingress = `http://127.0.0.1:${port}`;
    const procs: Array<ReturnType<typeof program>> = [];
    const run = (file: string, args: string[], env: Record<string, string> = {}) => {
      const p = program(file, args, { INGRESS_URL: ingress, ...env });
      procs.push(p);
      return p;
    };
    const server = run('server.js', [], {
      LATCHKEY_PORT: String(port),
      LATCHKEY_PREFIX: prefix,
      SIGNUP_DIR: dir,
    });
    onTestFinished(async () => {
      server.kill('SIGTERM');
      await server.exited;
      procs.forEach((p) => p.kill());
      await deletePrefix(redisTarget, prefix);
      await rm(dir, { recursive: true, force: true });
    });
    await until('the server to listen', async () => (await fetch(`${ingress}/health`)).ok, 60_000);
    // Its stdout may reach the pipe a moment after the port answers.
    await until('the server to say where its ingress is', async () =>
      server.output().includes(`ingress on http://127.0.0.1:${port}`),
    );

    const signup = async (
      userId: string,
      secretOf: (emailed: string) => string,
    ): Promise<{ invocationId: string }> => {
      // 1. The submitter process (workflowSubmit).
      const submitted = await run('submit.js', [userId, `${userId}@example.com`, 'Ada']).exited;
      expect(submitted.code, submitted.err).toBe(0);
      const first = JSON.parse(submitted.out) as { invocationId: string; status: string };
      expect(first).toEqual({ invocationId: expect.stringMatching(/^inv_/), status: 'Accepted' });

      // 2. Another process latches on (workflowAttach), knowing only the user id.
      const latched = run('latch.js', [userId]);
      const status = (): Promise<unknown> =>
        post(ingress, `/user-signup/${userId}/status`).then((r) => r.body);
      await until(
        'the workflow to wait for the click',
        async () => (await status()) === 'waiting for click',
      );

      // 3. The email went out; the run waits: the latched process too, and the output is not ready.
      const mail = JSON.parse(await readFile(join(dir, 'outbox', `${userId}.json`), 'utf8')) as {
        to: string;
        link: string;
      };
      expect(mail.to).toBe(`${userId}@example.com`);
      const emailed = new URL(mail.link).searchParams.get('secret')!;
      expect(emailed).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      expect((await get(ingress, `/restate/workflow/user-signup/${userId}/output`)).status).toBe(
        470,
      );
      expect(latched.running()).toBe(true);

      // 4. The click: the run returns whether the secret is the one emailed.
      const secret = secretOf(emailed);
      expect(await post(ingress, `/user-signup/${userId}/click`, { secret })).toMatchObject({
        status: 200,
      });
      const result = await latched.exited;
      expect(result.code, result.err).toBe(0);
      const verified = secret === emailed;
      expect(JSON.parse(result.out)).toEqual({ userId, email: `${userId}@example.com`, verified });
      expect(await status()).toBe(verified ? 'verified' : 'wrong secret');
      const user = JSON.parse(await readFile(join(dir, 'users', `${userId}.json`), 'utf8')) as {
        active: boolean;
      };
      expect(user.active).toBe(verified);
      // A second click conflicts: the promise is resolved once.
      expect(
        (await post(ingress, `/user-signup/${userId}/click`, { secret: emailed })).status,
      ).toBe(409);
      return first;
    };

    const ada = `ada-${randomUUID().slice(0, 8)}`;
    const first = await signup(ada, (emailed) => emailed);
    await signup(`bob-${randomUUID().slice(0, 8)}`, () => 'not-the-secret');

    // 5. Submitting again: the same invocation, PreviouslyAccepted; the output is the first result.
    const again = await run('submit.js', [ada, `${ada}@example.com`, 'Ada']).exited;
    expect(again.code, again.err).toBe(0);
    expect(JSON.parse(again.out)).toEqual({
      invocationId: first.invocationId,
      status: 'PreviouslyAccepted',
    });
    const output = await get(ingress, `/restate/workflow/user-signup/${ada}/output`);
    expect(output).toEqual({
      status: 200,
      body: { userId: ada, email: `${ada}@example.com`, verified: true },
    });
  });
});
