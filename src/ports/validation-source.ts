import type { ValidationEntry } from '../domain/validation';

/**
 * Where the validator finds the record of a key hash: the store directly, or (issue 3) the
 * sidecar's cache in front of it. May answer synchronously so cache hits skip a promise.
 */
export interface ValidationSource {
  lookup(hash: string): ValidationEntry | undefined | Promise<ValidationEntry | undefined>;
}
