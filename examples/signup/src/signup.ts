/**
 * The `user-signup` workflow, keyed by user id, written as Restate's documentation writes it
 * (the import line is the only difference):
 *
 *   1. a durable step creates the user;
 *   2. a secret is drawn with `ctx.rand.uuidv4()` — deterministic: a retry or a
 *      replay draws the same one, so the link in the email stays valid; and secret:
 *      `ctx.rand` is seeded from a random seed the engine keeps to itself, so nobody
 *      who learns the run's invocation id can compute it;
 *   3. a durable step sends the verification email;
 *   4. the workflow awaits the durable promise `link-clicked`, which the shared `click`
 *      handler resolves with the secret of the link that was followed — minutes or days
 *      later, across restarts; meanwhile it holds no memory;
 *   5. it returns whether that secret is the one it sent (and activates the user if so).
 *
 * The shared `status` handler answers at any time, during and after the run.
 */
import { workflow, type WorkflowContext, type WorkflowSharedContext } from '@latchkey/core';

/** Where users live and how mail goes out (a database and an email API in real life). */
export interface SignupDeps {
  createUser(user: { id: string; email: string; name: string }): Promise<void>;
  activateUser(id: string): Promise<void>;
  sendEmail(mail: { to: string; subject: string; link: string }): Promise<void>;
}

export interface SignupRequest {
  email: string;
  name: string;
}

export function userSignup(deps: SignupDeps) {
  return workflow({
    name: 'user-signup',
    handlers: {
      run: async (ctx: WorkflowContext, req: SignupRequest) => {
        const userId = ctx.key;
        const secret = ctx.rand.uuidv4();
        ctx.set('status', 'creating user');
        await ctx.run('create user', () =>
          deps.createUser({ id: userId, email: req.email, name: req.name }),
        );

        ctx.set('status', 'sending email');
        const link = `https://example.com/verify?user=${encodeURIComponent(userId)}&secret=${secret}`;
        await ctx.run('send email', () =>
          deps.sendEmail({ to: req.email, subject: 'Confirm your email', link }),
        );

        ctx.set('status', 'waiting for click');
        const clicked = await ctx.promise<string>('link-clicked');
        const verified = clicked === secret;
        if (verified) await ctx.run('activate user', () => deps.activateUser(userId));
        ctx.set('status', verified ? 'verified' : 'wrong secret');
        return { userId, email: req.email, verified };
      },

      /** The verification link lands here with its secret; a second click fails with 409. */
      click: async (ctx: WorkflowSharedContext, request: { secret: string }) => {
        await ctx.promise<string>('link-clicked').resolve(request.secret);
      },

      status: async (ctx: WorkflowSharedContext) => (await ctx.get<string>('status')) ?? 'unknown',
    },
  });
}

/** The workflow's type, for typed clients (`workflowClient<SignupWorkflow>(...)`). */
export type SignupWorkflow = ReturnType<typeof userSignup>;
