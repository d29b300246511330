import fc from 'fast-check';
import { ManualClock } from '../../../src/domain/clock';
import type { KeyRecord } from '../../../src/domain/key-record';
import { ScopeSet } from '../../../src/domain/scopes';
import { toValidateKeyResponse } from '../../../src/codec/proto-mapping';
import { CACHED_RECORD_FIELDS, decide, toCachedRecord, toValidationEntry, type ValidationRequest } from '../../../src/domain/validation';
import { makeRecord } from '../helpers/records';

const T0 = 1_700_000_000_000;

function entry(overrides: Partial<KeyRecord> = {}) {
  return toValidationEntry(makeRecord({ service: 'orders', scopes: ['orders:read', 'billing:*'], ...overrides }));
}

const anyService: ValidationRequest = { requiredScopes: [] };

describe('toValidationEntry', () => {
  it('keeps the record and prepares its scopes', () => {
    const record = makeRecord({ scopes: ['a', 'b:*'] });
    const e = toValidationEntry(record);
    expect(e.record).toBe(record);
    expect(e.scopes).toBeInstanceOf(ScopeSet);
    expect(e.scopes.grants('a')).toBe(true);
    expect(e.scopes.grants('b:c')).toBe(true);
    expect(e.scopes.grants('c')).toBe(false);
  });

  it('shares the ScopeSet of records that grant the same scopes', () => {
    expect(toValidationEntry(makeRecord({ scopes: ['s:1'] })).scopes).toBe(toValidationEntry(makeRecord({ id: 'key_2', scopes: ['s:1'] })).scopes);
  });
});

describe('toCachedRecord', () => {
  const full = makeRecord({
    scopes: ['orders:read', 'billing:*'],
    notBefore: T0 - 5,
    expiresAt: T0 + 1_000,
    policyId: 'pol_1',
    credits: 10,
    rotatedTo: 'key_next',
    rotatedFrom: 'key_prev',
    rotatedAt: T0 - 100,
    graceEndsAt: T0 + 500,
    limitsId: 'key_first',
    lastUsedAt: T0 - 1,
    revokeReason: 'x',
  });

  it('keeps exactly the cached fields that are set, with the same values', () => {
    const slim = toCachedRecord(full);
    expect(Object.keys(slim).sort()).toEqual(CACHED_RECORD_FIELDS.filter((f) => full[f] !== undefined).sort());
    for (const f of CACHED_RECORD_FIELDS) expect(slim[f]).toEqual(full[f]);
    expect(Object.isFrozen(slim)).toBe(true);
    expect(Object.isFrozen(slim.scopes)).toBe(true);
  });

  it('shares one metadata object between records with equal metadata, and leaves the store record unfrozen', () => {
    const a = makeRecord({ metadata: { plan: 'pro', region: 'eu' } });
    const b = makeRecord({ id: 'key_2', metadata: { plan: 'pro', region: 'eu' } });
    const c = makeRecord({ id: 'key_3', metadata: { region: 'eu', plan: 'pro' } });
    const [sa, sb, sc] = [a, b, c].map(toCachedRecord);
    expect(sb.metadata).toBe(sa.metadata);
    expect(sb.metadata).not.toBe(b.metadata);
    expect(sc.metadata).not.toBe(sa.metadata); // other order: kept apart, still equal
    expect(sc.metadata).toEqual(c.metadata);
    expect(Object.isFrozen(a)).toBe(false);
    expect(toCachedRecord(makeRecord({ metadata: { plan: 'free' } })).metadata).toEqual({ plan: 'free' });
  });

  it('keeps what decide and the answer read: property, same decision and same answer as the full record', () => {
    const scope = fc.constantFrom('orders:read', 'orders:write', 'billing:x', 'other');
    const optionalTime = fc.option(fc.integer({ min: T0 - 2_000, max: T0 + 2_000 }), { nil: undefined });
    fc.assert(
      fc.property(
        fc.record({
          state: fc.constantFrom('active' as const, 'disabled' as const, 'revoked' as const, 'rotated' as const),
          notBefore: optionalTime,
          expiresAt: optionalTime,
          graceEndsAt: optionalTime,
          rotatedTo: fc.option(fc.constant('key_next'), { nil: undefined }),
          createdAt: fc.integer({ min: T0 - 5_000, max: T0 }),
        }),
        fc.array(scope, { maxLength: 2 }),
        fc.constantFrom(undefined, 'orders', 'billing'),
        fc.integer({ min: T0 - 2_000, max: T0 + 2_000 }),
        (over, required, service, now) => {
          const record = makeRecord({ ...over, scopes: ['orders:read', 'billing:*'] });
          const request: ValidationRequest = { service, requiredScopes: required };
          const fromFull = decide(toValidationEntry(record), request, now);
          const fromSlim = decide(toValidationEntry(toCachedRecord(record)), request, now);
          expect({ ...fromSlim, record: undefined }).toEqual({ ...fromFull, record: undefined });
          expect(toValidateKeyResponse(fromSlim)).toEqual(toValidateKeyResponse(fromFull));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('decide', () => {
  let clock: ManualClock;
  beforeEach(() => {
    clock = new ManualClock(T0);
  });

  it('NOT_FOUND for a missing key, without a record', () => {
    const d = decide(undefined, { service: 'orders', requiredScopes: [] }, clock.now());
    expect(d.code).toBe('NOT_FOUND');
    expect(d.reason).toBe('');
    expect(d.record).toBeUndefined();
  });

  it("NOT_FOUND for another service's key, and the record is not leaked", () => {
    const e = entry({ state: 'revoked' });
    const d = decide(e, { service: 'billing', requiredScopes: ['orders:read'] }, clock.now());
    expect(d.code).toBe('NOT_FOUND');
    expect(d.record).toBeUndefined();
    expect(d).not.toHaveProperty('record');
    expect(JSON.stringify(d)).not.toContain(e.record.id);
    // The same answer as a missing key: nothing distinguishes them.
    expect(d).toEqual(decide(undefined, { service: 'billing', requiredScopes: [] }, clock.now()));
  });

  it('accepts any service when the request names none (undefined or empty)', () => {
    expect(decide(entry(), anyService, clock.now()).code).toBe('VALID');
    expect(decide(entry(), { service: '', requiredScopes: [] }, clock.now()).code).toBe('VALID');
    expect(decide(entry(), { service: 'orders', requiredScopes: [] }, clock.now()).code).toBe('VALID');
  });

  it('REVOKED for a revoked key', () => {
    const e = entry({ state: 'revoked', revokedAt: T0 - 1 });
    const d = decide(e, { service: 'orders', requiredScopes: [] }, clock.now());
    expect(d).toEqual({ code: 'REVOKED', reason: 'revoked', record: e.record });
  });

  it('DISABLED for a disabled key', () => {
    const e = entry({ state: 'disabled' });
    expect(decide(e, anyService, clock.now())).toEqual({ code: 'DISABLED', reason: 'disabled', record: e.record });
  });

  it('NOT_YET_VALID before not-before; valid from exactly not-before', () => {
    const e = entry({ notBefore: T0 + 1000 });
    clock.set(T0 + 999);
    expect(decide(e, anyService, clock.now())).toEqual({ code: 'NOT_YET_VALID', reason: 'not_before', record: e.record });
    clock.set(T0 + 1000);
    expect(decide(e, anyService, clock.now()).code).toBe('VALID');
    clock.advance(1);
    expect(decide(e, anyService, clock.now()).code).toBe('VALID');
  });

  it('EXPIRED from exactly expiresAt; valid one millisecond before', () => {
    const e = entry({ expiresAt: T0 + 1000 });
    clock.set(T0 + 999);
    expect(decide(e, anyService, clock.now()).code).toBe('VALID');
    clock.set(T0 + 1000);
    expect(decide(e, anyService, clock.now())).toEqual({ code: 'EXPIRED', reason: 'expired', record: e.record });
    clock.advance(10_000_000);
    expect(decide(e, anyService, clock.now()).code).toBe('EXPIRED');
  });

  it('INSUFFICIENT_SCOPE naming the first missing scope', () => {
    const e = entry();
    const d = decide(e, { requiredScopes: ['orders:read', 'orders:write', 'admin'] }, clock.now());
    expect(d).toEqual({ code: 'INSUFFICIENT_SCOPE', reason: 'missing_scope:orders:write', record: e.record });
  });

  it('VALID when every required scope is granted, with an empty reason and the record', () => {
    const e = entry();
    const d = decide(e, { service: 'orders', requiredScopes: ['orders:read', 'billing:refund'] }, clock.now());
    expect(d).toEqual({ code: 'VALID', reason: '', record: e.record });
  });

  describe('checks in order: tenant, state, window, scopes', () => {
    const T = T0;
    const cases: Array<[string, Partial<KeyRecord>, ValidationRequest, string]> = [
      ['other service beats revoked', { state: 'revoked' }, { service: 'x', requiredScopes: ['nope'] }, 'NOT_FOUND'],
      ['revoked beats not-yet-valid', { state: 'revoked', notBefore: T + 10 }, anyService, 'REVOKED'],
      ['revoked beats expired', { state: 'revoked', expiresAt: T - 10 }, anyService, 'REVOKED'],
      ['revoked beats scope', { state: 'revoked' }, { requiredScopes: ['nope'] }, 'REVOKED'],
      ['disabled beats expired', { state: 'disabled', expiresAt: T - 10 }, anyService, 'DISABLED'],
      ['disabled beats scope', { state: 'disabled' }, { requiredScopes: ['nope'] }, 'DISABLED'],
      ['not-yet-valid beats expired', { notBefore: T + 10, expiresAt: T - 10 }, anyService, 'NOT_YET_VALID'],
      ['not-yet-valid beats scope', { notBefore: T + 10 }, { requiredScopes: ['nope'] }, 'NOT_YET_VALID'],
      ['expired beats scope', { expiresAt: T }, { requiredScopes: ['nope'] }, 'EXPIRED'],
    ];
    it.each(cases)('%s', (_label, overrides, request, code) => {
      expect(decide(entry(overrides), request, T).code).toBe(code);
    });
  });

  it('uses the prepared scopes of the entry, not the record', () => {
    const record = makeRecord({ scopes: [] });
    const d = decide({ record, scopes: new ScopeSet(['x']) }, { requiredScopes: ['x'] }, T0);
    expect(d.code).toBe('VALID');
  });

  it('property: the code follows the reference order for any record and time', () => {
    const arb = fc.record({
      state: fc.constantFrom('active' as const, 'disabled' as const, 'revoked' as const),
      service: fc.constantFrom('orders', 'billing'),
      reqService: fc.constantFrom(undefined, '', 'orders', 'billing'),
      notBefore: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
      expiresAt: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
      granted: fc.subarray(['a', 'b', 'c*']),
      required: fc.subarray(['a', 'b', 'c1', 'd']),
      now: fc.integer({ min: 0, max: 100 }),
    });
    fc.assert(
      fc.property(arb, (x) => {
        const record = makeRecord({
          state: x.state,
          service: x.service,
          scopes: x.granted,
          ...(x.notBefore !== undefined && { notBefore: x.notBefore }),
          ...(x.expiresAt !== undefined && { expiresAt: x.expiresAt }),
        });
        const d = decide(toValidationEntry(record), { service: x.reqService, requiredScopes: x.required }, x.now);
        const missing = x.required.find((r) => !(x.granted.includes(r) || (r.startsWith('c') && x.granted.includes('c*'))));
        let expected: string;
        if (x.reqService && x.reqService !== x.service) expected = 'NOT_FOUND';
        else if (x.state === 'revoked') expected = 'REVOKED';
        else if (x.state === 'disabled') expected = 'DISABLED';
        else if (x.notBefore !== undefined && x.now < x.notBefore) expected = 'NOT_YET_VALID';
        else if (x.expiresAt !== undefined && x.now >= x.expiresAt) expected = 'EXPIRED';
        else if (missing !== undefined) expected = 'INSUFFICIENT_SCOPE';
        else expected = 'VALID';
        expect(d.code).toBe(expected);
        if (expected === 'NOT_FOUND') expect(d.record).toBeUndefined();
        else expect(d.record).toBe(record);
        if (expected === 'INSUFFICIENT_SCOPE') expect(d.reason).toBe(`missing_scope:${missing}`);
      }),
      { numRuns: 1000 },
    );
  });
});
