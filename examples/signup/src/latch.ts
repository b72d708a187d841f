/**
 * Latches on to a signup from anywhere — another process, another machine —
 * knowing only the user id: waits for the workflow's result and prints it.
 *
 *   node examples/signup/dist/latch.js <userId>
 */
const [userId] = process.argv.slice(2);
if (!userId) {
  console.error('usage: latch.js <userId>');
  process.exit(2);
}
const ingress = process.env['INGRESS_URL'] ?? 'http://127.0.0.1:8080';
const res = await fetch(`${ingress}/restate/workflow/user-signup/${encodeURIComponent(userId)}/attach`);
const body = await res.text();
if (!res.ok) {
  console.error(`signup of ${userId} failed: HTTP ${res.status} ${body}`);
  process.exit(1);
}
console.log(body);
