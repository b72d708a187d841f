/**
 * Request signing (docs/PROTOCOL.md "Signing"): the engine signs each request to a deployment with
 * an Ed25519 private key; a deployment configured with the matching public keys (`identityKeys`)
 * serves only requests signed by one of them, no older than {@link MAX_SKEW_MS}. The signature
 * covers the time, the path and the body: header `x-latchkey-signature: v1;t=<ms>;<base64>`.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/** How far a signature's time may lie from the deployment's clock (ms). */
export const MAX_SKEW_MS = 5 * 60_000;

function message(t: string, path: string, body: string): Buffer {
  return Buffer.from(`${t}\n${path}\n${body}`);
}

function keyOf(text: string, make: typeof createPublicKey | typeof createPrivateKey): KeyObject {
  const t = text.trim();
  if (t.startsWith('-----')) return make(t);
  const der = Buffer.from(t, 'base64');
  return make === createPrivateKey
    ? createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    : createPublicKey({ key: der, format: 'der', type: 'spki' });
}

/** Signs requests with `privateKey` (Ed25519, PEM or base64 PKCS#8): the header's value. */
export function signer(privateKey: string): (path: string, body: string) => string {
  const key = keyOf(privateKey, createPrivateKey);
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('the signing key must be Ed25519');
  return (path, body) => {
    const t = String(Date.now());
    return `v1;t=${t};${sign(null, message(t, path, body), key).toString('base64')}`;
  };
}

/**
 * Checks signatures against `keys` (Ed25519 public keys, PEM or base64 SPKI); undefined when no
 * key is given (nothing is checked).
 */
export function verifier(
  keys: readonly string[] | undefined,
  now: () => number = Date.now,
): ((path: string, body: string, header: string | undefined) => boolean) | undefined {
  if (!keys || keys.length === 0) return undefined;
  const objs = keys.map((k) => {
    const key = keyOf(k, createPublicKey);
    if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('identity keys must be Ed25519');
    return key;
  });
  return (path, body, header) => {
    const m =
      header === undefined ? null : /^v1;t=(\d{1,16});([A-Za-z0-9+/=]{1,200})$/.exec(header);
    if (!m) return false;
    const t = m[1]!;
    if (Math.abs(now() - Number(t)) > MAX_SKEW_MS) return false;
    const sig = Buffer.from(m[2]!, 'base64');
    const msg = message(t, path, body);
    return objs.some((k) => verify(null, msg, k, sig));
  };
}
