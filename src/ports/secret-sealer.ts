/**
 * Seals secrets that keyward must keep for a while: the successor secret of an automatic
 * rotation, until an admin claims it. The key-encryption key lives only in the sealer (from
 * configuration), never in the store, so a copy of the store alone reveals nothing.
 */
export interface SecretSealer {
  /** Encrypts `secret`, bound to `context` (e.g. the key id): opening needs the same context. */
  seal(secret: string, context: string): string;
  /** Decrypts; throws `SealedSecretError` when the blob was altered, the context differs or the KEK changed. */
  open(sealed: string, context: string): string;
}

/** A sealed secret could not be opened (altered, other context, or another key-encryption key). */
export class SealedSecretError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SealedSecretError';
  }
}
