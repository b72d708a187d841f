import { createHmac } from 'node:crypto';

/**
 * Secrets derived from an invocation's random seed. The store draws the seed (128 random bits) when
 * it accepts the invocation and keeps it with the invocation; it reaches the worker with every
 * attempt and is never sent to a client. Everything derived from it is the same on every replay
 * of that invocation and unpredictable to anyone who does not hold the seed: knowing the
 * invocation id (which any client that attaches or subscribes learns) is not enough.
 *
 * Derivation is HMAC-SHA256 keyed with the seed over a label that names the use
 * (`awk:<index>`, `child:<index>`, `rand:<block>`, `cancel`), so no two uses share bytes.
 */
export function deriveSecret(seed: string, label: string): Buffer {
  return createHmac('sha256', seed).update(label).digest();
}

/** Bytes of the secret in an awakeable id (128 bits). */
const AWAKEABLE_SECRET_BYTES = 16;

/**
 * The id of the awakeable created by journal entry `index`: `sign_1` (as Restate's ids start, so
 * clients that check the prefix keep working) followed by base64url of
 * `<invocationId>:<index>:<secret>`, the secret being 128 bits derived from the invocation's seed.
 * The id is recorded in the entry; the store completes the awakeable only for the exact id.
 */
export function awakeableId(invocationId: string, index: number, seed: string): string {
  const secret = deriveSecret(seed, `awk:${index}`)
    .subarray(0, AWAKEABLE_SECRET_BYTES)
    .toString('hex');
  return `sign_1${Buffer.from(`${invocationId}:${index}:${secret}`).toString('base64url')}`;
}

/** Longest awakeable id accepted for parsing (a real one is about 100 characters). */
const MAX_AWAKEABLE_ID = 256;
const AWAKEABLE_BODY = /^(inv_[0-9A-Za-z]{1,80}):(\d{1,9})(?::([0-9a-f]{32}))?$/;

/**
 * Parses an awakeable id into the invocation and journal index it names; undefined when
 * malformed. The secret is optional here (ids recorded before awakeable ids carried one still
 * parse); the store compares the whole id with the one recorded in the journal entry.
 */
export function parseAwakeableId(id: string): { invocationId: string; index: number } | undefined {
  if (typeof id !== 'string' || id.length > MAX_AWAKEABLE_ID || !id.startsWith('sign_1'))
    return undefined;
  const body = id.slice(6);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) return undefined;
  const m = AWAKEABLE_BODY.exec(Buffer.from(body, 'base64url').toString('utf8'));
  if (!m) return undefined;
  return { invocationId: m[1]!, index: Number(m[2]) };
}

/**
 * The token that proves a client started an invocation (it is handed only to the client whose
 * request created it): derived from the invocation's seed, so the store checks it without
 * keeping anything more.
 */
export function cancelToken(seed: string): string {
  return deriveSecret(seed, 'cancel').subarray(0, 16).toString('base64url');
}
