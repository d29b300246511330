import { createHash } from 'node:crypto';

/** SHA-256 of the whole key string, hex. The only form in which a key is ever stored. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
