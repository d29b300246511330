import { FailedPreconditionError } from '../../../src/domain/errors';
import type { Policy, RotationRule } from '../../../src/domain/policy';
import { compilePolicy } from '../../../src/domain/policy-evaluation';
import {
  applyStep,
  checkRotatable,
  dueSteps,
  inGracePeriod,
  maxAgeExpiry,
  MAX_GRACE_PERIOD_MS,
  nextDueAt,
  pendingSteps,
  rotateRecord,
  withDueAt,
} from '../../../src/domain/rotation';
import { decide, toValidationEntry } from '../../../src/domain/validation';
import { makeRecord } from '../helpers/records';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = 1_700_000_000_000;

function policy(rotation?: RotationRule, maxAgeMs = 30 * DAY): Policy {
  return {
    id: 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9A',
    service: 'orders',
    name: 'p',
    allowedScopes: [],
    requireExpiry: false,
    maxAgeMs,
    allowedCidrs: [],
    timeZone: 'UTC',
    timeWindows: [],
    rateLimits: [],
    createdAt: T0,
    updatedAt: T0,
    version: 1,
    ...(rotation && { rotation }),
  };
}

const NOTIFY = policy({ strategy: 'notify', noticeMs: 7 * DAY });
const AUTO = policy({ strategy: 'auto', noticeMs: 0, gracePeriodMs: DAY });
const spec = (now: number, gracePeriodMs = HOUR) => ({ id: 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9B', hash: 'b'.repeat(64), hint: 'sk_wxyz', now, gracePeriodMs });

describe('checkRotatable', () => {
  it('accepts an active key', () => {
    expect(() => checkRotatable(makeRecord({ createdAt: T0 }), T0)).not.toThrow();
  });

  it.each([
    ['already rotated', { rotatedTo: 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9B' }, /already rotated; its successor is key_01JD6Z3M8Q4ZC2N1XW7V5TBR9B/],
    ['disabled', { state: 'disabled' as const }, /is disabled; only an active key/],
    ['revoked', { state: 'revoked' as const }, /is revoked/],
    ['expired', { expiresAt: T0 }, /has expired/],
  ])('refuses a key that is %s, naming why', (_name, overrides, message) => {
    const r = makeRecord({ createdAt: T0 - DAY, ...overrides });
    expect(() => checkRotatable(r, T0)).toThrow(FailedPreconditionError);
    expect(() => checkRotatable(r, T0)).toThrow(message);
  });
});

describe('rotateRecord', () => {
  const old = makeRecord({
    createdAt: T0 - 10 * DAY,
    expiresAt: T0 + 20 * DAY,
    policyId: 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9A',
    credits: 50,
    scopes: ['orders:read', 'orders:write'],
    metadata: { env: 'prod' },
    usageCount: 99,
    lastUsedAt: T0 - 1,
    version: 4,
  });

  it('supersedes the old key and links both ways', () => {
    const { retired, successor } = rotateRecord(old, spec(T0));
    expect(retired).toEqual({ ...old, rotatedTo: successor.id, rotatedAt: T0, graceEndsAt: T0 + HOUR, updatedAt: T0, version: 5 });
    expect(successor.rotatedFrom).toBe(old.id);
  });

  it('gives the successor the same configuration, a fresh lifetime of the same length and shared limits', () => {
    const { successor } = rotateRecord(old, spec(T0));
    expect(successor).toEqual({
      id: 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9B',
      hash: 'b'.repeat(64),
      hint: 'sk_wxyz',
      service: old.service,
      owner: old.owner,
      name: old.name,
      prefix: old.prefix,
      scopes: old.scopes,
      metadata: old.metadata,
      state: 'active',
      createdAt: T0,
      updatedAt: T0,
      expiresAt: T0 + 30 * DAY,
      policyId: old.policyId,
      credits: 50,
      rotatedFrom: old.id,
      limitsId: old.id,
      usageCount: 0,
      version: 1,
    });
  });

  it('keeps the first key of a chain as the limits id', () => {
    const second = rotateRecord(old, spec(T0)).successor;
    const third = rotateRecord(second, { ...spec(T0 + 1), id: 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9C', hash: 'c'.repeat(64) }).successor;
    expect(third.limitsId).toBe(old.id);
  });

  it('retires the old key at once with a zero grace period', () => {
    const { retired } = rotateRecord(old, spec(T0, 0));
    expect(retired.state).toBe('rotated');
    expect(retired.graceEndsAt).toBe(T0);
  });

  it.each([-1, 0.5, MAX_GRACE_PERIOD_MS + 1, Number.NaN])('refuses a grace period of %p', (grace) => {
    expect(() => rotateRecord(old, spec(T0, grace))).toThrow(RangeError);
  });
});

describe('validation of rotated keys', () => {
  const old = makeRecord({ createdAt: T0 - DAY });
  const { retired } = rotateRecord(old, spec(T0, HOUR));

  it('a superseded key validates during its grace period', () => {
    expect(inGracePeriod(retired, T0 + HOUR - 1)).toBe(true);
    expect(decide(toValidationEntry(retired), { requiredScopes: [] }, T0 + HOUR - 1).code).toBe('VALID');
  });

  it('answers ROTATED from the end of the grace period, before the scheduler marks it', () => {
    expect(inGracePeriod(retired, T0 + HOUR)).toBe(false);
    expect(decide(toValidationEntry(retired), { requiredScopes: [] }, T0 + HOUR)).toMatchObject({ code: 'ROTATED', reason: 'grace_period_over' });
  });

  it('answers ROTATED for a key in state rotated', () => {
    const marked = applyStep(retired, undefined, 'retire', T0 + HOUR);
    expect(marked.state).toBe('rotated');
    expect(decide(toValidationEntry(marked), { requiredScopes: [] }, T0 + HOUR).code).toBe('ROTATED');
  });

  it('a notify policy expires a key at its maximum age unless it was rotated', () => {
    const key = makeRecord({ createdAt: T0 });
    const compiled = compilePolicy(NOTIFY);
    expect(decide(toValidationEntry(key), { requiredScopes: [] }, T0 + 30 * DAY - 1, compiled).code).toBe('VALID');
    expect(decide(toValidationEntry(key), { requiredScopes: [] }, T0 + 30 * DAY, compiled)).toMatchObject({ code: 'EXPIRED', reason: 'max_age' });
    const superseded = rotateRecord(key, spec(T0 + 29 * DAY, 3 * DAY)).retired;
    expect(decide(toValidationEntry(superseded), { requiredScopes: [] }, T0 + 30 * DAY, compiled).code).toBe('VALID');
    expect(maxAgeExpiry(key, NOTIFY)).toBe(T0 + 30 * DAY);
    expect(maxAgeExpiry(superseded, NOTIFY)).toBeUndefined();
  });

  it('an auto policy does not expire keys by age (the scheduler rotates them)', () => {
    const key = makeRecord({ createdAt: T0 });
    expect(decide(toValidationEntry(key), { requiredScopes: [] }, T0 + 40 * DAY, compilePolicy(AUTO)).code).toBe('VALID');
  });
});

describe('lifecycle steps and due times', () => {
  it('a key without expiry or rotation policy is never due', () => {
    const key = makeRecord({ createdAt: T0 });
    expect(pendingSteps(key, undefined)).toEqual([]);
    expect(nextDueAt(key, policy(undefined))).toBeUndefined();
    expect(withDueAt({ ...key, dueAt: 5 }, undefined).dueAt).toBeUndefined();
    expect('dueAt' in withDueAt({ ...key, dueAt: 5 }, undefined)).toBe(false);
  });

  it('expiry is due once, at expiresAt', () => {
    const key = makeRecord({ createdAt: T0, expiresAt: T0 + DAY });
    expect(nextDueAt(key, undefined)).toBe(T0 + DAY);
    expect(dueSteps(key, undefined, T0 + DAY - 1)).toEqual([]);
    const done = applyStep(key, undefined, 'expire', T0 + DAY + 5);
    expect(done).toMatchObject({ expiryHandledAt: T0 + DAY + 5, version: key.version + 1 });
    expect(nextDueAt(done, undefined)).toBeUndefined();
    expect(applyStep(done, undefined, 'expire', T0 + DAY + 6)).toBe(done); // already done: unchanged
  });

  it('applyStep does nothing before a step is due', () => {
    const key = makeRecord({ createdAt: T0, expiresAt: T0 + DAY });
    expect(applyStep(key, undefined, 'expire', T0 + DAY - 1)).toBe(key);
  });

  it('notify: the notice, then expiry at the maximum age, then key.expired', () => {
    let key = makeRecord({ createdAt: T0 });
    expect(nextDueAt(key, NOTIFY)).toBe(T0 + 23 * DAY);
    expect(dueSteps(key, NOTIFY, T0 + 23 * DAY)).toEqual([{ step: 'rotation_notice', at: T0 + 23 * DAY }]);
    key = applyStep(key, NOTIFY, 'rotation_notice', T0 + 23 * DAY);
    expect(key.rotationNoticeAt).toBe(T0 + 23 * DAY);
    expect(nextDueAt(key, NOTIFY)).toBe(T0 + 30 * DAY);
    key = applyStep(key, NOTIFY, 'expire_at_max_age', T0 + 30 * DAY + 10);
    expect(key.expiresAt).toBe(T0 + 30 * DAY);
    expect(dueSteps(key, NOTIFY, T0 + 30 * DAY + 10)).toEqual([{ step: 'expire', at: T0 + 30 * DAY }]);
    key = applyStep(key, NOTIFY, 'expire', T0 + 30 * DAY + 10);
    expect(nextDueAt(key, NOTIFY)).toBeUndefined();
  });

  it('notify: a key that expires before its maximum age only gets its expiry', () => {
    const key = makeRecord({ createdAt: T0, expiresAt: T0 + 10 * DAY });
    expect(pendingSteps(key, NOTIFY)).toEqual([{ step: 'expire', at: T0 + 10 * DAY }]);
  });

  it('a late scheduler sees every overdue step, earliest first', () => {
    const key = makeRecord({ createdAt: T0 });
    expect(dueSteps(key, NOTIFY, T0 + 31 * DAY).map((s) => s.step)).toEqual(['rotation_notice', 'expire_at_max_age']);
  });

  it('auto: rotation is due at the maximum age for an active key only', () => {
    const key = makeRecord({ createdAt: T0 });
    expect(pendingSteps(key, AUTO)).toEqual([{ step: 'auto_rotate', at: T0 + 30 * DAY }]);
    expect(pendingSteps({ ...key, state: 'disabled' }, AUTO)).toEqual([]);
    expect(pendingSteps({ ...key, state: 'revoked' }, AUTO)).toEqual([]);
  });

  it('after a rotation the old key is due at its grace end and the successor at its own maximum age', () => {
    const key = makeRecord({ createdAt: T0 });
    const { retired, successor } = rotateRecord(key, spec(T0 + 30 * DAY, DAY));
    expect(pendingSteps(retired, AUTO)).toEqual([{ step: 'retire', at: T0 + 31 * DAY }]);
    expect(nextDueAt(successor, AUTO)).toBe(T0 + 60 * DAY);
    const marked = applyStep(retired, AUTO, 'retire', T0 + 31 * DAY);
    expect(marked.state).toBe('rotated');
    expect(nextDueAt(marked, AUTO)).toBeUndefined();
  });

  it('a revoked superseded key has nothing left to do', () => {
    const { retired } = rotateRecord(makeRecord({ createdAt: T0 }), spec(T0, DAY));
    expect(pendingSteps({ ...retired, state: 'revoked' }, AUTO)).toEqual([]);
  });
});
