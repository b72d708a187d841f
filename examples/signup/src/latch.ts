/**
 * Latches on to a signup from anywhere — another process, another machine — knowing only the user
 * id, with Restate's official client: waits for the workflow's result (it waits for the click)
 * and prints it.
 *
 *   node examples/signup/dist/latch.js <userId>
 */
import * as clients from '@restatedev/restate-sdk-clients';
import type { SignupRequest } from './signup.js';

const [userId] = process.argv.slice(2);
if (!userId) {
  console.error('usage: latch.js <userId>');
  process.exit(2);
}
const rs = clients.connect({ url: process.env['INGRESS_URL'] ?? 'http://127.0.0.1:8080' });
type Signup = {
  run(
    ctx: unknown,
    req: SignupRequest,
  ): Promise<{ userId: string; email: string; verified: boolean }>;
};
try {
  console.log(
    JSON.stringify(
      await rs.workflowClient<Signup>({ name: 'user-signup' }, userId).workflowAttach(),
    ),
  );
} catch (e) {
  console.error(`signup of ${userId} failed: ${(e as Error).message}`);
  process.exit(1);
}
