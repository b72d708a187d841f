/**
 * The signup workflow end to end: a submitter process submits it, a second,
 * separate process latches on to its result and waits while the workflow waits
 * for the link to be clicked; the email carries the workflow's deterministic
 * secret; a wrong secret is refused; the right click completes the workflow and
 * the latched process prints its result; submitting the same user id again
 * answers PreviouslyAccepted with the same invocation id.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { describe, inject, it } from 'vitest';
import { fileDeps } from '../src/file-deps.js';
import { userSignup } from '../src/signup.js';
import { deletePrefix, get, newPrefix, post, startServer, until } from '../../../test/helpers/harness.js';

const redisUrl = inject('redisUrl');
const dist = (f: string): string => fileURLToPath(new URL(`../dist/${f}`, import.meta.url));

/** A node program of this example, run as its own process. */
function program(file: string, args: string[], ingress: string) {
  const proc = spawn(process.execPath, [dist(file), ...args], { env: { ...process.env, INGRESS_URL: ingress }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    proc.once('exit', (code) => resolve({ code, out: out.trim(), err: err.trim() })),
  );
  let done = false;
  void exited.then(() => (done = true));
  return { proc, exited, running: () => !done, kill: () => void (done || proc.kill('SIGKILL')) };
}

describe('signup workflow (latch on)', () => {
  it('submits once, latches on from another process, completes on the right click', async ({ onTestFinished, expect }) => {
    const prefix = newPrefix();
    const dir = await mkdtemp(join(tmpdir(), 'signup-'));
    const server = await startServer(redisUrl, prefix, [userSignup(fileDeps(dir))]);
    const procs: Array<{ kill(): void }> = [];
    onTestFinished(async () => {
      procs.forEach((p) => p.kill());
      await server.close();
      await deletePrefix(redisUrl, prefix);
      await rm(dir, { recursive: true, force: true });
    });
    const userId = `user-${randomUUID().slice(0, 8)}`;
    const run = (file: string, ...args: string[]) => {
      const p = program(file, args, server.url);
      procs.push(p);
      return p;
    };

    // 1. The submitter process.
    const submitted = await run('submit.js', userId, `${userId}@example.com`, 'Ada').exited;
    expect(submitted.code, submitted.err).toBe(0);
    const first = JSON.parse(submitted.out) as { invocationId: string; status: string };
    expect(first).toEqual({ invocationId: expect.stringMatching(/^inv_/), status: 'Accepted' });

    // 2. Another process latches on, knowing only the user id.
    const latched = run('latch.js', userId);
    const status = (): Promise<unknown> => post(server.url, `/user-signup/${userId}/status`).then((r) => r.body);
    await until('the workflow to wait for the click', async () => (await status()) === 'waiting for click');
    expect(latched.running()).toBe(true);

    // 3. The email went out with the workflow's secret (the one kept in its state).
    const mail = JSON.parse(await readFile(join(dir, 'outbox', `${userId}.json`), 'utf8')) as { to: string; link: string };
    expect(mail.to).toBe(`${userId}@example.com`);
    const secret = new URL(mail.link).searchParams.get('secret')!;
    expect(secret).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect((await server.store.getState('user-signup', userId)).get('secret')).toBe(JSON.stringify(secret));
    const user = JSON.parse(await readFile(join(dir, 'users', `${userId}.json`), 'utf8')) as { active: boolean };
    expect(user.active).toBe(false);

    // 4. A wrong secret is refused and changes nothing.
    expect((await post(server.url, `/user-signup/${userId}/click`, 'not-the-secret')).status).toBe(403);
    expect(await status()).toBe('waiting for click');
    expect(latched.running()).toBe(true);

    // 5. The right click: the workflow completes and the latched process gets its result.
    const click = await post(server.url, `/user-signup/${userId}/click`, secret);
    expect(click).toMatchObject({ status: 200, body: 'verified' });
    const result = await latched.exited;
    expect(result.code, result.err).toBe(0);
    expect(JSON.parse(result.out)).toEqual({ userId, email: `${userId}@example.com`, verified: true });
    expect(await status()).toBe('verified');
    const activated = JSON.parse(await readFile(join(dir, 'users', `${userId}.json`), 'utf8')) as { active: boolean };
    expect(activated.active).toBe(true);

    // 6. Submitting again: the same invocation, PreviouslyAccepted; a second click conflicts.
    const again = await run('submit.js', userId, `${userId}@example.com`, 'Ada').exited;
    expect(again.code, again.err).toBe(0);
    expect(JSON.parse(again.out)).toEqual({ invocationId: first.invocationId, status: 'PreviouslyAccepted' });
    expect((await post(server.url, `/user-signup/${userId}/click`, secret)).status).toBe(409);
    const output = await get(server.url, `/restate/workflow/user-signup/${userId}/output`);
    expect(output).toEqual({ status: 200, body: { userId, email: `${userId}@example.com`, verified: true } });
  });
});
