import { FailedPreconditionError } from './errors';
import { limitsIdOf, type KeyRecord } from './key-record';
import type { Policy } from './policy';

/*
 * Rotation and lifecycle automation, as pure functions over records, policies and times.
 *
 * Rotation replaces a key by a successor with the same service, owner, name, scopes, metadata,
 * policy and limits. The old key is "superseded": it keeps validating (answers say so) until its
 * grace period ends, then answers ROTATED; the lifecycle scheduler later marks it `rotated`.
 *
 * The scheduler's work per key is a list of steps, each due at a time computed from the record
 * and its effective policy, each recorded on the record when done so it is done once:
 *
 *   retire           superseded key at `graceEndsAt`              -> state `rotated`
 *   expire           at `expiresAt`                               -> `key.expired`, expiryHandledAt
 *   rotation_notice  `notify`: at max age - notice                -> `key.rotation_due`, rotationNoticeAt
 *   expire_at_max_age `notify`: at max age, unless rotated        -> expiresAt = max age time
 *   auto_rotate      `auto`: at max age, active and not rotated   -> rotation with a sealed secret
 *
 * `dueAt` is the earliest of the pending steps' times; stores index it (a sorted set by due
 * time), so a scheduler tick reads only keys that are due, whatever the number of keys.
 */

export type LifecycleStep = 'retire' | 'expire' | 'rotation_notice' | 'expire_at_max_age' | 'auto_rotate';

export interface DueStep {
  readonly step: LifecycleStep;
  readonly at: number;
}

/** Longest grace period a rotation may give (also the claim window of a sealed secret). */
export const MAX_GRACE_PERIOD_MS = 90 * 86_400_000;

/** Refuses to rotate keys that cannot be rotated, with a message naming the reason. */
export function checkRotatable(record: KeyRecord, now: number): void {
  if (record.rotatedTo !== undefined) {
    throw new FailedPreconditionError(`key ${record.id} was already rotated; its successor is ${record.rotatedTo}`);
  }
  if (record.state !== 'active') {
    throw new FailedPreconditionError(`key ${record.id} is ${record.state}; only an active key can be rotated`);
  }
  if (record.expiresAt !== undefined && now >= record.expiresAt) {
    throw new FailedPreconditionError(`key ${record.id} has expired; create a new key instead`);
  }
}

export interface SuccessorSpec {
  readonly id: string;
  readonly hash: string;
  readonly hint: string;
  readonly now: number;
  /** 0 retires the old key at once. */
  readonly gracePeriodMs: number;
}

/**
 * The two records of a rotation: the old key superseded (version + 1) and its successor. The
 * successor copies the old key's configuration; an expiry keeps the old key's lifetime length.
 * Call `checkRotatable` first. `dueAt` of both is left to `withDueAt`.
 */
export function rotateRecord(old: KeyRecord, s: SuccessorSpec): { retired: KeyRecord; successor: KeyRecord } {
  if (!Number.isSafeInteger(s.gracePeriodMs) || s.gracePeriodMs < 0 || s.gracePeriodMs > MAX_GRACE_PERIOD_MS) {
    throw new RangeError(`gracePeriodMs must be from 0 to ${MAX_GRACE_PERIOD_MS}, got ${s.gracePeriodMs}`);
  }
  const graceEndsAt = s.now + s.gracePeriodMs;
  const retired: KeyRecord = {
    ...old,
    rotatedTo: s.id,
    rotatedAt: s.now,
    graceEndsAt,
    state: s.gracePeriodMs === 0 ? 'rotated' : old.state,
    updatedAt: s.now,
    version: old.version + 1,
  };
  const successor: KeyRecord = {
    id: s.id,
    hash: s.hash,
    service: old.service,
    owner: old.owner,
    name: old.name,
    prefix: old.prefix,
    hint: s.hint,
    scopes: old.scopes,
    metadata: old.metadata,
    state: 'active',
    createdAt: s.now,
    updatedAt: s.now,
    ...(old.expiresAt !== undefined && { expiresAt: s.now + (old.expiresAt - Math.max(old.createdAt, old.notBefore ?? 0)) }),
    ...(old.policyId !== undefined && { policyId: old.policyId }),
    ...(old.credits !== undefined && { credits: old.credits }),
    rotatedFrom: old.id,
    limitsId: limitsIdOf(old),
    usageCount: 0,
    version: 1,
  };
  return { retired, successor };
}

/** Whether a key is superseded and still inside its grace period at `now`. */
export function inGracePeriod(record: KeyRecord, now: number): boolean {
  return record.rotatedTo !== undefined && record.state !== 'rotated' && record.graceEndsAt !== undefined && now < record.graceEndsAt;
}

/** The time a `notify` policy expires a key that was not rotated; undefined when none applies. */
export function maxAgeExpiry(record: KeyRecord, policy: Policy | undefined): number | undefined {
  if (policy?.rotation?.strategy !== 'notify' || policy.maxAgeMs === undefined || record.rotatedTo !== undefined) return undefined;
  return record.createdAt + policy.maxAgeMs;
}

/** Every lifecycle step still pending for a key, with its due time (in or out of the past). */
export function pendingSteps(record: KeyRecord, policy: Policy | undefined): DueStep[] {
  const steps: DueStep[] = [];
  const live = record.state === 'active' || record.state === 'disabled';
  if (record.rotatedTo !== undefined && record.state !== 'rotated' && record.state !== 'revoked' && record.graceEndsAt !== undefined) {
    steps.push({ step: 'retire', at: record.graceEndsAt });
  }
  if (live && record.expiresAt !== undefined && record.expiryHandledAt === undefined) {
    steps.push({ step: 'expire', at: record.expiresAt });
  }
  const rule = policy?.rotation;
  if (live && rule !== undefined && policy!.maxAgeMs !== undefined && record.rotatedTo === undefined) {
    const maxAgeAt = record.createdAt + policy!.maxAgeMs;
    const expiresFirst = record.expiresAt !== undefined && record.expiresAt <= maxAgeAt;
    if (rule.strategy === 'notify' && !expiresFirst) {
      if (record.rotationNoticeAt === undefined) steps.push({ step: 'rotation_notice', at: maxAgeAt - rule.noticeMs });
      steps.push({ step: 'expire_at_max_age', at: maxAgeAt });
    } else if (rule.strategy === 'auto' && record.state === 'active' && !expiresFirst && record.expiryHandledAt === undefined) {
      // A disabled key is not rotated; re-enabling it recomputes its due time. An expired one is
      // not rotated either (a scheduler that was down past both times expires it instead).
      steps.push({ step: 'auto_rotate', at: maxAgeAt });
    }
  }
  return steps;
}

/** The steps due at `now`, earliest first. */
export function dueSteps(record: KeyRecord, policy: Policy | undefined, now: number): DueStep[] {
  return pendingSteps(record, policy)
    .filter((s) => s.at <= now)
    .sort((a, b) => a.at - b.at);
}

/** The earliest pending step's time, or undefined when the scheduler never needs the key. */
export function nextDueAt(record: KeyRecord, policy: Policy | undefined): number | undefined {
  let min: number | undefined;
  for (const s of pendingSteps(record, policy)) if (min === undefined || s.at < min) min = s.at;
  return min;
}

/** The record with `dueAt` set for its policy; every writer of a record calls this before writing. */
export function withDueAt(record: KeyRecord, policy: Policy | undefined): KeyRecord {
  const dueAt = nextDueAt(record, policy);
  if (dueAt === record.dueAt) return record;
  const next = { ...record, dueAt };
  if (dueAt === undefined) delete (next as { dueAt?: number }).dueAt;
  return next;
}

/**
 * Applies one step that changes only the record (every step but `auto_rotate`, which is a
 * rotation). Returns the new record (version + 1), or the same record when the step is no longer
 * pending (done by another scheduler first): the idempotence the scheduler relies on.
 */
export function applyStep(record: KeyRecord, policy: Policy | undefined, step: Exclude<LifecycleStep, 'auto_rotate'>, now: number): KeyRecord {
  const pending = pendingSteps(record, policy).find((s) => s.step === step);
  if (pending === undefined || pending.at > now) return record;
  const base = { ...record, updatedAt: now, version: record.version + 1 };
  switch (step) {
    case 'retire':
      return { ...base, state: 'rotated' };
    case 'expire':
      return { ...base, expiryHandledAt: now };
    case 'rotation_notice':
      return { ...base, rotationNoticeAt: now };
    case 'expire_at_max_age':
      return { ...base, expiresAt: pending.at };
  }
}
