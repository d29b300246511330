import type { KeyRecord } from './key-record';
import { ScopeSet } from './scopes';

/** Validation outcomes; mirror `keyward.v1.ValidationCode`. */
export type ValidationCode =
  | 'VALID'
  | 'MALFORMED'
  | 'NOT_FOUND'
  | 'DISABLED'
  | 'REVOKED'
  | 'EXPIRED'
  | 'NOT_YET_VALID'
  | 'INSUFFICIENT_SCOPE'
  | 'RATE_LIMITED'
  | 'USAGE_EXCEEDED'
  | 'FORBIDDEN'
  | 'ROTATED'
  | 'UNAVAILABLE';

export interface ValidationRequest {
  /** When set, the key must belong to this service. */
  readonly service?: string;
  readonly requiredScopes: readonly string[];
}

export interface Decision {
  readonly code: ValidationCode;
  /** Machine-readable detail of a denial, e.g. `missing_scope:orders:write`. */
  readonly reason: string;
  /** Set when the key was found in the requested service, whatever the code. */
  readonly record?: KeyRecord;
}

/**
 * What a cache keeps per key: the record plus its scopes prepared for matching. Built once per
 * record so the hot path does no per-request allocation for scope checks.
 */
export interface ValidationEntry {
  readonly record: KeyRecord;
  readonly scopes: ScopeSet;
}

export function toValidationEntry(record: KeyRecord): ValidationEntry {
  return { record, scopes: new ScopeSet(record.scopes) };
}

const NOT_FOUND: Decision = Object.freeze({ code: 'NOT_FOUND', reason: '' });

/**
 * The validation decision, a pure function of (record, request, time). Order: existence and
 * tenant, state, validity window, scopes. A key of another service is `NOT_FOUND`, so a caller
 * learns nothing about other tenants' keys.
 */
export function decide(entry: ValidationEntry | undefined, request: ValidationRequest, now: number): Decision {
  if (entry === undefined) return NOT_FOUND;
  const record = entry.record;
  if (request.service && request.service !== record.service) return NOT_FOUND;
  if (record.state === 'revoked') return { code: 'REVOKED', reason: 'revoked', record };
  if (record.state === 'disabled') return { code: 'DISABLED', reason: 'disabled', record };
  if (record.notBefore !== undefined && now < record.notBefore) {
    return { code: 'NOT_YET_VALID', reason: 'not_before', record };
  }
  if (record.expiresAt !== undefined && now >= record.expiresAt) {
    return { code: 'EXPIRED', reason: 'expired', record };
  }
  const missing = entry.scopes.firstMissing(request.requiredScopes);
  if (missing !== undefined) return { code: 'INSUFFICIENT_SCOPE', reason: `missing_scope:${missing}`, record };
  return { code: 'VALID', reason: '', record };
}
