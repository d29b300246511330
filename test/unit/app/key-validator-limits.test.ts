import { ValidationCache } from '../../../src/adapters/cache/validation-cache';
import { MemoryLimiter } from '../../../src/adapters/limits/memory-limiter';
import { MemoryKeyStore } from '../../../src/adapters/store/memory-key-store';
import { MemoryPolicyStore } from '../../../src/adapters/store/memory-policy-store';
import { KeyValidator, type ValidateInput, type ValidationAuditor } from '../../../src/app/key-validator';
import { PolicyResolver } from '../../../src/app/policy-resolver';
import { StoreValidationSource } from '../../../src/app/store-validation-source';
import { ManualClock } from '../../../src/domain/clock';
import { generateKey } from '../../../src/domain/key-format';
import { hashKey } from '../../../src/domain/key-hash';
import type { KeyRecord } from '../../../src/domain/key-record';
import type { Policy } from '../../../src/domain/policy';
import type { Decision } from '../../../src/domain/validation';
import { seededBytes } from '../helpers/bytes';
import { makePolicy, makeRecord } from '../helpers/records';

const T0 = 1_700_000_000_000;
const TTL = 30_000;

const LIMITED_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9A';
const CREDITS_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9B';
const LOCAL_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9C';
const GONE_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9D';

function policy(id: string, overrides: Partial<Policy> = {}): Policy {
  return makePolicy({ id, name: id.slice(-1), createdAt: T0, updatedAt: T0, ...overrides });
}

const RPS = { name: 'rps', limit: 10, periodMs: 1000, burst: 2 }; // T = 100 ms, B + 1 = 3 at once

interface Env {
  clock: ManualClock;
  policies: MemoryPolicyStore;
  limiter: MemoryLimiter;
  validator: KeyValidator;
  audited: Decision[];
  used: string[];
  /** Adds a key; returns its secret. */
  addKey: (overrides?: Partial<KeyRecord>) => Promise<string>;
  validate: (key: string, overrides?: Partial<ValidateInput>) => Decision | Promise<Decision>;
}

async function setup(opts: { source?: 'cache' | 'store'; defaultPolicy?: Partial<Policy> } = {}): Promise<Env> {
  const clock = new ManualClock(T0);
  const keys = new MemoryKeyStore();
  const policies = new MemoryPolicyStore();
  await policies.createPolicy(policy(LIMITED_ID, { rateLimits: [RPS, { name: 'per-minute', limit: 100, periodMs: 60_000, burst: 10 }] }), {
    serviceDefault: false,
  });
  await policies.createPolicy(policy(CREDITS_ID, { credits: { initial: 2 } }), { serviceDefault: false });
  await policies.createPolicy(policy(LOCAL_ID, { allowedCidrs: ['10.0.0.0/8'], allowedScopes: ['orders:read'] }), { serviceDefault: false });
  if (opts.defaultPolicy) {
    await policies.createPolicy(policy('pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9E', opts.defaultPolicy), { serviceDefault: true });
  }
  const source =
    opts.source === 'store'
      ? new StoreValidationSource(keys)
      : new ValidationCache({ load: (h) => keys.getByHash(h), clock, maxEntries: 100, ttlMs: TTL, negativeTtlMs: 1000, maxStalenessMs: 0 });
  const limiter = new MemoryLimiter();
  const audited: Decision[] = [];
  const used: string[] = [];
  const audit: ValidationAuditor = { recordValidation: (d) => audited.push(d) };
  const validator = new KeyValidator({
    source,
    clock,
    policies: new PolicyResolver({ store: policies, clock, ttlMs: TTL, maxStalenessMs: 0 }),
    limiter,
    audit,
    usage: { record: (id) => used.push(id) },
  });
  const bytes = seededBytes(3);
  let n = 0;
  const addKey = async (overrides: Partial<KeyRecord> = {}) => {
    const secret = generateKey('sk', bytes);
    n++;
    const id = `key_01JD6Z3M8Q4ZC2N1XW7V5TBR${String(n).padStart(2, '0')}`;
    await keys.create(makeRecord({ id, hash: hashKey(secret), service: 'orders', scopes: ['orders:*'], createdAt: T0, ...overrides }));
    return secret;
  };
  const validate = (key: string, overrides: Partial<ValidateInput> = {}) =>
    validator.validate(KeyValidator.checkRequest({ key, service: 'orders', requiredScopes: [], clientIp: '10.1.2.3', cost: 1, ...overrides }));
  return { clock, policies, limiter, validator, audited, used, addKey, validate };
}

describe('KeyValidator with rate limits', () => {
  it('B + 1 requests pass at one instant, each VALID carrying the limits; the next is RATE_LIMITED with the limits', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: LIMITED_ID });
    const remaining: number[] = [];
    for (let i = 0; i < 3; i++) {
      const d = await env.validate(key);
      expect(d.code).toBe('VALID');
      expect(d.limits?.creditsRemaining).toBeUndefined();
      expect(d.limits?.rateLimits.map((l) => l.name)).toEqual(['rps', 'per-minute']);
      remaining.push(d.limits!.rateLimits[0].remaining);
    }
    expect(remaining).toEqual([2, 1, 0]);
    const denied = await env.validate(key);
    expect(denied.code).toBe('RATE_LIMITED');
    expect(denied.reason).toBe('rate_limit:rps');
    expect(denied.record?.policyId).toBe(LIMITED_ID);
    expect(denied.limits?.rateLimits[0]).toMatchObject({ name: 'rps', limit: 10, remaining: 0 });
    expect(denied.limits!.rateLimits[0].resetAt).toBeGreaterThan(T0);
    expect(env.used).toHaveLength(3);
    expect(env.audited.map((d) => d.code)).toEqual(['RATE_LIMITED']);
  });

  it('one emission interval later one more request passes', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: LIMITED_ID });
    for (let i = 0; i < 3; i++) await env.validate(key);
    expect((await env.validate(key)).code).toBe('RATE_LIMITED');
    env.clock.advance(99);
    expect((await env.validate(key)).code).toBe('RATE_LIMITED');
    env.clock.advance(1);
    expect((await env.validate(key)).code).toBe('VALID');
    expect((await env.validate(key)).code).toBe('RATE_LIMITED');
  });

  it('a request costing more than B + 1 never passes; cost counts units', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: LIMITED_ID });
    expect((await env.validate(key, { cost: 4 })).reason).toBe('rate_limit:rps');
    const d = await env.validate(key, { cost: 3 });
    expect(d.code).toBe('VALID');
    expect(d.limits!.rateLimits[0].remaining).toBe(0);
  });

  it('the denial names the limit that refused: the longer limit once the short one keeps up', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: LIMITED_ID });
    // One request per rps interval (100 ms): rps always admits; per-minute (T = 600 ms, B + 1 = 11) runs out.
    const codes: string[] = [];
    for (let i = 0; i < 20; i++) {
      const d = await env.validate(key);
      codes.push(d.code === 'VALID' ? 'VALID' : d.reason);
      env.clock.advance(100);
    }
    expect(codes.indexOf('rate_limit:per-minute')).toBe(13);
    expect(codes).not.toContain('rate_limit:rps');
  });

  it('hands the limiter the rules compiled once per policy version, not per call', async () => {
    const env = await setup();
    const a = await env.addKey({ policyId: LIMITED_ID });
    const b = await env.addKey({ policyId: LIMITED_ID });
    const check = jest.spyOn(env.limiter, 'check');
    await env.validate(a);
    await env.validate(b);
    await env.validate(a, { cost: 2 });
    const sent = check.mock.calls.map(([c]) => c.limits);
    expect(sent[1]).toBe(sent[0]);
    expect(sent[2]).toBe(sent[0]);
    expect(sent[0].rates.map((r) => [r.name, r.num, r.den, r.cap])).toEqual([
      ['rps', 100, 1, 300],
      ['per-minute', 600, 1, 6600],
    ]);
    // a new version (seen once the cached one is stale) is compiled again, once
    const current = (await env.policies.getPolicy(LIMITED_ID))!;
    await env.policies.replacePolicy({ ...current, rateLimits: [{ ...RPS, limit: 3 }], version: current.version + 1 }, current.version);
    env.clock.advance(TTL);
    await env.validate(a);
    await env.validate(b);
    const [v2, again] = check.mock.calls.slice(3).map(([c]) => c.limits);
    expect(v2).not.toBe(sent[0]);
    expect(again).toBe(v2);
    expect(v2.rates).toMatchObject([{ name: 'rps', num: 1000, den: 3 }]);
  });

  it('limits are per key', async () => {
    const env = await setup();
    const a = await env.addKey({ policyId: LIMITED_ID });
    const b = await env.addKey({ policyId: LIMITED_ID });
    await env.validate(a, { cost: 3 });
    expect((await env.validate(a)).code).toBe('RATE_LIMITED');
    expect((await env.validate(b)).code).toBe('VALID');
  });

  it('a denial by a local rule does not consume the rate limit', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: LIMITED_ID, scopes: ['orders:read'] });
    const check = jest.spyOn(env.limiter, 'check');
    for (let i = 0; i < 5; i++) expect((await env.validate(key, { requiredScopes: ['orders:write'] })).code).toBe('INSUFFICIENT_SCOPE');
    expect(check).not.toHaveBeenCalled();
    expect((await env.validate(key, { cost: 3 })).code).toBe('VALID');
  });
});

describe('KeyValidator with credits', () => {
  it('credits decrease with each VALID; at zero the key is USAGE_EXCEEDED credits_exhausted', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: CREDITS_ID });
    const d1 = await env.validate(key);
    expect(d1).toMatchObject({ code: 'VALID', limits: { creditsRemaining: 1, rateLimits: [] } });
    expect((await env.validate(key)).limits?.creditsRemaining).toBe(0);
    const denied = await env.validate(key);
    expect(denied).toMatchObject({ code: 'USAGE_EXCEEDED', reason: 'credits_exhausted', limits: { creditsRemaining: 0 } });
    expect(env.audited.map((d) => d.code)).toEqual(['USAGE_EXCEEDED']);
  });

  it('a request costing more than what remains is refused and consumes nothing', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: CREDITS_ID });
    expect((await env.validate(key, { cost: 3 })).code).toBe('USAGE_EXCEEDED');
    expect((await env.validate(key, { cost: 2 })).limits?.creditsRemaining).toBe(0);
  });

  it('the key own credits narrow the policy credits', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: CREDITS_ID, credits: 1 });
    expect((await env.validate(key)).limits?.creditsRemaining).toBe(0);
    expect((await env.validate(key)).code).toBe('USAGE_EXCEEDED');
  });

  it('a key with its own credits and no policy credit rule still goes through the limiter', async () => {
    const env = await setup();
    const key = await env.addKey({ credits: 1 }); // no default policy in orders
    const check = jest.spyOn(env.limiter, 'check');
    expect((await env.validate(key)).limits?.creditsRemaining).toBe(0);
    expect((await env.validate(key)).code).toBe('USAGE_EXCEEDED');
    expect(check).toHaveBeenCalledTimes(2);
  });

  it('credits follow the service default policy', async () => {
    const env = await setup({ defaultPolicy: { credits: { initial: 1 } } });
    const key = await env.addKey();
    expect((await env.validate(key)).code).toBe('VALID');
    expect((await env.validate(key)).code).toBe('USAGE_EXCEEDED');
  });
});

describe('KeyValidator hot path without limits', () => {
  it('never calls the limiter and answers synchronously (not a Promise) once cache and policy are warm', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: LOCAL_ID });
    const check = jest.spyOn(env.limiter, 'check');
    const credits = jest.spyOn(env.limiter, 'credits');
    const cold = env.validate(key, { requiredScopes: ['orders:read'] });
    expect(cold).toBeInstanceOf(Promise);
    expect((await cold).code).toBe('VALID');
    for (const [overrides, code] of [
      [{ requiredScopes: ['orders:read'] }, 'VALID'],
      [{ clientIp: '192.168.1.1' }, 'FORBIDDEN'],
      [{ requiredScopes: ['orders:write'] }, 'INSUFFICIENT_SCOPE'],
    ] as const) {
      const warm = env.validate(key, overrides);
      expect(warm).not.toBeInstanceOf(Promise);
      expect((warm as Decision).code).toBe(code);
      expect((warm as Decision).limits).toBeUndefined();
    }
    expect(check).not.toHaveBeenCalled();
    expect(credits).not.toHaveBeenCalled();
  });

  it('also for a key of a service with no default policy, and stays synchronous until the TTL', async () => {
    const env = await setup();
    const key = await env.addKey();
    const check = jest.spyOn(env.limiter, 'check');
    await env.validate(key);
    env.clock.advance(TTL - 1);
    const warm = env.validate(key);
    expect(warm).not.toBeInstanceOf(Promise);
    expect((warm as Decision).code).toBe('VALID');
    env.clock.advance(1);
    expect(env.validate(key)).toBeInstanceOf(Promise);
    expect(check).not.toHaveBeenCalled();
  });

  it('a key with limits always answers with a Promise (the shared limiter is asked)', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: CREDITS_ID });
    await env.validate(key);
    expect(env.validate(key)).toBeInstanceOf(Promise);
  });

  it('with the store as source (no cache) the answer is a Promise but the limiter is still not asked', async () => {
    const env = await setup({ source: 'store' });
    const key = await env.addKey({ policyId: LOCAL_ID });
    const check = jest.spyOn(env.limiter, 'check');
    await env.validate(key);
    const again = env.validate(key);
    expect(again).toBeInstanceOf(Promise);
    expect((await again).code).toBe('VALID');
    expect(check).not.toHaveBeenCalled();
  });

  it('a key naming a policy that no longer exists is FORBIDDEN policy_missing, without the limiter', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: GONE_ID, credits: 5 });
    const check = jest.spyOn(env.limiter, 'check');
    expect(await env.validate(key)).toMatchObject({ code: 'FORBIDDEN', reason: 'policy_missing' });
    expect(check).not.toHaveBeenCalled();
  });

  it('a key of another service is NOT_FOUND without resolving its policy or asking the limiter', async () => {
    const env = await setup();
    const key = await env.addKey({ policyId: CREDITS_ID });
    const check = jest.spyOn(env.limiter, 'check');
    const d = await env.validate(key, { service: 'billing' });
    expect(d.code).toBe('NOT_FOUND');
    expect(d.record).toBeUndefined();
    expect(check).not.toHaveBeenCalled();
  });
});
