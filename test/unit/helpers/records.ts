import type { KeyRecord } from '../../../src/domain/key-record';

/** A well-formed record for domain tests; override what the test is about. */
export function makeRecord(overrides: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A',
    hash: 'a'.repeat(64),
    service: 'orders',
    owner: 'team-a',
    name: 'checkout',
    prefix: 'sk',
    hint: 'sk_abcd',
    scopes: ['orders:read'],
    metadata: { env: 'test' },
    state: 'active',
    createdAt: 1_000,
    updatedAt: 1_000,
    usageCount: 0,
    version: 1,
    ...overrides,
  };
}
