import type { KeyRecord } from '../../../src/domain/key-record';
import type { Policy } from '../../../src/domain/policy';
import type { PolicyFields } from '../../../src/domain/policy-rules';

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

/** A policy's writable fields with no rule set; override what the test is about. */
export function makePolicyFields(overrides: Partial<PolicyFields> = {}): PolicyFields {
  return {
    service: 'orders',
    name: 'standard',
    allowedScopes: [],
    requireExpiry: false,
    allowedCidrs: [],
    timeZone: 'UTC',
    timeWindows: [],
    rateLimits: [],
    maxActiveKeys: 0,
    ...overrides,
  };
}

/** A stored policy with no rule set; override what the test is about. */
export function makePolicy(overrides: Partial<Policy> = {}): Policy {
  return {
    id: 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9A',
    service: 'orders',
    name: 'standard',
    allowedScopes: [],
    requireExpiry: false,
    allowedCidrs: [],
    timeZone: 'UTC',
    timeWindows: [],
    rateLimits: [],
    createdAt: 0,
    updatedAt: 0,
    version: 1,
    ...overrides,
  };
}
