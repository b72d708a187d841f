/**
 * Submits a signup with Restate's official client, `@restatedev/restate-sdk-clients`, exactly as
 * against a Restate server. Safe to run again: the workflow runs once per user id, and a repeated
 * submission answers `PreviouslyAccepted` with the same invocation id.
 *
 *   node examples/signup/dist/submit.js <userId> <email> [name]
 *   (INGRESS_URL defaults to http://127.0.0.1:8080)
 */
import * as clients from '@restatedev/restate-sdk-clients';
import type { SignupRequest } from './signup.js';

const [userId, email, name = 'New user'] = process.argv.slice(2);
if (!userId || !email) {
  console.error('usage: submit.js <userId> <email> [name]');
  process.exit(2);
}
const rs = clients.connect({ url: process.env['INGRESS_URL'] ?? 'http://127.0.0.1:8080' });
type Signup = {
  run(
    ctx: unknown,
    req: SignupRequest,
  ): Promise<{ userId: string; email: string; verified: boolean }>;
};
const submission = await rs
  .workflowClient<Signup>({ name: 'user-signup' }, userId)
  .workflowSubmit({ email, name });
// {"invocationId":"inv_…","status":"Accepted" | "PreviouslyAccepted"}
console.log(JSON.stringify({ invocationId: submission.invocationId, status: submission.status }));
