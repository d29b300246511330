import { toValidationEntry, type ValidationEntry } from '../domain/validation';
import type { KeyStore } from '../ports/key-store';
import type { ValidationSource } from '../ports/validation-source';
import { withSpan } from '../observability/span-helpers';

/** Reads every lookup from the store: the behaviour with no cache in front. */
export class StoreValidationSource implements ValidationSource {
  constructor(private readonly store: KeyStore) {}

  async lookup(hash: string): Promise<ValidationEntry | undefined> {
    const record = await withSpan('keyward.store.read', undefined, () => this.store.getByHash(hash));
    return record && toValidationEntry(record);
  }
}
