import { MemoryLimiter } from '../../../src/adapters/limits/memory-limiter';
import { MemoryKeyStore } from '../../../src/adapters/store/memory-key-store';
import { MemoryPolicyStore } from '../../../src/adapters/store/memory-policy-store';
import { KeyAdmin, type CreateKeyInput, type KeyChangeKind, type UpdateKeyInput } from '../../../src/app/key-admin';
import { rootPrincipal, type Principal } from '../../../src/domain/admin-access';
import { ManualClock } from '../../../src/domain/clock';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
} from '../../../src/domain/errors';
import { KeyIdGenerator } from '../../../src/domain/key-id';
import { compileLimits } from '../../../src/domain/limit-rules';
import type { Policy } from '../../../src/domain/policy';
import { ScopeSet } from '../../../src/domain/scopes';
import { seededBytes } from '../helpers/bytes';
import { makePolicy } from '../helpers/records';

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

const DEFAULT_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9A';
const OWN_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9B';
const BILLING_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9C';
const MISSING_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9D';

const root = rootPrincipal();
const principal = (actor: string, ...scopes: string[]): Principal => ({ actor, scopes: new ScopeSet(scopes) });
const ordersWriter = principal('key_orders_w', 'service:orders:write');
const ordersReader = principal('key_orders_r', 'service:orders:read');
const billingWriter = principal('key_billing_w', 'service:billing:write');

function policy(id: string, overrides: Partial<Policy> = {}): Policy {
  return makePolicy({ id, name: id.slice(-1), createdAt: T0, updatedAt: T0, ...overrides });
}

function createInput(overrides: Partial<CreateKeyInput> = {}): CreateKeyInput {
  return { service: 'orders', owner: 'team-a', name: 'checkout', scopes: ['orders:read'], metadata: {}, prefix: '', ...overrides };
}

function updateInput(keyId: string, overrides: Partial<UpdateKeyInput> = {}): UpdateKeyInput {
  return { keyId, updateMask: [], name: '', scopes: [], metadata: {}, enabled: false, ...overrides };
}

interface SetupOptions {
  /** The orders default policy; undefined: none. */
  defaultPolicy?: Partial<Policy>;
  ownPolicy?: Partial<Policy>;
}

async function setup(opts: SetupOptions = {}) {
  const keys = new MemoryKeyStore();
  const policies = new MemoryPolicyStore();
  if (opts.defaultPolicy) await policies.createPolicy(policy(DEFAULT_ID, opts.defaultPolicy), { serviceDefault: true });
  await policies.createPolicy(policy(OWN_ID, opts.ownPolicy ?? {}), { serviceDefault: false });
  await policies.createPolicy(policy(BILLING_ID, { service: 'billing' }), { serviceDefault: true });
  const limiter = new MemoryLimiter();
  const clock = new ManualClock(T0);
  const events: { kind: KeyChangeKind; id: string }[] = [];
  const quota: [string, number, string][] = [];
  const admin = new KeyAdmin({
    store: keys,
    clock,
    ids: new KeyIdGenerator(seededBytes(11)),
    defaultPrefix: 'sk',
    policies,
    limiter,
    onChange: (c) => {
      events.push({ kind: c.kind, id: c.record.id });
    },
    onQuotaExceeded: (service, limit, actor) => {
      quota.push([service, limit, actor]);
    },
  });
  const snapshot = async () => JSON.stringify((await keys.list({ limit: 1000 })).records);
  const create = (p: Principal, overrides: Partial<CreateKeyInput> = {}) => admin.create(p, createInput(overrides));
  return { keys, policies, limiter, clock, events, quota, admin, snapshot, create };
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

/** Expects `p` to fail with `cls` and the store and listeners to be untouched. */
async function refusedWithoutWrite(
  env: Awaited<ReturnType<typeof setup>>,
  p: () => Promise<unknown>,
  cls: abstract new (...args: never[]) => Error,
): Promise<Error> {
  const before = await env.snapshot();
  const events = env.events.length;
  const err = await caught(p());
  expect(err).toBeInstanceOf(cls);
  expect(await env.snapshot()).toBe(before);
  expect(env.events.length).toBe(events);
  return err as Error;
}

describe('KeyAdmin.create under a policy', () => {
  it.each<[string, Partial<Policy>, Partial<CreateKeyInput>, string]>([
    ['allowed_scopes', { allowedScopes: ['orders:read'] }, { scopes: ['orders:read', 'orders:*'] }, 'rule allowed_scopes'],
    ['require_expiry', { requireExpiry: true }, {}, 'rule require_expiry'],
    ['max_lifetime', { maxLifetimeMs: DAY }, { expiresAt: T0 + DAY + 1 }, 'rule max_lifetime'],
    ['credits', { credits: { initial: 10 } }, { credits: 11 }, 'rule credits'],
  ])('the service default policy: a breach of %s is FailedPreconditionError naming the rule; nothing is written', async (_rule, pol, input, text) => {
    const env = await setup({ defaultPolicy: pol });
    const err = await refusedWithoutWrite(env, () => env.create(ordersWriter, input), FailedPreconditionError);
    expect(err.message).toContain(text);
    expect(err.message).toContain(DEFAULT_ID);
  });

  it('a compliant key is created under the default policy (max_lifetime boundary included)', async () => {
    const env = await setup({
      defaultPolicy: { allowedScopes: ['orders:*'], requireExpiry: true, maxLifetimeMs: DAY, credits: { initial: 10 } },
    });
    const { record } = await env.create(ordersWriter, { scopes: ['orders:read', 'orders:items:*'], expiresAt: T0 + DAY, credits: 10 });
    expect(record.policyId).toBeUndefined();
    expect(record.credits).toBe(10);
    expect(await env.keys.getById(record.id)).toBeDefined();
  });

  it('no default policy: no compliance rules apply', async () => {
    const env = await setup();
    await expect(env.create(ordersWriter, { scopes: ['*'], credits: 1_000_000 })).resolves.toBeDefined();
  });

  it('a key with its own policy is checked against it, not against the default', async () => {
    const env = await setup({ defaultPolicy: { requireExpiry: true }, ownPolicy: { allowedScopes: ['orders:read'] } });
    const { record } = await env.create(ordersWriter, { policyId: OWN_ID });
    expect(record.policyId).toBe(OWN_ID);
    const err = await refusedWithoutWrite(env, () => env.create(ordersWriter, { policyId: OWN_ID, scopes: ['orders:write'] }), FailedPreconditionError);
    expect(err.message).toContain(OWN_ID);
  });

  it('an own policy of another service, a missing one or a malformed id is InvalidArgumentError policy_id; nothing is written', async () => {
    const env = await setup();
    for (const policyId of [BILLING_ID, MISSING_ID, 'pol_nope', 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A']) {
      const err = await refusedWithoutWrite(env, () => env.create(root, { policyId }), InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe('policy_id');
    }
  });

  it('an empty policy id means the service default', async () => {
    const env = await setup({ defaultPolicy: { requireExpiry: true } });
    expect(await caught(env.create(root, { policyId: '' }))).toBeInstanceOf(FailedPreconditionError);
  });
});

describe('KeyAdmin service quota (max_active_keys of the default policy)', () => {
  it('the 4th active key is ResourceExhaustedError, onQuotaExceeded is told, and nothing is written', async () => {
    const env = await setup({ defaultPolicy: { maxActiveKeys: 3 } });
    for (let i = 0; i < 3; i++) await env.create(ordersWriter, { name: `k${i}` });
    expect(env.quota).toEqual([]);
    const err = await refusedWithoutWrite(env, () => env.create(ordersWriter, { name: 'k3' }), ResourceExhaustedError);
    expect(err.message).toContain('max_active_keys');
    expect(env.quota).toEqual([['orders', 3, 'key_orders_w']]);
    // other services are not affected
    await expect(env.create(billingWriter, { service: 'billing' })).resolves.toBeDefined();
  });

  it('counts keys with their own policy too, and is 0 = no quota', async () => {
    const env = await setup({ defaultPolicy: { maxActiveKeys: 1 } });
    await env.create(root, { policyId: OWN_ID });
    expect(await caught(env.create(root))).toBeInstanceOf(ResourceExhaustedError);
    const free = await setup({ defaultPolicy: { maxActiveKeys: 0 } });
    for (let i = 0; i < 5; i++) await free.create(root);
    expect(free.quota).toEqual([]);
  });

  it('disabling or revoking a key frees a slot; re-enabling beyond the quota is refused', async () => {
    const env = await setup({ defaultPolicy: { maxActiveKeys: 3 } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await env.create(root, { name: `k${i}` })).record.id);
    await env.admin.update(root, updateInput(ids[0], { updateMask: ['enabled'], enabled: false }));
    const fourth = await env.create(root, { name: 'k3' });
    expect(fourth.record.state).toBe('active');

    const err = await refusedWithoutWrite(
      env,
      () => env.admin.update(ordersWriter, updateInput(ids[0], { updateMask: ['enabled'], enabled: true })),
      ResourceExhaustedError,
    );
    expect(err.message).toContain('max_active_keys');
    expect(env.quota).toEqual([['orders', 3, 'key_orders_w']]);
    expect((await env.keys.getById(ids[0]))!.state).toBe('disabled');

    await env.admin.revoke(root, ids[1], 'leaked');
    const enabled = await env.admin.update(root, updateInput(ids[0], { updateMask: ['enabled'], enabled: true }));
    expect(enabled.state).toBe('active');
  });

  it('an update that does not enable a key is not subject to the quota', async () => {
    const env = await setup({ defaultPolicy: { maxActiveKeys: 1 } });
    const { record } = await env.create(root);
    const renamed = await env.admin.update(root, updateInput(record.id, { updateMask: ['name', 'enabled'], name: 'x', enabled: true }));
    expect(renamed.name).toBe('x');
    expect(env.quota).toEqual([]);
  });
});

describe('KeyAdmin.update under a policy', () => {
  it('new scopes are re-checked against the policy; nothing is written on a breach', async () => {
    const env = await setup({ defaultPolicy: { allowedScopes: ['orders:read', 'orders:items:*'] } });
    const { record } = await env.create(root);
    const err = await refusedWithoutWrite(
      env,
      () => env.admin.update(root, updateInput(record.id, { updateMask: ['scopes'], scopes: ['orders:read', 'orders:*'] })),
      FailedPreconditionError,
    );
    expect(err.message).toContain('rule allowed_scopes');
    const ok = await env.admin.update(root, updateInput(record.id, { updateMask: ['scopes'], scopes: ['orders:items:*'] }));
    expect(ok.scopes).toEqual(['orders:items:*']);
  });

  it('expiry changes are re-checked: removing it under require_expiry, or beyond max_lifetime from creation', async () => {
    const env = await setup({ defaultPolicy: { requireExpiry: true, maxLifetimeMs: DAY } });
    const { record } = await env.create(root, { expiresAt: T0 + HOUR });
    env.clock.advance(HOUR / 2);
    const cleared = await refusedWithoutWrite(env, () => env.admin.update(root, updateInput(record.id, { updateMask: ['expire_time'] })), FailedPreconditionError);
    expect(cleared.message).toContain('rule require_expiry');
    const tooLong = await refusedWithoutWrite(
      env,
      () => env.admin.update(root, updateInput(record.id, { updateMask: ['expire_time'], expiresAt: T0 + DAY + 1 })),
      FailedPreconditionError,
    );
    expect(tooLong.message).toContain('rule max_lifetime');
    const extended = await env.admin.update(root, updateInput(record.id, { updateMask: ['expire_time'], expiresAt: T0 + DAY }));
    expect(extended.expiresAt).toBe(T0 + DAY);
  });

  it('switching policy is checked against the new policy; returning to the default against the default', async () => {
    const env = await setup({ defaultPolicy: { allowedScopes: ['orders:*'] }, ownPolicy: { allowedScopes: ['orders:read'] } });
    const { record } = await env.create(root, { scopes: ['orders:write'] });
    await refusedWithoutWrite(env, () => env.admin.update(root, updateInput(record.id, { updateMask: ['policy_id'], policyId: OWN_ID })), FailedPreconditionError);
    const narrowed = await env.admin.update(root, updateInput(record.id, { updateMask: ['policy_id', 'scopes'], policyId: OWN_ID, scopes: ['orders:read'] }));
    expect(narrowed.policyId).toBe(OWN_ID);
    const back = await env.admin.update(root, updateInput(record.id, { updateMask: ['policy_id'], policyId: '' }));
    expect(back.policyId).toBeUndefined();
  });

  it('a policy of another service (or a missing one) is InvalidArgumentError policy_id', async () => {
    const env = await setup();
    const { record } = await env.create(root);
    for (const policyId of [BILLING_ID, MISSING_ID]) {
      const err = await refusedWithoutWrite(env, () => env.admin.update(root, updateInput(record.id, { updateMask: ['policy_id'], policyId })), InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe('policy_id');
    }
  });

  it('changes that do not touch governed fields are not re-checked (a key made before a stricter policy can be renamed)', async () => {
    const env = await setup({ defaultPolicy: {} });
    const { record } = await env.create(root, { scopes: ['billing:read'] });
    await env.policies.replacePolicy(policy(DEFAULT_ID, { allowedScopes: ['orders:*'], version: 2 }), 1);
    const renamed = await env.admin.update(root, updateInput(record.id, { updateMask: ['name'], name: 'renamed' }));
    expect(renamed.name).toBe('renamed');
  });
});

describe('KeyAdmin credits', () => {
  it('update_mask [credits] sets the limiter without changing the record; creditsOf shows it', async () => {
    const env = await setup({ defaultPolicy: { credits: { initial: 100 } } });
    const { record } = await env.create(root);
    expect(await env.admin.creditsOf(record)).toBe(100);
    env.clock.advance(1000);
    const before = await env.snapshot();
    const same = await env.admin.update(ordersWriter, updateInput(record.id, { updateMask: ['credits'], credits: 42 }));
    expect(same).toEqual(record);
    expect(await env.snapshot()).toBe(before);
    expect(env.events.map((e) => e.kind)).toEqual(['created']);
    expect(await env.admin.creditsOf(record)).toBe(42);
    expect(await env.limiter.credits(record.id, { initial: 100 }, env.clock.now())).toBe(42);
  });

  it('credits with other fields: both applied', async () => {
    const env = await setup({ defaultPolicy: { credits: { initial: 100 } } });
    const { record } = await env.create(root);
    const updated = await env.admin.update(root, updateInput(record.id, { updateMask: ['name', 'credits'], name: 'n', credits: 3 }));
    expect(updated.name).toBe('n');
    expect(await env.admin.creditsOf(updated)).toBe(3);
  });

  it('credits updates follow access rules: a reader is refused, another service sees NotFoundError; the limiter is untouched', async () => {
    const env = await setup({ defaultPolicy: { credits: { initial: 100 } } });
    const { record } = await env.create(root);
    expect(await caught(env.admin.update(ordersReader, updateInput(record.id, { updateMask: ['credits'], credits: 1 })))).toBeInstanceOf(PermissionDeniedError);
    expect(await caught(env.admin.update(billingWriter, updateInput(record.id, { updateMask: ['credits'], credits: 1 })))).toBeInstanceOf(NotFoundError);
    const bad = await caught(env.admin.update(root, updateInput(record.id, { updateMask: ['credits'], credits: -1 })));
    expect((bad as InvalidArgumentError).field).toBe('credits');
    expect(await env.admin.creditsOf(record)).toBe(100);
  });

  it('creditsOf: the key own credits narrow the policy; without any rule it is undefined', async () => {
    const env = await setup({ defaultPolicy: { credits: { initial: 100 } }, ownPolicy: {} });
    const narrowed = await env.create(root, { credits: 30 });
    expect(await env.admin.creditsOf(narrowed.record)).toBe(30);
    const ownNoRule = await env.create(root, { policyId: OWN_ID });
    expect(await env.admin.creditsOf(ownNoRule.record)).toBeUndefined();
    const ownKeyCredits = await env.create(root, { policyId: OWN_ID, credits: 5 });
    expect(await env.admin.creditsOf(ownKeyCredits.record)).toBe(5);
    const bare = await setup();
    const noRule = await bare.create(root);
    expect(await bare.admin.creditsOf(noRule.record)).toBeUndefined();
  });

  it('delete forgets the limiter state of the key', async () => {
    const env = await setup({
      defaultPolicy: { credits: { initial: 100 }, rateLimits: [{ name: 'rps', limit: 1, periodMs: 1000, burst: 0 }] },
    });
    const { record } = await env.create(root);
    await env.admin.update(root, updateInput(record.id, { updateMask: ['credits'], credits: 7 }));
    const limits = compileLimits([{ name: 'rps', limit: 1, periodMs: 1000, burst: 0 }]);
    const first = await env.limiter.check({ keyId: record.id, cost: 1, limits, now: T0 });
    expect(first.allowed).toBe(true);
    expect(env.limiter.size).toEqual({ rates: 1, credits: 1 });
    await env.admin.delete(root, record.id);
    expect(env.limiter.size).toEqual({ rates: 0, credits: 0 });
    expect(await env.limiter.credits(record.id, { initial: 100 }, T0)).toBe(100);
  });

  it('a refused delete leaves the limiter state alone', async () => {
    const env = await setup({ defaultPolicy: { credits: { initial: 100 } } });
    const { record } = await env.create(root);
    await env.admin.update(root, updateInput(record.id, { updateMask: ['credits'], credits: 7 }));
    expect(await caught(env.admin.delete(billingWriter, record.id))).toBeInstanceOf(NotFoundError);
    expect(await caught(env.admin.delete(ordersReader, record.id))).toBeInstanceOf(PermissionDeniedError);
    expect(await env.admin.creditsOf(record)).toBe(7);
  });
});
