import { deriveSecret } from './secrets.js';
import type { Rand } from './types.js';

/**
 * Deterministic randomness from the invocation's secret seed: a stream of 32-byte blocks, block n
 * being HMAC-SHA256(seed, `rand:<n>`). A replay draws the same numbers in the same order, and
 * values a handler discloses (a UUID it returns, say) reveal neither the seed nor any other value.
 */
export function createRand(seed: string): Rand {
  let block: Buffer = Buffer.alloc(0);
  let at = 0;
  let n = 0;
  const take = (count: number): Buffer => {
    if (at + count > block.length) {
      // Whole draws only: a value never straddles two blocks (count <= 32).
      block = deriveSecret(seed, `rand:${n++}`);
      at = 0;
    }
    at += count;
    return block.subarray(at - count, at);
  };
  return {
    random: () => {
      // 53 random bits: the full precision of a double in [0, 1).
      const b = take(7);
      const hi = ((b[0]! << 13) | (b[1]! << 5) | (b[2]! >>> 3)) >>> 0; // 21 bits
      const lo = b.readUInt32BE(3); // 32 bits
      return (hi * 2 ** 32 + lo) / 2 ** 53;
    },
    uuidv4: () => {
      const bytes = Buffer.from(take(16));
      bytes[6] = (bytes[6]! & 0x0f) | 0x40;
      bytes[8] = (bytes[8]! & 0x3f) | 0x80;
      const hex = bytes.toString('hex');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    },
  };
}
