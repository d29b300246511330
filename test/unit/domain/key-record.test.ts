import fc from 'fast-check';
import { FailedPreconditionError } from '../../../src/domain/errors';
import { applyChanges, KEY_STATES, revoke, type KeyChanges, type KeyRecord } from '../../../src/domain/key-record';
import { makeRecord } from '../helpers/records';

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

const NOW = 5_000;

describe('KEY_STATES', () => {
  it('lists the four lifecycle states', () => {
    expect([...KEY_STATES]).toEqual(['active', 'disabled', 'revoked', 'rotated']);
  });
});

describe('applyChanges', () => {
  const base = deepFreeze(makeRecord({ expiresAt: 9_000, notBefore: 500, version: 3, createdAt: 100, updatedAt: 200 }));

  it('is pure: returns a new record and leaves the input unchanged', () => {
    const snapshot = JSON.stringify(base);
    const next = applyChanges(base, { name: 'renamed' }, NOW);
    expect(next).not.toBe(base);
    expect(JSON.stringify(base)).toBe(snapshot);
  });

  it('bumps the version and updatedAt, and keeps identity and creation fields', () => {
    const next = applyChanges(base, {}, NOW);
    expect(next.version).toBe(4);
    expect(next.updatedAt).toBe(NOW);
    expect(next.createdAt).toBe(100);
    for (const k of ['id', 'hash', 'service', 'owner', 'prefix', 'hint', 'notBefore', 'usageCount'] as const) {
      expect(next[k]).toEqual(base[k]);
    }
  });

  it('with no changes keeps every changeable field', () => {
    const next = applyChanges(base, {}, NOW);
    expect(next).toEqual({ ...base, version: 4, updatedAt: NOW });
  });

  it('changes name, scopes and metadata', () => {
    const next = applyChanges(base, { name: 'n2', scopes: ['x', 'y:*'], metadata: { a: '1' } }, NOW);
    expect(next.name).toBe('n2');
    expect(next.scopes).toEqual(['x', 'y:*']);
    expect(next.metadata).toEqual({ a: '1' });
  });

  it('sets the name to an empty string when asked (empty is a value, not "unchanged")', () => {
    expect(applyChanges(base, { name: '' }, NOW).name).toBe('');
    expect(applyChanges(base, { scopes: [] }, NOW).scopes).toEqual([]);
    expect(applyChanges(base, { metadata: {} }, NOW).metadata).toEqual({});
  });

  it('sets, keeps and clears the expiry', () => {
    expect(applyChanges(base, { expiresAt: 20_000 }, NOW).expiresAt).toBe(20_000);
    expect(applyChanges(base, {}, NOW).expiresAt).toBe(9_000);
    expect(applyChanges(base, { expiresAt: undefined }, NOW).expiresAt).toBe(9_000);
    const cleared = applyChanges(base, { expiresAt: null }, NOW);
    expect(cleared.expiresAt).toBeUndefined();
    expect('expiresAt' in cleared).toBe(false);
    const noExpiry = makeRecord();
    expect('expiresAt' in applyChanges(noExpiry, { name: 'x' }, NOW)).toBe(false);
  });

  it('enables and disables', () => {
    const disabled = applyChanges(base, { enabled: false }, NOW);
    expect(disabled.state).toBe('disabled');
    expect(applyChanges(disabled, { enabled: true }, NOW).state).toBe('active');
    expect(applyChanges(disabled, { enabled: false }, NOW).state).toBe('disabled');
    expect(applyChanges(base, { enabled: true }, NOW).state).toBe('active');
  });

  it('keeps the state when enabled is not given', () => {
    const disabled = makeRecord({ state: 'disabled' });
    expect(applyChanges(disabled, { name: 'x' }, NOW).state).toBe('disabled');
    expect(applyChanges(base, { name: 'x' }, NOW).state).toBe('active');
  });

  it.each<KeyChanges>([{}, { name: 'x' }, { enabled: true }, { enabled: false }, { expiresAt: null }, { scopes: [] }])(
    'refuses to change a revoked key (%p) with FailedPreconditionError',
    (changes) => {
      const revoked = deepFreeze(makeRecord({ state: 'revoked', revokedAt: 10, version: 2 }));
      let err: unknown;
      try {
        applyChanges(revoked, changes, NOW);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FailedPreconditionError);
      expect((err as FailedPreconditionError).kind).toBe('failed_precondition');
      expect((err as Error).message).toContain(revoked.id);
    },
  );

  it('property: only the requested fields change', () => {
    const changesArb = fc.record(
      {
        name: fc.string({ maxLength: 10 }),
        scopes: fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
        metadata: fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 3 }),
        expiresAt: fc.option(fc.nat(), { nil: null }),
        enabled: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.constantFrom<KeyRecord['state']>('active', 'disabled'), changesArb, (state, changes) => {
        const before = deepFreeze(makeRecord({ state, expiresAt: 777 }));
        const after = applyChanges(before, changes, NOW);
        expect(after.name).toBe(changes.name ?? before.name);
        expect(after.scopes).toEqual(changes.scopes ?? before.scopes);
        expect(after.metadata).toEqual(changes.metadata ?? before.metadata);
        if (changes.expiresAt === null) expect('expiresAt' in after).toBe(false);
        else expect(after.expiresAt).toBe(changes.expiresAt ?? 777);
        expect(after.state).toBe(changes.enabled === undefined ? state : changes.enabled ? 'active' : 'disabled');
        expect(after.version).toBe(before.version + 1);
      }),
      { numRuns: 300 },
    );
  });
});

describe('revoke', () => {
  it('revokes an active key: state, time, reason, updatedAt, version', () => {
    const active = deepFreeze(makeRecord({ version: 7 }));
    const r = revoke(active, 'leaked in CI logs', NOW);
    expect(r).toEqual({
      ...active,
      state: 'revoked',
      revokedAt: NOW,
      revokeReason: 'leaked in CI logs',
      updatedAt: NOW,
      version: 8,
    });
    expect(active.state).toBe('active');
  });

  it('revokes a disabled key', () => {
    const r = revoke(makeRecord({ state: 'disabled' }), '', NOW);
    expect(r.state).toBe('revoked');
    expect(r.revokeReason).toBe('');
  });

  it('is idempotent: revoking a revoked key returns it unchanged (same object)', () => {
    const first = revoke(makeRecord(), 'first reason', NOW);
    const second = revoke(first, 'second reason', NOW + 1000);
    expect(second).toBe(first);
    expect(second.revokeReason).toBe('first reason');
    expect(second.revokedAt).toBe(NOW);
    expect(second.version).toBe(first.version);
  });

  it('then refuses any change', () => {
    const r = revoke(makeRecord(), 'x', NOW);
    expect(() => applyChanges(r, { enabled: true }, NOW)).toThrow(FailedPreconditionError);
  });
});
