import fc from 'fast-check';
import { FailedPreconditionError, InvalidArgumentError } from '../../../src/domain/errors';
import type { Policy } from '../../../src/domain/policy';
import { checkKeyCompliance, checkPolicyFields, scopeWithin, type KeyTerms, type PolicyFields } from '../../../src/domain/policy-rules';
import { ScopeSet } from '../../../src/domain/scopes';
import { makePolicy, makePolicyFields } from '../helpers/records';

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

const fields = makePolicyFields;

const policy = (overrides: Partial<Policy> = {}): Policy => makePolicy({ createdAt: T0, updatedAt: T0, ...overrides });

function key(overrides: Partial<KeyTerms> = {}): KeyTerms {
  return { scopes: ['orders:read'], createdAt: T0, ...overrides };
}

/** The field named by the InvalidArgumentError `fn` throws. */
function fieldOf(fn: () => unknown): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InvalidArgumentError);
  return (caught as InvalidArgumentError).field;
}

/** The message of the FailedPreconditionError `fn` throws. */
function breach(fn: () => unknown): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(FailedPreconditionError);
  return (caught as Error).message;
}

const rate = (name: string, extra: Partial<{ limit: number; periodMs: number; burst: number }> = {}) => ({
  name,
  limit: 10,
  periodMs: 60_000,
  burst: 0,
  ...extra,
});

describe('checkPolicyFields', () => {
  it('accepts a complete valid policy and normalises it (de-duplicated scopes, masked CIDRs, default zone)', () => {
    const out = checkPolicyFields(
      fields({
        allowedScopes: ['orders:read', 'orders:*', 'orders:read'],
        allowedCidrs: ['10.1.2.3/8', '10.0.0.0/8', '::ffff:192.168.0.0/112'],
        timeZone: '',
        timeWindows: [{ days: ['mon', 'fri'], start: '09:00', end: '17:00' }],
        rateLimits: [rate('per-minute', { limit: 100, burst: 10 })],
        credits: { initial: 1000, refill: { period: 'monthly', amount: 500 } },
        maxLifetimeMs: 60_000,
        maxAgeMs: 90 * 86_400_000,
        maxActiveKeys: 3,
      }),
    );
    expect(out.allowedScopes).toEqual(['orders:read', 'orders:*']);
    expect(out.allowedCidrs).toEqual(['10.0.0.0/8', '192.168.0.0/16']);
    expect(out.timeZone).toBe('UTC');
    expect(out.maxLifetimeMs).toBe(60_000);
    expect(out.maxAgeMs).toBe(90 * 86_400_000);
    expect(out.credits).toEqual({ initial: 1000, refill: { period: 'monthly', amount: 500 } });
    expect(out.rateLimits).toEqual([{ name: 'per-minute', limit: 100, periodMs: 60_000, burst: 10 }]);
    expect(out.maxActiveKeys).toBe(3);
  });

  it('leaves optional fields absent when not given (no undefined-valued keys)', () => {
    const out = checkPolicyFields(fields());
    expect('maxLifetimeMs' in out).toBe(false);
    expect('maxAgeMs' in out).toBe(false);
    expect('credits' in out).toBe(false);
  });

  it('drops extra fields of a credit rule without refill', () => {
    expect(checkPolicyFields(fields({ credits: { initial: 0 } })).credits).toEqual({ initial: 0 });
  });

  it.each<[string, Partial<PolicyFields>, string]>([
    ['bad service', { service: 'Orders' }, 'policy.service'],
    ['control characters in name', { name: 'a\nb' }, 'policy.name'],
    ['name too long', { name: 'x'.repeat(129) }, 'policy.name'],
    ['second allowed scope invalid', { allowedScopes: ['orders:read', 'bad scope'] }, 'policy.allowed_scopes[1]'],
    ['too many allowed scopes', { allowedScopes: Array.from({ length: 65 }, (_, i) => `s${i}`) }, 'policy.allowed_scopes'],
    ['first CIDR invalid', { allowedCidrs: ['10.0.0.0/33'] }, 'policy.allowed_cidrs[0]'],
    ['third CIDR invalid', { allowedCidrs: ['10.0.0.0/8', '::1', '010.0.0.1'] }, 'policy.allowed_cidrs[2]'],
    ['unknown time zone', { timeZone: 'Mars/Olympus' }, 'policy.time_zone'],
    ['offset spelled as a zone', { timeZone: '+05:30' }, 'policy.time_zone'],
    ['window end before start', { timeWindows: [{ days: ['mon'], start: '10:00', end: '09:00' }] }, 'policy.time_windows[0].end'],
    [
      'second window with a repeated day',
      { timeWindows: [{ days: ['mon'], start: '09:00', end: '10:00' }, { days: ['tue', 'tue'], start: '09:00', end: '10:00' }] },
      'policy.time_windows[1].days[1]',
    ],
    ['window start 24:00', { timeWindows: [{ days: ['mon'], start: '24:00', end: '24:00' }] }, 'policy.time_windows[0].start'],
    ['rate limit name', { rateLimits: [rate('Bad Name')] }, 'policy.rate_limits[0].name'],
    ['duplicate rate limit name', { rateLimits: [rate('a'), rate('a')] }, 'policy.rate_limits[1].name'],
    ['rate limit period below 1s', { rateLimits: [rate('a', { periodMs: 999 })] }, 'policy.rate_limits[0].period'],
    ['rate limit period above 366d', { rateLimits: [rate('a'), rate('b', { periodMs: 366 * 86_400_000 + 1 })] }, 'policy.rate_limits[1].period'],
    ['rate limit period NaN', { rateLimits: [rate('a', { periodMs: Number.NaN })] }, 'policy.rate_limits[0].period'],
    ['rate limit limit 0', { rateLimits: [rate('a', { limit: 0 })] }, 'policy.rate_limits[0].limit'],
    ['rate limit limit fractional', { rateLimits: [rate('a', { limit: 1.5 })] }, 'policy.rate_limits[0].limit'],
    ['rate limit negative burst', { rateLimits: [rate('a', { burst: -1 })] }, 'policy.rate_limits[0].burst'],
    ['too many rate limits', { rateLimits: Array.from({ length: 9 }, (_, i) => rate(`r${i}`)) }, 'policy.rate_limits'],
    ['negative initial credits', { credits: { initial: -1 } }, 'policy.credits.initial'],
    ['initial credits above 1e9', { credits: { initial: 1_000_000_001 } }, 'policy.credits.initial'],
    ['refill amount 0', { credits: { initial: 1, refill: { period: 'daily', amount: 0 } } }, 'policy.credits.refill.amount'],
    [
      'refill period unknown',
      { credits: { initial: 1, refill: { period: 'weekly' as 'daily', amount: 1 } } },
      'policy.credits.refill.period',
    ],
    ['negative max_active_keys', { maxActiveKeys: -1 }, 'policy.max_active_keys'],
    ['fractional max_active_keys', { maxActiveKeys: 2.5 }, 'policy.max_active_keys'],
    ['max lifetime under a minute', { maxLifetimeMs: 59_999 }, 'policy.max_lifetime'],
    ['max lifetime infinite', { maxLifetimeMs: Number.POSITIVE_INFINITY }, 'policy.max_lifetime'],
    ['max age under a minute', { maxAgeMs: 1000 }, 'policy.max_age'],
  ])('names the proto path of a bad field: %s', (_label, overrides, field) => {
    expect(fieldOf(() => checkPolicyFields(fields(overrides)))).toBe(field);
  });

  it('uses the given prefix for field names', () => {
    expect(fieldOf(() => checkPolicyFields(fields({ rateLimits: [rate('a', { periodMs: 10 })] }), 'request.policy.'))).toBe(
      'request.policy.rate_limits[0].period',
    );
  });

  it('accepts the boundaries: period 1s and 366d, max_active_keys 0 and 1e9, age of exactly one minute, 8 rate limits', () => {
    const out = checkPolicyFields(
      fields({
        rateLimits: [rate('a', { periodMs: 1000 }), rate('b', { periodMs: 366 * 86_400_000 }), ...Array.from({ length: 6 }, (_, i) => rate(`c${i}`))],
        maxActiveKeys: 1_000_000_000,
        maxLifetimeMs: 60_000,
        maxAgeMs: 60_000,
      }),
    );
    expect(out.rateLimits).toHaveLength(8);
    expect(checkPolicyFields(fields({ maxActiveKeys: 0 })).maxActiveKeys).toBe(0);
    expect(fieldOf(() => checkPolicyFields(fields({ maxActiveKeys: 1_000_000_001 })))).toBe('policy.max_active_keys');
  });
});

describe('scopeWithin', () => {
  const within = (scope: string, allowed: string[]) => scopeWithin(scope, new ScopeSet(allowed), allowed);

  it('an exact scope is within an exact or a covering wildcard scope', () => {
    expect(within('orders:read', ['orders:read'])).toBe(true);
    expect(within('orders:read', ['orders:*'])).toBe(true);
    expect(within('orders:read', ['*'])).toBe(true);
    expect(within('orders:write', ['orders:read'])).toBe(false);
    expect(within('orders', ['orders:*'])).toBe(false);
  });

  it('a wildcard is within a wildcard only when it is the same or narrower', () => {
    expect(within('orders:*', ['orders:*'])).toBe(true);
    expect(within('orders:items:*', ['orders:*'])).toBe(true);
    expect(within('orders:*', ['*'])).toBe(true);
    expect(within('*', ['*'])).toBe(true);
    expect(within('orders:*', ['orders:items:*'])).toBe(false);
    expect(within('*', ['orders:*'])).toBe(false);
    expect(within('o*', ['orders:*'])).toBe(false);
  });

  it('a wildcard is never within exact scopes, even one spelled the same', () => {
    expect(within('orders:*', ['orders:*x', 'orders:read', 'orders:write'])).toBe(false);
    expect(within('orders:read*', ['orders:read'])).toBe(false);
  });

  it('property: a key scope within the allowed list grants nothing the list does not grant (narrow, never widen)', () => {
    // A small alphabet so prefixes, wildcards and collisions happen often.
    const segment = fc.constantFrom('a', 'b', 'ab', 'a:', 'b:', ':', 'a.b');
    const base = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join(''));
    const scope = fc.oneof(base, base.map((s) => `${s}*`), fc.constant('*'));
    const stemOf = (s: string) => (s.endsWith('*') ? s.slice(0, -1) : s);
    // Key scopes near the allowed ones (same stem, longer, shorter, wildcard of an exact one):
    // independent draws would almost never probe the interesting boundaries.
    const case_ = fc.array(scope, { minLength: 1, maxLength: 5 }).chain((allowedList) =>
      fc.tuple(
        fc.constant(allowedList),
        fc.oneof(
          scope,
          fc
            .tuple(fc.constantFrom(...allowedList), fc.nat({ max: 8 }), fc.constantFrom('', 'a', 'b:', ':'), fc.boolean())
            .map(([a, cut, ext, wild]) => `${stemOf(a).slice(0, Math.max(0, stemOf(a).length - cut))}${ext}${wild ? '*' : ''}`)
            .filter((s) => s.length > 0),
        ),
      ),
    );
    fc.assert(
      fc.property(case_, fc.array(base, { minLength: 1, maxLength: 20 }), ([allowedList, keyScope], probes) => {
        const allowed = new ScopeSet(allowedList);
        if (!scopeWithin(keyScope, allowed, allowedList)) return;
        const granted = new ScopeSet([keyScope]);
        // Probe concrete scopes, including those extending the key scope's own prefix.
        const stem = keyScope.endsWith('*') ? keyScope.slice(0, -1) : keyScope;
        for (const probe of [...probes, stem, ...probes.map((p) => stem + p)]) {
          if (granted.grants(probe)) expect(allowed.grants(probe)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('checkKeyCompliance', () => {
  it('an empty allowed list allows any scope', () => {
    expect(() => checkKeyCompliance(policy(), key({ scopes: ['*', 'anything:at:all'] }))).not.toThrow();
  });

  it('allowed_scopes: exact matches and wildcards within wildcards pass', () => {
    const p = policy({ allowedScopes: ['orders:read', 'billing:*'] });
    expect(() => checkKeyCompliance(p, key({ scopes: ['orders:read', 'billing:invoices', 'billing:*', 'billing:x:*'] }))).not.toThrow();
    expect(() => checkKeyCompliance(p, key({ scopes: [] }))).not.toThrow();
  });

  it('allowed_scopes: a wildcard is not within an exact scope; the breach names the rule, the policy and the scopes', () => {
    const p = policy({ allowedScopes: ['orders:read', 'orders:write'] });
    const msg = breach(() => checkKeyCompliance(p, key({ scopes: ['orders:read', 'orders:*', 'admin'] })));
    expect(msg).toContain('rule allowed_scopes');
    expect(msg).toContain(p.id);
    expect(msg).toContain('orders:*, admin');
    expect(msg).not.toContain('orders:read,');
  });

  it('require_expiry: a key without expiry is refused, one with expiry passes', () => {
    const p = policy({ requireExpiry: true });
    expect(breach(() => checkKeyCompliance(p, key()))).toContain('rule require_expiry');
    expect(() => checkKeyCompliance(p, key({ expiresAt: T0 + HOUR }))).not.toThrow();
  });

  it('max_lifetime: exactly the maximum is allowed, one millisecond more is refused', () => {
    const p = policy({ maxLifetimeMs: 24 * HOUR });
    expect(() => checkKeyCompliance(p, key({ expiresAt: T0 + 24 * HOUR }))).not.toThrow();
    const msg = breach(() => checkKeyCompliance(p, key({ expiresAt: T0 + 24 * HOUR + 1 })));
    expect(msg).toContain('rule max_lifetime');
    expect(msg).toContain('86400s');
  });

  it('max_lifetime without require_expiry: a key with no expiry passes (only require_expiry demands one)', () => {
    expect(() => checkKeyCompliance(policy({ maxLifetimeMs: HOUR }), key())).not.toThrow();
  });

  it('max_lifetime is measured from the key creation, not from now', () => {
    const p = policy({ maxLifetimeMs: HOUR });
    expect(() => checkKeyCompliance(p, key({ createdAt: T0 - HOUR, expiresAt: T0 + 1 }))).toThrow(FailedPreconditionError);
    expect(() => checkKeyCompliance(p, key({ createdAt: T0 - HOUR, expiresAt: T0 }))).not.toThrow();
  });

  it('credits: a key may start with at most the policy initial credits', () => {
    const p = policy({ credits: { initial: 100 } });
    expect(() => checkKeyCompliance(p, key({ credits: 100 }))).not.toThrow();
    expect(() => checkKeyCompliance(p, key({ credits: 0 }))).not.toThrow();
    expect(() => checkKeyCompliance(p, key())).not.toThrow();
    const msg = breach(() => checkKeyCompliance(p, key({ credits: 101 })));
    expect(msg).toContain('rule credits');
    expect(msg).toContain('100');
    // No credit rule in the policy: the key's own credits are not bounded by it.
    expect(() => checkKeyCompliance(policy(), key({ credits: 1_000_000 }))).not.toThrow();
  });

  it('checks the rules in order: scopes before expiry', () => {
    const p = policy({ allowedScopes: ['a'], requireExpiry: true });
    expect(breach(() => checkKeyCompliance(p, key({ scopes: ['b'] })))).toContain('rule allowed_scopes');
  });
});
