import { MemoryPolicyStore } from '../../../src/adapters/store/memory-policy-store';
import { PolicyResolver, type Resolved } from '../../../src/app/policy-resolver';
import { ManualClock } from '../../../src/domain/clock';
import { StoreUnavailableError } from '../../../src/domain/errors';
import type { KeyRecord } from '../../../src/domain/key-record';
import type { Policy } from '../../../src/domain/policy';
import type { PolicyStore } from '../../../src/ports/policy-store';
import { makePolicy, makeRecord } from '../helpers/records';

const T0 = 1_700_000_000_000;
const TTL = 10_000;
const STALE = 60_000;

const DEFAULT_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9A';
const OWN_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9B';
const OTHER_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9C';
const BILLING_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9D';
const MISSING_ID = 'pol_01JD6Z3M8Q4ZC2N1XW7V5TBR9E';

function policy(id: string, overrides: Partial<Policy> = {}): Policy {
  return makePolicy({ id, name: id.slice(-1), createdAt: T0, updatedAt: T0, ...overrides });
}

/** A store wrapper that counts reads and can be taken down. */
class FlakyStore {
  down: false | 'unavailable' | 'other' = false;
  readonly reads: string[] = [];
  readonly store: PolicyStore;

  constructor(readonly inner: MemoryPolicyStore) {
    const fail = () => {
      if (this.down === 'unavailable') throw new StoreUnavailableError('redis down');
      if (this.down === 'other') throw new Error('ECONNRESET');
    };
    this.store = new Proxy(inner, {
      get: (target, prop, receiver) => {
        const v = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function') return v;
        if (prop === 'getPolicy' || prop === 'getServiceDefault') {
          return async (arg: string) => {
            this.reads.push(`${String(prop)}:${arg}`);
            fail();
            return (v as (a: string) => Promise<unknown>).call(target, arg);
          };
        }
        return v.bind(target);
      },
    }) as PolicyStore;
  }
}

async function setup() {
  const inner = new MemoryPolicyStore();
  await inner.createPolicy(policy(DEFAULT_ID, { allowedScopes: ['orders:*'] }), { serviceDefault: true });
  await inner.createPolicy(policy(OWN_ID, { allowedCidrs: ['10.0.0.0/8'] }), { serviceDefault: false });
  await inner.createPolicy(policy(OTHER_ID, { allowedScopes: ['orders:read'] }), { serviceDefault: false });
  await inner.createPolicy(policy(BILLING_ID, { service: 'billing' }), { serviceDefault: true });
  const flaky = new FlakyStore(inner);
  const clock = new ManualClock(T0);
  const resolver = new PolicyResolver({ store: flaky.store, clock, ttlMs: TTL, maxStalenessMs: STALE });
  return { inner, flaky, clock, resolver };
}

const ordersKey = (overrides: Partial<KeyRecord> = {}) => makeRecord({ service: 'orders', ...overrides });
const idOf = (r: Resolved) => (r === null ? null : r?.policy.id);

describe('PolicyResolver', () => {
  it('a key without its own policy follows its service default; a key with one follows its own', async () => {
    const { resolver } = await setup();
    const viaDefault = await resolver.resolve(ordersKey());
    expect(idOf(viaDefault)).toBe(DEFAULT_ID);
    expect(viaDefault?.allowedScopes?.grants('orders:read')).toBe(true);
    const own = await resolver.resolve(ordersKey({ policyId: OWN_ID }));
    expect(idOf(own)).toBe(OWN_ID);
    expect(own?.cidrs?.contains('10.1.1.1')).toBe(true);
    expect(idOf(await resolver.resolve(makeRecord({ service: 'billing' })))).toBe(BILLING_ID);
  });

  it('a service without a default resolves to undefined (no policy applies)', async () => {
    const { resolver } = await setup();
    expect(await resolver.resolve(makeRecord({ service: 'search' }))).toBeUndefined();
    // ...and that answer is cached too: synchronous while fresh.
    expect(resolver.resolve(makeRecord({ service: 'search' }))).toBeUndefined();
  });

  it('answers synchronously (not a Promise) while fresh, with the same compiled policy and no store read', async () => {
    const { resolver, flaky } = await setup();
    const first = resolver.resolve(ordersKey());
    expect(first).toBeInstanceOf(Promise);
    const compiled = await first;
    const readsAfterLoad = flaky.reads.length;
    expect(flaky.reads).toEqual([`getServiceDefault:orders`, `getPolicy:${DEFAULT_ID}`]);
    const second = resolver.resolve(ordersKey());
    expect(second).not.toBeInstanceOf(Promise);
    expect(second).toBe(compiled);
    const own = await resolver.resolve(ordersKey({ policyId: OWN_ID }));
    const ownAgain = resolver.resolve(ordersKey({ policyId: OWN_ID }));
    expect(ownAgain).not.toBeInstanceOf(Promise);
    expect(ownAgain).toBe(own);
    expect(flaky.reads.length).toBe(readsAfterLoad + 1);
  });

  it('asks the store again once the TTL has passed, and only then sees a change', async () => {
    const { resolver, flaky, inner, clock } = await setup();
    await resolver.resolve(ordersKey());
    await inner.setServiceDefault('orders', OTHER_ID);
    clock.advance(TTL - 1);
    const beforeTtl = resolver.resolve(ordersKey());
    expect(beforeTtl).not.toBeInstanceOf(Promise);
    expect(idOf(beforeTtl as Resolved)).toBe(DEFAULT_ID);
    const reads = flaky.reads.length;
    clock.advance(1);
    const atTtl = resolver.resolve(ordersKey());
    expect(atTtl).toBeInstanceOf(Promise);
    expect(idOf(await atTtl)).toBe(OTHER_ID);
    expect(flaky.reads.slice(reads)).toEqual(['getServiceDefault:orders', `getPolicy:${OTHER_ID}`]);
    expect(resolver.resolve(ordersKey())).not.toBeInstanceOf(Promise);
  });

  it('a new policy version is compiled after the TTL', async () => {
    const { resolver, inner, clock } = await setup();
    const v1 = await resolver.resolve(ordersKey({ policyId: OTHER_ID }));
    await inner.replacePolicy(policy(OTHER_ID, { allowedScopes: ['orders:write'], version: 2 }), 1);
    clock.advance(TTL);
    const v2 = await resolver.resolve(ordersKey({ policyId: OTHER_ID }));
    expect(v2).not.toBe(v1);
    expect(v2?.policy.version).toBe(2);
    expect(v2?.allowedScopes?.grants('orders:write')).toBe(true);
    expect(v2?.allowedScopes?.grants('orders:read')).toBe(false);
  });

  it('invalidateService drops the service default and the service policies, not other services', async () => {
    const { resolver, flaky, inner } = await setup();
    await resolver.resolve(ordersKey());
    await resolver.resolve(ordersKey({ policyId: OWN_ID }));
    await resolver.resolve(makeRecord({ service: 'billing' }));
    await inner.setServiceDefault('orders', OTHER_ID);
    resolver.invalidateService('orders');

    const reads = flaky.reads.length;
    expect(idOf(await resolver.resolve(ordersKey()))).toBe(OTHER_ID);
    const own = resolver.resolve(ordersKey({ policyId: OWN_ID }));
    expect(own).toBeInstanceOf(Promise);
    await own;
    // billing's default and policy are still cached
    const billing = resolver.resolve(makeRecord({ service: 'billing' }));
    expect(billing).not.toBeInstanceOf(Promise);
    expect(idOf(billing as Resolved)).toBe(BILLING_ID);
    expect(flaky.reads.slice(reads)).toEqual(['getServiceDefault:orders', `getPolicy:${OTHER_ID}`, `getPolicy:${OWN_ID}`]);
  });

  it('invalidatePolicy drops one policy; the service default id stays cached', async () => {
    const { resolver, flaky } = await setup();
    await resolver.resolve(ordersKey());
    resolver.invalidatePolicy(DEFAULT_ID);
    const reads = flaky.reads.length;
    const again = resolver.resolve(ordersKey());
    expect(again).toBeInstanceOf(Promise);
    expect(idOf(await again)).toBe(DEFAULT_ID);
    expect(flaky.reads.slice(reads)).toEqual([`getPolicy:${DEFAULT_ID}`]);
  });

  it('a key whose own policy was deleted (or never existed) resolves to null, not to the default', async () => {
    const { resolver, inner } = await setup();
    expect(idOf(await resolver.resolve(ordersKey({ policyId: OTHER_ID })))).toBe(OTHER_ID);
    await inner.deletePolicy(OTHER_ID);
    resolver.invalidatePolicy(OTHER_ID);
    expect(await resolver.resolve(ordersKey({ policyId: OTHER_ID }))).toBeNull();
    expect(await resolver.resolve(ordersKey({ policyId: MISSING_ID }))).toBeNull();
    // null is cached like any answer
    expect(resolver.resolve(ordersKey({ policyId: MISSING_ID }))).toBeNull();
  });

  it('invalidateService also drops cached nulls (a missing policy is re-checked)', async () => {
    const { resolver, flaky } = await setup();
    await resolver.resolve(ordersKey({ policyId: MISSING_ID }));
    resolver.invalidateService('billing');
    const reads = flaky.reads.length;
    expect(await resolver.resolve(ordersKey({ policyId: MISSING_ID }))).toBeNull();
    expect(flaky.reads.slice(reads)).toEqual([`getPolicy:${MISSING_ID}`]);
  });

  describe('store outage', () => {
    it('serves the last known policy up to maxStaleness past the TTL, then fails closed', async () => {
      const { resolver, flaky, clock } = await setup();
      const known = await resolver.resolve(ordersKey());
      const knownOwn = await resolver.resolve(ordersKey({ policyId: OWN_ID }));
      flaky.down = 'unavailable';
      clock.advance(TTL + STALE - 1);
      expect(await resolver.resolve(ordersKey())).toBe(known);
      expect(await resolver.resolve(ordersKey({ policyId: OWN_ID }))).toBe(knownOwn);
      clock.advance(1);
      await expect(resolver.resolve(ordersKey())).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(resolver.resolve(ordersKey({ policyId: OWN_ID }))).rejects.toBeInstanceOf(StoreUnavailableError);
    });

    it('a stale answer is still a Promise (the store was asked) and the store is asked again each time', async () => {
      const { resolver, flaky, clock } = await setup();
      await resolver.resolve(ordersKey({ policyId: OWN_ID }));
      flaky.down = 'unavailable';
      clock.advance(TTL);
      const reads = flaky.reads.length;
      const stale = resolver.resolve(ordersKey({ policyId: OWN_ID }));
      expect(stale).toBeInstanceOf(Promise);
      await stale;
      await resolver.resolve(ordersKey({ policyId: OWN_ID }));
      expect(flaky.reads.length).toBe(reads + 2);
    });

    it('recovers: once the store answers again the value is fresh for a new TTL', async () => {
      const { resolver, flaky, clock } = await setup();
      await resolver.resolve(ordersKey({ policyId: OWN_ID }));
      flaky.down = 'unavailable';
      clock.advance(TTL + 1);
      await resolver.resolve(ordersKey({ policyId: OWN_ID }));
      flaky.down = false;
      await resolver.resolve(ordersKey({ policyId: OWN_ID }));
      flaky.down = 'unavailable';
      clock.advance(TTL - 1);
      expect(resolver.resolve(ordersKey({ policyId: OWN_ID }))).not.toBeInstanceOf(Promise);
    });

    it('a policy never loaded fails closed at once, and other errors become StoreUnavailableError with the cause', async () => {
      const { resolver, flaky } = await setup();
      flaky.down = 'unavailable';
      await expect(resolver.resolve(ordersKey())).rejects.toBeInstanceOf(StoreUnavailableError);
      flaky.down = 'other';
      const err = await Promise.resolve(resolver.resolve(ordersKey({ policyId: OWN_ID }))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).cause).toEqual(new Error('ECONNRESET'));
    });

    it('a cached null stays null during an outage within the staleness bound (never loosened to the default)', async () => {
      const { resolver, flaky, clock } = await setup();
      expect(await resolver.resolve(ordersKey({ policyId: MISSING_ID }))).toBeNull();
      flaky.down = 'other';
      clock.advance(TTL + 1);
      expect(await resolver.resolve(ordersKey({ policyId: MISSING_ID }))).toBeNull();
    });
  });
});

describe('PolicyResolver and invalidations racing a store read', () => {
  test('a read that started before an invalidation does not put the old policy back', async () => {
    const inner = new MemoryPolicyStore();
    await inner.createPolicy(policy(OWN_ID, { version: 1, name: 'v1' }), { serviceDefault: false });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const store = new Proxy(inner, {
      get: (target, prop, receiver) => {
        const v = Reflect.get(target, prop, receiver);
        if (prop !== 'getPolicy') return typeof v === 'function' ? v.bind(target) : v;
        return async (id: string) => {
          const read = await target.getPolicy(id); // what the store held when the read reached it
          await gate;
          return read;
        };
      },
    }) as PolicyStore;
    const clock = new ManualClock(T0);
    const resolver = new PolicyResolver({ store, clock, ttlMs: TTL, maxStalenessMs: STALE });
    const key = ordersKey({ policyId: OWN_ID });

    const first = resolver.resolve(key) as Promise<Resolved>;
    await Promise.resolve();
    await inner.replacePolicy(policy(OWN_ID, { version: 2, name: 'v2' }), 1);
    resolver.invalidatePolicy(OWN_ID);
    release();
    expect((await first)?.policy.name).toBe('v1'); // that caller raced the change
    const second = resolver.resolve(key);
    expect(second).toBeInstanceOf(Promise); // not cached from the stale read
    expect((await second)?.policy.name).toBe('v2');
  });
});
