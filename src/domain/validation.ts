import type { KeyRecord } from './key-record';
import type { CompiledPolicy } from './policy-evaluation';
import { sharedScopes, type ScopeSet, type SharedScopes } from './scopes';

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
  /** The end client's address, for network rules; empty when unknown. */
  readonly clientIp?: string;
}

/** The state of a key's limits after a request. */
export interface LimitSnapshot {
  readonly creditsRemaining?: number;
  readonly rateLimits: readonly { readonly name: string; readonly limit: number; readonly remaining: number; readonly resetAt: number }[];
}

export interface Decision {
  readonly code: ValidationCode;
  /** Machine-readable detail of a denial, e.g. `missing_scope:orders:write`. */
  readonly reason: string;
  /** Set when the key was found in the requested service, whatever the code. */
  readonly record?: CachedKeyRecord;
  /** Set when the key has rate limits or credits and they were checked. */
  readonly limits?: LimitSnapshot;
}

/**
 * The record fields that validation reads (`decide`, the policy resolver, the limiter, the
 * answer, usage and audit): the one list of what the validation cache keeps per key. A field
 * that validation starts reading must be added here (the type then lets it be read).
 */
export const CACHED_RECORD_FIELDS = [
  'id',
  'service',
  'owner',
  'hint',
  'scopes',
  'metadata',
  'state',
  'createdAt',
  'notBefore',
  'expiresAt',
  'policyId',
  'credits',
  'rotatedTo',
  'rotatedFrom',
  'rotatedAt',
  'graceEndsAt',
  'limitsId',
] as const satisfies readonly (keyof KeyRecord)[];

/** What validation sees of a key; a whole `KeyRecord` is one too. */
export type CachedKeyRecord = Pick<KeyRecord, (typeof CACHED_RECORD_FIELDS)[number]>;

/**
 * The slim copy of a record that the validation cache keeps: only `CACHED_RECORD_FIELDS`, with
 * the scope list, the metadata and the service, owner and state strings shared by every key that
 * has equal ones (a store read makes new ones for every record). The fields the cache never
 * reads (name, prefix, hash, update time, usage, version, ...) were ~280 B per cached key.
 */
export function toCachedRecord(record: CachedKeyRecord): CachedKeyRecord {
  return slimRecord(record, sharedScopes(record.scopes));
}

function slimRecord(record: CachedKeyRecord, scopes: SharedScopes): CachedKeyRecord {
  const slim: Record<string, unknown> = {};
  for (const field of CACHED_RECORD_FIELDS) {
    const value = record[field];
    if (value !== undefined) slim[field] = value;
  }
  slim.scopes = scopes.list;
  slim.service = sharedString(record.service);
  slim.owner = sharedString(record.owner);
  slim.state = sharedString(record.state);
  slim.metadata = sharedMetadata(record.metadata);
  // shared by every call that finds the key until it changes: frozen, like a value
  return Object.freeze(slim) as unknown as CachedKeyRecord;
}

/** Distinct values kept by each table below; past it a table starts over (values handed out stay valid). */
const MAX_SHARED_VALUES = 4096;
const sharedStrings = new Map<string, string>();
const sharedMetadataByJson = new Map<string, Readonly<Record<string, string>>>();

function sharedString(value: string): string {
  const found = sharedStrings.get(value);
  if (found !== undefined) return found;
  if (sharedStrings.size >= MAX_SHARED_VALUES) sharedStrings.clear();
  sharedStrings.set(value, value);
  return value;
}

/**
 * The first of the records with equal metadata (same entries in the same order) lends its
 * object to the others: records are never changed in place. Not a copy: a copy of metadata
 * that no other key shares measured ~150 B more per key than the object it replaced.
 */
function sharedMetadata(metadata: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  const json = JSON.stringify(metadata);
  const found = sharedMetadataByJson.get(json);
  if (found !== undefined) return found;
  if (sharedMetadataByJson.size >= MAX_SHARED_VALUES) sharedMetadataByJson.clear();
  sharedMetadataByJson.set(json, metadata);
  return metadata;
}

/**
 * What a cache keeps per key: the record plus its scopes prepared for matching. Built once per
 * record so the hot path does no per-request allocation for scope checks; the ScopeSet is
 * shared by every key that grants the same scopes.
 */
export interface ValidationEntry {
  readonly record: CachedKeyRecord;
  readonly scopes: ScopeSet;
}

export function toValidationEntry(record: CachedKeyRecord): ValidationEntry {
  return { record, scopes: sharedScopes(record.scopes).set };
}

/** What the cache keeps for a record: its slim copy and scope matcher, sharing one scope lookup. */
export function toCachedEntry(record: CachedKeyRecord): ValidationEntry {
  const scopes = sharedScopes(record.scopes);
  return { record: slimRecord(record, scopes), scopes: scopes.set };
}

const NOT_FOUND: Decision = Object.freeze({ code: 'NOT_FOUND', reason: '' });

/**
 * The validation decision, a pure function of (record, policy, request, time), in this order:
 * existence and tenant, state (and a superseded key's grace period), validity window (and a
 * `notify` policy's maximum age), network, time window, scopes (granted by the key
 * and allowed by its policy). Rate limits and credits, which need shared state, come after, in
 * the validator. A key of another service is `NOT_FOUND`, so a caller learns nothing about
 * other tenants' keys. `policy` is the key's effective policy: undefined when none applies,
 * null when the key names a policy that no longer exists (refused rather than loosened).
 */
export function decide(
  entry: ValidationEntry | undefined,
  request: ValidationRequest,
  now: number,
  policy?: CompiledPolicy | null,
): Decision {
  if (entry === undefined) return NOT_FOUND;
  const record = entry.record;
  if (request.service && request.service !== record.service) return NOT_FOUND;
  if (record.state === 'revoked') return { code: 'REVOKED', reason: 'revoked', record };
  if (record.state === 'rotated') return { code: 'ROTATED', reason: 'rotated', record };
  // A superseded key answers ROTATED from the end of its grace period, whenever the scheduler runs.
  if (record.graceEndsAt !== undefined && now >= record.graceEndsAt) return { code: 'ROTATED', reason: 'grace_period_over', record };
  if (record.state === 'disabled') return { code: 'DISABLED', reason: 'disabled', record };
  if (record.notBefore !== undefined && now < record.notBefore) {
    return { code: 'NOT_YET_VALID', reason: 'not_before', record };
  }
  if (record.expiresAt !== undefined && now >= record.expiresAt) {
    return { code: 'EXPIRED', reason: 'expired', record };
  }
  if (policy === null) return { code: 'FORBIDDEN', reason: 'policy_missing', record };
  // A `notify` rotation policy expires keys at their maximum age unless they were rotated.
  if (policy?.maxAgeExpiryMs !== undefined && record.rotatedTo === undefined && now >= record.createdAt + policy.maxAgeExpiryMs) {
    return { code: 'EXPIRED', reason: 'max_age', record };
  }
  if (policy?.cidrs !== undefined) {
    if (!request.clientIp) return { code: 'FORBIDDEN', reason: 'client_ip_required', record };
    if (!policy.cidrs.contains(request.clientIp)) return { code: 'FORBIDDEN', reason: 'ip_not_allowed', record };
  }
  if (policy?.windows !== undefined && !policy.windows.contains(now)) {
    return { code: 'FORBIDDEN', reason: 'outside_time_window', record };
  }
  const missing = entry.scopes.firstMissing(request.requiredScopes);
  if (missing !== undefined) return { code: 'INSUFFICIENT_SCOPE', reason: `missing_scope:${missing}`, record };
  if (policy?.allowedScopes !== undefined) {
    const notAllowed = policy.allowedScopes.firstMissing(request.requiredScopes);
    if (notAllowed !== undefined) return { code: 'INSUFFICIENT_SCOPE', reason: `scope_not_allowed:${notAllowed}`, record };
  }
  return { code: 'VALID', reason: '', record };
}
