import { hash } from 'node:crypto';

/**
 * SHA-256 of the whole key string (UTF-8), hex. The only form in which a key is ever stored.
 * One-shot `hash` rather than `createHash`: same digest, no Hash object per call (hot path).
 */
export function hashKey(key: string): string {
  return hash('sha256', key, 'hex');
}
