import { FailedPreconditionError } from './errors';

/**
 * Lifecycle states. Expiry and not-before are times checked at validation, not states.
 * `rotated`: replaced by a successor and past its grace period (terminal, like `revoked`).
 */
export type KeyState = 'active' | 'disabled' | 'revoked' | 'rotated';
export const KEY_STATES: readonly KeyState[] = ['active', 'disabled', 'revoked', 'rotated'];

/** The stored form of a key. Never holds the secret: only its SHA-256 `hash`. */
export interface KeyRecord {
  readonly id: string;
  readonly hash: string;
  readonly service: string;
  readonly owner: string;
  readonly name: string;
  readonly prefix: string;
  readonly hint: string;
  readonly scopes: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly state: KeyState;
  /** Times in milliseconds since the epoch. */
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly notBefore?: number;
  readonly expiresAt?: number;
  readonly revokedAt?: number;
  readonly revokeReason?: string;
  /** The key's own policy; undefined when its service's default policy applies. */
  readonly policyId?: string;
  /** Key-level starting credits (narrowing the policy's). */
  readonly credits?: number;
  /** Rotation links: the successor of a superseded key, and the key a successor replaced. */
  readonly rotatedTo?: string;
  readonly rotatedFrom?: string;
  /** When the key was superseded, and when its grace period ends (it answers ROTATED from then). */
  readonly rotatedAt?: number;
  readonly graceEndsAt?: number;
  /**
   * The key id whose rate-limit and credit state this key uses: the first key of its rotation
   * chain, so rotation carries limits and credits over without copying (and without a window in
   * which old and new key could each spend the same credits). Undefined: its own id.
   */
  readonly limitsId?: string;
  /**
   * Scheduler bookkeeping (see rotation.ts): the next time the lifecycle scheduler must look at
   * the key (stores index it), and the lifecycle steps already done, so each is done once.
   */
  readonly dueAt?: number;
  readonly expiryHandledAt?: number;
  readonly rotationNoticeAt?: number;
  /** Usage, written in batches off the hot path; may lag reality by a flush interval. */
  readonly lastUsedAt?: number;
  readonly usageCount: number;
  /** Bumped by every write to the record; stores use it for compare-and-set. */
  readonly version: number;
}

/** The fields an update may change; `null` clears an optional one. */
export interface KeyChanges {
  name?: string;
  scopes?: readonly string[];
  metadata?: Readonly<Record<string, string>>;
  expiresAt?: number | null;
  enabled?: boolean;
  /** null returns the key to its service's default policy. */
  policyId?: string | null;
}

/** Applies changes to a record, enforcing the state machine. Pure: returns a new record. */
export function applyChanges(record: KeyRecord, changes: KeyChanges, now: number): KeyRecord {
  if (record.state === 'revoked' || record.state === 'rotated') {
    throw new FailedPreconditionError(`key ${record.id} is ${record.state}; a ${record.state} key can only be deleted`);
  }
  let state: KeyState = record.state;
  if (changes.enabled !== undefined) state = changes.enabled ? 'active' : 'disabled';
  const next: KeyRecord = {
    ...record,
    name: changes.name ?? record.name,
    scopes: changes.scopes ?? record.scopes,
    metadata: changes.metadata ?? record.metadata,
    expiresAt: changes.expiresAt === null ? undefined : (changes.expiresAt ?? record.expiresAt),
    policyId: changes.policyId === null ? undefined : (changes.policyId ?? record.policyId),
    state,
    updatedAt: now,
    version: record.version + 1,
  };
  if (next.expiresAt === undefined) delete (next as { expiresAt?: number }).expiresAt;
  if (next.policyId === undefined) delete (next as { policyId?: string }).policyId;
  return next;
}

/** The id under which a key's rate limits and credits are kept. */
export function limitsIdOf(record: Pick<KeyRecord, 'id' | 'limitsId'>): string {
  return record.limitsId ?? record.id;
}

/**
 * Revokes a key. Revoking an already revoked key is a no-op that returns the record unchanged,
 * so a retried revoke after a lost answer succeeds.
 */
export function revoke(record: KeyRecord, reason: string, now: number): KeyRecord {
  if (record.state === 'revoked') return record;
  return {
    ...record,
    state: 'revoked',
    revokedAt: now,
    revokeReason: reason,
    updatedAt: now,
    version: record.version + 1,
  };
}
