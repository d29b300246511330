import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { encodeBase62, isBase62, randomBase62 } from './base62';

/**
 * keyward key format: `<prefix>_<random><checksum>`, e.g. `sk_live_3hQ...Zk0b9Ae1`.
 *
 * - prefix: 1 to 4 `_`-separated parts of lowercase letters and digits, starting with a letter,
 *   at most 32 characters (`sk`, `sk_live`, `pk_test`);
 * - random: 33 base62 characters from a CSPRNG, 33 * log2(62) = 196.5 bits;
 * - checksum: the CRC32 of `<prefix>_<random>` in base62, 6 characters, so typos and truncated
 *   keys are rejected offline and secret scanners can recognise keyward keys (as GitHub tokens).
 */
export const RANDOM_LENGTH = 33;
export const CHECKSUM_LENGTH = 6;
export const MAX_PREFIX_LENGTH = 32;
/** Longer input is rejected before any parsing work. */
export const MAX_KEY_LENGTH = 512;
export const PREFIX_PATTERN = /^[a-z][a-z0-9]*(?:_[a-z0-9]+){0,3}$/;

const BODY_LENGTH = RANDOM_LENGTH + CHECKSUM_LENGTH;

export interface ParsedKey {
  readonly prefix: string;
  readonly random: string;
  readonly checksum: string;
}

export function isValidPrefix(prefix: string): boolean {
  return prefix.length <= MAX_PREFIX_LENGTH && PREFIX_PATTERN.test(prefix);
}

export function checksumOf(prefixAndRandom: string): string {
  return encodeBase62(crc32(prefixAndRandom), CHECKSUM_LENGTH);
}

/** Creates a new key string. `bytes` is injectable for tests; production uses the CSPRNG. */
export function generateKey(prefix: string, bytes: (n: number) => Uint8Array = randomBytes): string {
  if (!isValidPrefix(prefix)) throw new RangeError(`invalid key prefix ${JSON.stringify(prefix)}`);
  const head = `${prefix}_${randomBase62(RANDOM_LENGTH, bytes)}`;
  return head + checksumOf(head);
}

/**
 * Parses a key string; `null` when it is not a well-formed keyward key with a correct
 * checksum. Never throws, whatever the input.
 */
export function parseKey(input: string): ParsedKey | null {
  if (typeof input !== 'string' || input.length > MAX_KEY_LENGTH) return null;
  const sep = input.lastIndexOf('_');
  if (sep <= 0) return null;
  const prefix = input.slice(0, sep);
  const body = input.slice(sep + 1);
  if (body.length !== BODY_LENGTH || !isBase62(body) || !isValidPrefix(prefix)) return null;
  const random = body.slice(0, RANDOM_LENGTH);
  const checksum = body.slice(RANDOM_LENGTH);
  if (checksumOf(input.slice(0, sep + 1 + RANDOM_LENGTH)) !== checksum) return null;
  return { prefix, random, checksum };
}

/** The part of a key that may be shown and logged: prefix plus the first 4 random characters. */
export function displayHint(parsed: ParsedKey): string {
  return `${parsed.prefix}_${parsed.random.slice(0, 4)}`;
}
