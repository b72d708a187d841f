/**
 * Submits a signup. Safe to run again: the workflow runs once per user id, and
 * a repeated submission answers `PreviouslyAccepted` with the same invocation id.
 *
 *   node examples/signup/dist/submit.js <userId> <email> [name]
 *   (INGRESS_URL defaults to http://127.0.0.1:8080)
 */
const [userId, email, name = 'New user'] = process.argv.slice(2);
if (!userId || !email) {
  console.error('usage: submit.js <userId> <email> [name]');
  process.exit(2);
}
const ingress = process.env['INGRESS_URL'] ?? 'http://127.0.0.1:8080';
const res = await fetch(`${ingress}/user-signup/${encodeURIComponent(userId)}/run/send`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ email, name }),
});
if (res.status !== 202) {
  console.error(`submit failed: HTTP ${res.status} ${await res.text()}`);
  process.exit(1);
}
// {"invocationId":"inv_…","status":"Accepted" | "PreviouslyAccepted"}
console.log(JSON.stringify(await res.json()));
