/** Base62 with the alphabet 0-9, A-Z, a-z (so that base62 strings of equal length sort numerically). */
export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE62_ALPHABET.length; i++) DECODE[BASE62_ALPHABET.charCodeAt(i)] = i;

export function isBase62(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || DECODE[c] < 0) return false;
  }
  return true;
}

/** Encodes a non-negative integer (< 2^53) as base62, left-padded with `0` to `width`. */
export function encodeBase62(value: number, width: number): string {
  let out = '';
  let v = value;
  do {
    out = BASE62_ALPHABET[v % 62] + out;
    v = Math.floor(v / 62);
  } while (v > 0);
  return out.padStart(width, '0');
}

/**
 * Maps random bytes to `length` uniform base62 characters by rejection sampling: bytes >= 248
 * are skipped, so every character has probability exactly 1/62 (no modulo bias).
 * `nextBytes` supplies more bytes when the first batch runs out.
 */
export function randomBase62(length: number, nextBytes: (n: number) => Uint8Array): string {
  let out = '';
  while (out.length < length) {
    const bytes = nextBytes(Math.ceil((length - out.length) * 1.1) + 4);
    for (let i = 0; i < bytes.length && out.length < length; i++) {
      if (bytes[i] < 248) out += BASE62_ALPHABET[bytes[i] % 62];
    }
  }
  return out;
}
