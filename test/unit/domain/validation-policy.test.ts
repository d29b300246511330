import { ManualClock } from '../../../src/domain/clock';
import type { Policy } from '../../../src/domain/policy';
import { compilePolicy, effectiveCredits, type CompiledPolicy } from '../../../src/domain/policy-evaluation';
import { decide, toValidationEntry, type ValidationRequest } from '../../../src/domain/validation';
import type { KeyRecord } from '../../../src/domain/key-record';
import { makePolicy, makeRecord } from '../helpers/records';

/** Tuesday 2023-11-14 10:00 UTC = 11:00 in Berlin (CET, UTC+1). */
const TUE_10Z = Date.UTC(2023, 10, 14, 10, 0);
const HOUR = 3_600_000;

const policy = makePolicy;

const compiled = (overrides: Partial<Policy> = {}): CompiledPolicy => compilePolicy(policy(overrides));

function req(overrides: Partial<ValidationRequest> = {}): ValidationRequest {
  return { service: 'orders', requiredScopes: [], clientIp: '10.1.2.3', ...overrides };
}

const entry = (overrides: Partial<KeyRecord> = {}) => toValidationEntry(makeRecord({ scopes: ['orders:*'], ...overrides }));

const officeHours = compiled({
  timeZone: 'Europe/Berlin',
  timeWindows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '17:00' }],
});
const officeNetwork = compiled({ allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'] });

describe('compilePolicy', () => {
  it('builds matchers only for non-empty rules', () => {
    const bare = compiled();
    expect(bare.allowedScopes).toBeUndefined();
    expect(bare.cidrs).toBeUndefined();
    expect(bare.windows).toBeUndefined();
    expect(bare.hasLimits).toBe(false);
    const full = compiled({
      allowedScopes: ['orders:*'],
      allowedCidrs: ['10.0.0.0/8'],
      timeWindows: [{ days: ['mon'], start: '00:00', end: '24:00' }],
    });
    expect(full.allowedScopes?.grants('orders:read')).toBe(true);
    expect(full.cidrs?.contains('10.9.9.9')).toBe(true);
    expect(full.windows).toBeDefined();
  });

  it('hasLimits when the policy has rate limits or credits', () => {
    expect(compiled({ rateLimits: [{ name: 'a', limit: 1, periodMs: 1000, burst: 0 }] }).hasLimits).toBe(true);
    expect(compiled({ credits: { initial: 0 } }).hasLimits).toBe(true);
  });
});

describe('decide with a policy: order of checks', () => {
  it('a revoked key outside the network is REVOKED, not FORBIDDEN', () => {
    const d = decide(entry({ state: 'revoked' }), req({ clientIp: '192.168.0.1' }), TUE_10Z, officeNetwork);
    expect(d.code).toBe('REVOKED');
  });

  it('a disabled key with a missing policy is DISABLED, not FORBIDDEN', () => {
    expect(decide(entry({ state: 'disabled' }), req(), TUE_10Z, null).code).toBe('DISABLED');
  });

  it('an expired key outside the time window is EXPIRED', () => {
    const at = TUE_10Z + 8 * HOUR; // 19:00 Berlin: outside
    const d = decide(entry({ expiresAt: at - 1 }), req(), at, officeHours);
    expect(d).toMatchObject({ code: 'EXPIRED', reason: 'expired' });
  });

  it('a not-yet-valid key with a missing policy is NOT_YET_VALID', () => {
    expect(decide(entry({ notBefore: TUE_10Z + 1 }), req(), TUE_10Z, null).code).toBe('NOT_YET_VALID');
  });

  it('a key of another service is NOT_FOUND whatever the policy says', () => {
    const d = decide(entry({ service: 'billing' }), req({ clientIp: '' }), TUE_10Z, null);
    expect(d.code).toBe('NOT_FOUND');
    expect(d.record).toBeUndefined();
  });

  it('FORBIDDEN comes before INSUFFICIENT_SCOPE (network, then time window, then scopes)', () => {
    const both = compiled({
      allowedCidrs: ['10.0.0.0/8'],
      timeZone: 'Europe/Berlin',
      timeWindows: [{ days: ['tue'], start: '09:00', end: '17:00' }],
      allowedScopes: ['orders:read'],
    });
    const missingScope = req({ requiredScopes: ['billing:read'] });
    expect(decide(entry(), { ...missingScope, clientIp: '192.168.0.1' }, TUE_10Z + 8 * HOUR, both).reason).toBe('ip_not_allowed');
    expect(decide(entry(), missingScope, TUE_10Z + 8 * HOUR, both).reason).toBe('outside_time_window');
    expect(decide(entry(), missingScope, TUE_10Z, both)).toMatchObject({ code: 'INSUFFICIENT_SCOPE', reason: 'missing_scope:billing:read' });
  });

  it('a missing key scope is reported before a scope the policy does not allow', () => {
    const p = compiled({ allowedScopes: ['orders:read'] });
    const d = decide(entry({ scopes: ['orders:write'] }), req({ requiredScopes: ['orders:write', 'billing:read'] }), TUE_10Z, p);
    expect(d.reason).toBe('missing_scope:billing:read');
  });
});

describe('decide with a policy: the rules', () => {
  it('null policy (the key names a policy that no longer exists) is FORBIDDEN policy_missing, with the record', () => {
    const e = entry();
    const d = decide(e, req(), TUE_10Z, null);
    expect(d).toEqual({ code: 'FORBIDDEN', reason: 'policy_missing', record: e.record });
  });

  it('undefined policy (none applies) leaves the key VALID', () => {
    expect(decide(entry(), req({ clientIp: '' }), TUE_10Z, undefined).code).toBe('VALID');
    expect(decide(entry(), req({ clientIp: '' }), TUE_10Z).code).toBe('VALID');
  });

  it('a policy with no rules leaves the key VALID', () => {
    expect(decide(entry(), req({ clientIp: '', requiredScopes: ['orders:read'] }), TUE_10Z, compiled()).code).toBe('VALID');
  });

  it('network rule: an unknown client address is FORBIDDEN client_ip_required', () => {
    const d = decide(entry(), req({ clientIp: '' }), TUE_10Z, officeNetwork);
    expect(d).toMatchObject({ code: 'FORBIDDEN', reason: 'client_ip_required' });
    expect(decide(entry(), { service: 'orders', requiredScopes: [] }, TUE_10Z, officeNetwork).reason).toBe('client_ip_required');
  });

  it('network rule: an address outside every range is FORBIDDEN ip_not_allowed; inside is VALID', () => {
    expect(decide(entry(), req({ clientIp: '11.0.0.1' }), TUE_10Z, officeNetwork)).toMatchObject({ code: 'FORBIDDEN', reason: 'ip_not_allowed' });
    expect(decide(entry(), req({ clientIp: '2001:db9::1' }), TUE_10Z, officeNetwork).reason).toBe('ip_not_allowed');
    expect(decide(entry(), req({ clientIp: '10.255.255.255' }), TUE_10Z, officeNetwork).code).toBe('VALID');
    expect(decide(entry(), req({ clientIp: '2001:db8:ffff::1' }), TUE_10Z, officeNetwork).code).toBe('VALID');
    // IPv4-mapped IPv6 peers are their IPv4 address.
    expect(decide(entry(), req({ clientIp: '::ffff:10.0.0.7' }), TUE_10Z, officeNetwork).code).toBe('VALID');
  });

  it('time window rule: judged at the given instant in the policy time zone, boundaries exact', () => {
    const clock = new ManualClock(TUE_10Z);
    const at = () => decide(entry(), req(), clock.now(), officeHours);
    expect(at().code).toBe('VALID'); // 11:00 Berlin
    clock.set(Date.UTC(2023, 10, 14, 8, 0)); // 09:00 Berlin: start is inclusive
    expect(at().code).toBe('VALID');
    clock.advance(-1); // 08:59:59.999
    expect(at()).toMatchObject({ code: 'FORBIDDEN', reason: 'outside_time_window' });
    clock.set(Date.UTC(2023, 10, 14, 16, 0) - 1); // 16:59:59.999 Berlin
    expect(at().code).toBe('VALID');
    clock.advance(1); // 17:00: end is exclusive
    expect(at().reason).toBe('outside_time_window');
    clock.set(Date.UTC(2023, 10, 18, 10, 0)); // Saturday 11:00 Berlin
    expect(at().reason).toBe('outside_time_window');
  });

  it('a scope granted by the key but not allowed by the policy is INSUFFICIENT_SCOPE scope_not_allowed:<scope>', () => {
    const p = compiled({ allowedScopes: ['orders:read', 'orders:items:*'] });
    const e = entry({ scopes: ['orders:*'] });
    expect(decide(e, req({ requiredScopes: ['orders:read', 'orders:write'] }), TUE_10Z, p)).toMatchObject({
      code: 'INSUFFICIENT_SCOPE',
      reason: 'scope_not_allowed:orders:write',
      record: e.record,
    });
    expect(decide(e, req({ requiredScopes: ['orders:read', 'orders:items:42'] }), TUE_10Z, p).code).toBe('VALID');
  });

  it('every local rule satisfied at once is VALID', () => {
    const p = compiled({
      allowedScopes: ['orders:*'],
      allowedCidrs: ['10.0.0.0/8'],
      timeZone: 'Europe/Berlin',
      timeWindows: [{ days: ['tue'], start: '09:00', end: '17:00' }],
    });
    expect(decide(entry(), req({ requiredScopes: ['orders:read'] }), TUE_10Z, p)).toMatchObject({ code: 'VALID', reason: '' });
  });
});

describe('effectiveCredits', () => {
  const refill = { period: 'daily' as const, amount: 50 };

  it('no policy credits and no key credits: none', () => {
    expect(effectiveCredits(undefined, undefined)).toBeUndefined();
    expect(effectiveCredits(policy(), undefined)).toBeUndefined();
  });

  it('policy credits only: the policy rule as is', () => {
    expect(effectiveCredits(policy({ credits: { initial: 100, refill } }), undefined)).toEqual({ initial: 100, refill });
  });

  it('key credits only: the key starts with its own credits, no refill', () => {
    expect(effectiveCredits(undefined, 7)).toEqual({ initial: 7 });
    expect(effectiveCredits(policy(), 0)).toEqual({ initial: 0 });
  });

  it('both: the smaller initial, keeping the policy refill', () => {
    const p = policy({ credits: { initial: 100, refill } });
    expect(effectiveCredits(p, 30)).toEqual({ initial: 30, refill });
    expect(effectiveCredits(p, 500)).toEqual({ initial: 100, refill });
    expect(effectiveCredits(policy({ credits: { initial: 100 } }), 30)).toEqual({ initial: 30 });
  });

  it('does not mutate the policy rule', () => {
    const p = policy({ credits: { initial: 100, refill } });
    effectiveCredits(p, 1);
    expect(p.credits).toEqual({ initial: 100, refill });
  });
});
