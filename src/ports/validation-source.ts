import type { ValidationEntry } from '../domain/validation';

/** `peek`'s answer when it cannot answer from memory; the caller then uses `lookup`. */
export const MISS: unique symbol = Symbol('keyward.validationSource.miss');

/**
 * Where the validator finds the record of a key hash: the store directly, or (issue 3) the
 * sidecar's cache in front of it. May answer synchronously so cache hits skip a promise.
 */
export interface ValidationSource {
  /** Asked only for the hashes of well-formed keys (the validator parses the key first). */
  lookup(hash: string): ValidationEntry | undefined | Promise<ValidationEntry | undefined>;
  /**
   * A fresh answer from memory for a hash that `lookup` was asked for before, else `MISS`.
   * Since `lookup` only sees well-formed keys, an answer here proves the key well-formed, so
   * the validator may skip parsing it. Optional: a source without memory has nothing to peek.
   */
  peek?(hash: string): ValidationEntry | undefined | typeof MISS;
}
