/**
 * What an attacker on the public ingress computes, for the security tests: awakeable ids
 * forged for any journal index, the secrets an id-seeded engine would have drawn, child ids derived
 * from a parent's id.
 */
import { createHash, randomBytes } from 'node:crypto';

/** Awakeable ids an attacker forges for entry `index` of `invocationId`: the old format and the new one with a guessed secret. */
export function forgedAwakeableIds(invocationId: string, index: number): string[] {
  return [
    `sign_1${Buffer.from(`${invocationId}:${index}`).toString('base64url')}`,
    `sign_1${Buffer.from(`${invocationId}:${index}:${randomBytes(16).toString('hex')}`).toString('base64url')}`,
  ];
}

/**
 * The UUID an engine that seeds `ctx.rand` from the invocation id alone would draw first (the
 * generator Latchkey used before seeds: cyrb128 of the id, then xoshiro128**). An attacker who
 * learns a workflow's invocation id computes this.
 */
export function uuidSeededById(invocationId: string): string {
  let h1 = 1779033703,
    h2 = 3144134277,
    h3 = 1013904242,
    h4 = 2773480762;
  for (let i = 0; i < invocationId.length; i++) {
    const k = invocationId.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  let [a, b, c, d] = [(h1 ^ h2 ^ h3 ^ h4) >>> 0, (h2 ^ h1) >>> 0, (h3 ^ h1) >>> 0, (h4 ^ h1) >>> 0];
  const next32 = (): number => {
    const t = b << 9;
    let r = Math.imul(b, 5);
    r = Math.imul((r << 7) | (r >>> 25), 9);
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = (d << 11) | (d >>> 21);
    return r >>> 0;
  };
  const bytes: number[] = [];
  for (let i = 0; i < 4; i++) {
    const w = next32();
    bytes.push(w >>> 24, (w >>> 16) & 255, (w >>> 8) & 255, w & 255);
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The id part an engine that derives child ids from the parent's id (SHA-256 of `parent:index`) would give. */
export function childIdDigestFromParent(parentId: string, index: number): string {
  const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const digest = createHash('sha256').update(`${parentId}:${index}`).digest();
  let s = '';
  for (const b of digest.subarray(1, 23)) s += ALPHABET[b % 62];
  return s;
}
