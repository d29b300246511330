import { MAX_CAS_ATTEMPTS } from '../../../src/app/cas-retry';
import { MemoryPolicyStore } from '../../../src/adapters/store/memory-policy-store';
import { checkPolicyId, POLICY_FIELDS, PolicyAdmin, type PolicyChangeKind } from '../../../src/app/policy-admin';
import { rootPrincipal, type Principal } from '../../../src/domain/admin-access';
import { ManualClock } from '../../../src/domain/clock';
import {
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
} from '../../../src/domain/errors';
import { KeyIdGenerator } from '../../../src/domain/key-id';
import type { Policy } from '../../../src/domain/policy';
import type { PolicyFields } from '../../../src/domain/policy-rules';
import { ScopeSet } from '../../../src/domain/scopes';
import type { PolicyStore } from '../../../src/ports/policy-store';
import { seededBytes } from '../helpers/bytes';
import { makePolicyFields } from '../helpers/records';

const T0 = 1_700_000_000_000;
const MISSING_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9A';

const root = rootPrincipal();
const principal = (actor: string, ...scopes: string[]): Principal => ({ actor, scopes: new ScopeSet(scopes) });
const ordersWriter = principal('key_orders_w', 'service:orders:write');
const ordersReader = principal('key_orders_r', 'service:orders:read');
const billingWriter = principal('key_billing_w', 'service:billing:write');

type Change = { kind: PolicyChangeKind; policy: Policy; actor: string };

function fields(overrides: Partial<PolicyFields> = {}): PolicyFields {
  return makePolicyFields({ allowedScopes: ['orders:*'], ...overrides });
}

/** Update fields that differ from `fields()` in every settable field. */
function otherFields(): Omit<PolicyFields, 'service'> {
  return {
    name: 'renamed',
    allowedScopes: ['orders:read'],
    requireExpiry: true,
    maxLifetimeMs: 86_400_000,
    maxAgeMs: 30 * 86_400_000,
    allowedCidrs: ['10.0.0.0/8'],
    timeZone: 'Europe/Berlin',
    timeWindows: [{ days: ['mon'], start: '09:00', end: '17:00' }],
    rateLimits: [{ name: 'rps', limit: 10, periodMs: 1000, burst: 5 }],
    credits: { initial: 100 },
    maxActiveKeys: 7,
    rotation: { strategy: 'notify', noticeMs: 86_400_000 },
  };
}

/** Wraps a store, replacing some of its methods. */
function wrapStore(inner: MemoryPolicyStore, overrides: Partial<Record<keyof PolicyStore, unknown>>): PolicyStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop as keyof PolicyStore];
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

function setup(opts: { store?: (inner: MemoryPolicyStore) => PolicyStore } = {}) {
  const inner = new MemoryPolicyStore();
  const store = opts.store ? opts.store(inner) : inner;
  const clock = new ManualClock(T0);
  const changes: Change[] = [];
  const admin = new PolicyAdmin({
    store,
    clock,
    ids: new KeyIdGenerator(seededBytes(7), 'pol'),
    onChange: (kind, policy, actor) => {
      changes.push({ kind, policy, actor });
    },
  });
  const snapshot = async (service = 'orders') =>
    JSON.stringify([(await inner.listPolicies({ service, limit: 1000 })).policies, await inner.getServiceDefault(service)]);
  return { inner, store, clock, changes, admin, snapshot };
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

async function expectInvalid(p: Promise<unknown>, field: string): Promise<void> {
  const err = await caught(p);
  expect(err).toBeInstanceOf(InvalidArgumentError);
  expect((err as InvalidArgumentError).field).toBe(field);
}

describe('PolicyAdmin.create', () => {
  it('stores a checked policy with a pol_ id, times and version 1, and tells the listener', async () => {
    const env = setup();
    const view = await env.admin.create(ordersWriter, fields({ allowedScopes: ['orders:read', 'orders:read'], timeZone: '' }), false);
    expect(view.serviceDefault).toBe(false);
    expect(checkPolicyId(view.policy.id)).toBe(view.policy.id);
    expect(view.policy).toMatchObject({ service: 'orders', allowedScopes: ['orders:read'], timeZone: 'UTC', createdAt: T0, updatedAt: T0, version: 1 });
    expect(await env.inner.getPolicy(view.policy.id)).toEqual(view.policy);
    expect(await env.inner.getServiceDefault('orders')).toBeUndefined();
    expect(env.changes).toEqual([{ kind: 'created', policy: view.policy, actor: 'key_orders_w' }]);
  });

  it('with serviceDefault, the policy becomes the service default', async () => {
    const env = setup();
    const view = await env.admin.create(root, fields(), true);
    expect(view.serviceDefault).toBe(true);
    expect(await env.inner.getServiceDefault('orders')).toBe(view.policy.id);
    expect((await env.admin.get(root, view.policy.id)).serviceDefault).toBe(true);
  });

  it('a credential of one service cannot create in another (PermissionDeniedError) and nothing is written', async () => {
    const env = setup();
    const err = await caught(env.admin.create(billingWriter, fields(), true));
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect((err as Error).message).toContain('service:orders:write');
    expect(await caught(env.admin.create(ordersReader, fields(), false))).toBeInstanceOf(PermissionDeniedError);
    expect(await env.snapshot()).toBe(JSON.stringify([[], undefined]));
    expect(env.changes).toEqual([]);
  });

  it('a bad field is an InvalidArgumentError naming its proto path, before anything is written', async () => {
    const env = setup();
    await expectInvalid(env.admin.create(root, fields({ rateLimits: [{ name: 'a', limit: 1, periodMs: 10, burst: 0 }] }), false), 'policy.rate_limits[0].period');
    await expectInvalid(env.admin.create(root, fields({ service: 'Bad!' }), false), 'policy.service');
    expect(env.changes).toEqual([]);
  });
});

describe('PolicyAdmin.get and list', () => {
  it('get: the owner service reads; another service sees NotFoundError, as for a missing id', async () => {
    const env = setup();
    const { policy } = await env.admin.create(root, fields(), false);
    expect((await env.admin.get(ordersReader, policy.id)).policy).toEqual(policy);
    expect((await env.admin.get(ordersWriter, policy.id)).policy).toEqual(policy);
    const other = await caught(env.admin.get(billingWriter, policy.id));
    expect(other).toBeInstanceOf(NotFoundError);
    const missing = await caught(env.admin.get(billingWriter, MISSING_ID));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((other as Error).message).toBe((missing as Error).message.replace(MISSING_ID, policy.id));
  });

  it('get: a malformed id is InvalidArgumentError policy_id', async () => {
    const env = setup();
    await expectInvalid(env.admin.get(root, 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A'), 'policy_id');
  });

  it('list: pages through one service only, marking the default', async () => {
    const env = setup();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await env.admin.create(root, fields({ name: `p${i}` }), i === 3)).policy.id);
      env.clock.advance(1);
    }
    await env.admin.create(root, fields({ service: 'billing' }), true);
    const seen: { id: string; def: boolean }[] = [];
    let token = '';
    let pages = 0;
    do {
      const page = await env.admin.list(ordersReader, 'orders', 2, token);
      seen.push(...page.views.map((v) => ({ id: v.policy.id, def: v.serviceDefault })));
      token = page.nextPageToken;
      pages++;
    } while (token !== '');
    expect(pages).toBe(3);
    expect(seen).toEqual(ids.map((id, i) => ({ id, def: i === 3 })));
  });

  it('list: another service is PermissionDeniedError; a bad service or page size names the field', async () => {
    const env = setup();
    expect(await caught(env.admin.list(billingWriter, 'orders', 0, ''))).toBeInstanceOf(PermissionDeniedError);
    await expectInvalid(env.admin.list(root, 'Orders', 0, ''), 'service');
    await expectInvalid(env.admin.list(root, 'orders', 1001, ''), 'page_size');
  });

  it('list: a page token of another service is refused', async () => {
    const env = setup();
    for (let i = 0; i < 3; i++) await env.admin.create(root, fields(), false);
    const page = await env.admin.list(root, 'orders', 1, '');
    expect(page.nextPageToken).not.toBe('');
    expect(await caught(env.admin.list(root, 'billing', 1, page.nextPageToken))).toBeInstanceOf(InvalidArgumentError);
  });
});

describe('PolicyAdmin.update', () => {
  it('changes only the masked fields and bumps version and updatedAt', async () => {
    const env = setup();
    const { policy } = await env.admin.create(ordersWriter, fields({ rateLimits: [{ name: 'old', limit: 1, periodMs: 1000, burst: 0 }] }), false);
    env.clock.advance(5000);
    const view = await env.admin.update(ordersWriter, policy.id, otherFields(), ['name', 'allowed_cidrs'], false);
    expect(view.policy).toEqual({
      ...policy,
      name: 'renamed',
      allowedCidrs: ['10.0.0.0/8'],
      updatedAt: T0 + 5000,
      version: 2,
    });
    expect(await env.inner.getPolicy(policy.id)).toEqual(view.policy);
    expect(env.changes.map((c) => c.kind)).toEqual(['created', 'updated']);
    expect(env.changes[1]).toEqual({ kind: 'updated', policy: view.policy, actor: 'key_orders_w' });
  });

  it('every mask path sets its own field', async () => {
    const env = setup();
    const { policy } = await env.admin.create(root, fields(), false);
    const next = otherFields();
    const expected: Record<string, Partial<Policy>> = {
      name: { name: next.name },
      allowed_scopes: { allowedScopes: next.allowedScopes },
      require_expiry: { requireExpiry: true },
      max_lifetime: { maxLifetimeMs: next.maxLifetimeMs },
      max_age: { maxAgeMs: next.maxAgeMs },
      allowed_cidrs: { allowedCidrs: next.allowedCidrs },
      time_zone: { timeZone: next.timeZone },
      time_windows: { timeWindows: next.timeWindows },
      rate_limits: { rateLimits: next.rateLimits },
      credits: { credits: next.credits },
      max_active_keys: { maxActiveKeys: 7 },
      rotation: { rotation: next.rotation },
    };
    let current = policy;
    for (const [path, change] of Object.entries(expected)) {
      const before = current;
      current = (await env.admin.update(root, policy.id, next, [path], false)).policy;
      expect(current).toEqual({ ...before, ...change, version: before.version + 1 });
    }
    expect(Object.keys(expected).sort()).toEqual(POLICY_FIELDS.filter((f) => f !== 'service_default').sort());
  });

  it('a masked optional field given as absent is cleared', async () => {
    const env = setup();
    const { policy } = await env.admin.create(root, fields({ credits: { initial: 5 }, maxLifetimeMs: 120_000 }), false);
    const { credits: _c, maxLifetimeMs: _m, ...rest } = otherFields();
    const view = await env.admin.update(root, policy.id, rest, ['credits', 'max_lifetime'], false);
    expect('credits' in view.policy).toBe(false);
    expect('maxLifetimeMs' in view.policy).toBe(false);
    expect('credits' in (await env.inner.getPolicy(policy.id))!).toBe(false);
  });

  it('unmasked fields are not validated (a bad value outside the mask is ignored)', async () => {
    const env = setup();
    const { policy } = await env.admin.create(root, fields(), false);
    const view = await env.admin.update(root, policy.id, { ...otherFields(), timeZone: 'Not/AZone', allowedScopes: ['bad scope'] }, ['name'], false);
    expect(view.policy.name).toBe('renamed');
    expect(view.policy.timeZone).toBe('UTC');
  });

  it('a masked bad field names its proto path and nothing changes', async () => {
    const env = setup();
    const { policy } = await env.admin.create(root, fields(), false);
    const before = await env.snapshot();
    await expectInvalid(env.admin.update(root, policy.id, { ...otherFields(), allowedScopes: ['ok', 'bad scope'] }, ['allowed_scopes'], false), 'policy.allowed_scopes[1]');
    expect(await env.snapshot()).toBe(before);
    expect(env.changes).toHaveLength(1);
  });

  it('an empty mask or an unknown path is InvalidArgumentError update_mask, and nothing changes', async () => {
    const env = setup();
    const { policy } = await env.admin.create(root, fields(), false);
    const before = await env.snapshot();
    await expectInvalid(env.admin.update(root, policy.id, otherFields(), [], false), 'update_mask');
    await expectInvalid(env.admin.update(root, policy.id, otherFields(), ['name', 'service'], false), 'update_mask');
    await expectInvalid(env.admin.update(root, policy.id, otherFields(), ['maxActiveKeys'], false), 'update_mask');
    expect(await env.snapshot()).toBe(before);
    expect(env.changes).toHaveLength(1);
  });

  it('service_default in the mask sets or unsets the default; outside the mask the flag is ignored', async () => {
    const env = setup();
    const a = (await env.admin.create(root, fields({ name: 'a' }), true)).policy;
    const b = (await env.admin.create(root, fields({ name: 'b' }), false)).policy;

    // flag without the path: no effect
    expect((await env.admin.update(root, b.id, otherFields(), ['name'], true)).serviceDefault).toBe(false);
    expect(await env.inner.getServiceDefault('orders')).toBe(a.id);

    // set b as default: a stops being the default
    const setB = await env.admin.update(root, b.id, otherFields(), ['service_default'], true);
    expect(setB.serviceDefault).toBe(true);
    expect(await env.inner.getServiceDefault('orders')).toBe(b.id);
    expect((await env.admin.get(root, a.id)).serviceDefault).toBe(false);

    // unsetting a policy that is not the default leaves the default alone
    await env.admin.update(root, a.id, otherFields(), ['service_default'], false);
    expect(await env.inner.getServiceDefault('orders')).toBe(b.id);

    // unset b: no default
    const unsetB = await env.admin.update(root, b.id, otherFields(), ['service_default'], false);
    expect(unsetB.serviceDefault).toBe(false);
    expect(await env.inner.getServiceDefault('orders')).toBeUndefined();
  });

  it('isolation: another service policy id is NotFoundError; a reader is PermissionDeniedError; nothing changes', async () => {
    const env = setup();
    const { policy } = await env.admin.create(root, fields(), false);
    const before = await env.snapshot();
    expect(await caught(env.admin.update(billingWriter, policy.id, otherFields(), ['name'], false))).toBeInstanceOf(NotFoundError);
    expect(await caught(env.admin.update(ordersReader, policy.id, otherFields(), ['name'], false))).toBeInstanceOf(PermissionDeniedError);
    expect(await caught(env.admin.update(root, MISSING_ID, otherFields(), ['name'], false))).toBeInstanceOf(NotFoundError);
    expect(await env.snapshot()).toBe(before);
    expect(env.changes).toHaveLength(1);
  });

  it('retries on a ConflictError: re-reads the policy, keeps the concurrent change, applies the masked one', async () => {
    let conflicts = 0;
    let concurrent: ((p: Policy) => Promise<void>) | undefined;
    const env = setup({
      store: (inner) =>
        wrapStore(inner, {
          replacePolicy: async (p: Policy, expected: number) => {
            if (concurrent) {
              const c = concurrent;
              concurrent = undefined;
              conflicts++;
              await c(p); // another writer commits first...
            }
            return inner.replacePolicy(p, expected); // ...so this CAS fails once
          },
        }),
    });
    const { policy } = await env.admin.create(root, fields(), false);
    concurrent = async () => {
      const current = (await env.inner.getPolicy(policy.id))!;
      await env.inner.replacePolicy({ ...current, allowedScopes: ['orders:write'], version: current.version + 1 }, current.version);
    };
    const view = await env.admin.update(root, policy.id, otherFields(), ['name'], false);
    expect(conflicts).toBe(1);
    expect(view.policy).toMatchObject({ name: 'renamed', allowedScopes: ['orders:write'], version: 3 });
    expect(env.changes.map((c) => c.kind)).toEqual(['created', 'updated']);
  });

  it('retries a ConflictError thrown once by the store, then succeeds', async () => {
    let calls = 0;
    const env = setup({
      store: (inner) =>
        wrapStore(inner, {
          replacePolicy: async (p: Policy, expected: number) => {
            calls++;
            if (calls === 1) throw new ConflictError('lost the race');
            return inner.replacePolicy(p, expected);
          },
        }),
    });
    const { policy } = await env.admin.create(root, fields(), false);
    const view = await env.admin.update(root, policy.id, otherFields(), ['name'], false);
    expect(calls).toBe(2);
    expect(view.policy).toMatchObject({ name: 'renamed', version: 2 });
  });

  it('gives up after repeated conflicts, with ConflictError and no change or event', async () => {
    let calls = 0;
    const env = setup({
      store: (inner) =>
        wrapStore(inner, {
          replacePolicy: async () => {
            calls++;
            throw new ConflictError('always');
          },
        }),
    });
    const { policy } = await env.admin.create(root, fields(), false);
    const before = await env.snapshot();
    expect(await caught(env.admin.update(root, policy.id, otherFields(), ['name'], false))).toBeInstanceOf(ConflictError);
    expect(calls).toBe(MAX_CAS_ATTEMPTS);
    expect(await env.snapshot()).toBe(before);
    expect(env.changes).toHaveLength(1);
  });
});

describe('PolicyAdmin.delete', () => {
  it('deletes a policy and tells the listener with the removed policy', async () => {
    const env = setup();
    const { policy } = await env.admin.create(ordersWriter, fields(), false);
    await env.admin.delete(ordersWriter, policy.id);
    expect(await env.inner.getPolicy(policy.id)).toBeUndefined();
    expect(await caught(env.admin.get(root, policy.id))).toBeInstanceOf(NotFoundError);
    expect(env.changes.map((c) => [c.kind, c.policy.id, c.actor])).toEqual([
      ['created', policy.id, 'key_orders_w'],
      ['deleted', policy.id, 'key_orders_w'],
    ]);
    expect(await caught(env.admin.delete(ordersWriter, policy.id))).toBeInstanceOf(NotFoundError);
  });

  it('refuses to delete the service default (FailedPreconditionError) and nothing changes', async () => {
    const env = setup();
    const { policy } = await env.admin.create(root, fields(), true);
    const before = await env.snapshot();
    const err = await caught(env.admin.delete(root, policy.id));
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect(await env.snapshot()).toBe(before);
    expect(env.changes.map((c) => c.kind)).toEqual(['created']);
    // once unset, it can go
    await env.admin.update(root, policy.id, otherFields(), ['service_default'], false);
    await env.admin.delete(root, policy.id);
    expect(env.changes.map((c) => c.kind)).toEqual(['created', 'updated', 'deleted']);
  });

  it('isolation: another service is NotFoundError, a reader PermissionDeniedError; nothing changes', async () => {
    const env = setup();
    const { policy } = await env.admin.create(root, fields(), false);
    const before = await env.snapshot();
    expect(await caught(env.admin.delete(billingWriter, policy.id))).toBeInstanceOf(NotFoundError);
    expect(await caught(env.admin.delete(ordersReader, policy.id))).toBeInstanceOf(PermissionDeniedError);
    await expectInvalid(env.admin.delete(root, 'pol_bad'), 'policy_id');
    expect(await env.snapshot()).toBe(before);
    expect(env.changes).toHaveLength(1);
  });
});
