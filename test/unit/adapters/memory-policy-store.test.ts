import { MemoryPolicyStore } from '../../../src/adapters/store/memory-policy-store';
import { AlreadyExistsError, ConflictError, FailedPreconditionError, NotFoundError } from '../../../src/domain/errors';
import type { Policy } from '../../../src/domain/policy';

const T0 = 1_700_000_000_000;
const id = (n: number) => `pol_01JD6Z3M8Q4ZC2N1XW7V5TBR${String(n).padStart(2, '0')}`;

function policy(n: number, overrides: Partial<Policy> = {}): Policy {
  return {
    id: id(n),
    service: 'orders',
    name: `p${n}`,
    allowedScopes: ['orders:read'],
    requireExpiry: false,
    allowedCidrs: [],
    timeZone: 'UTC',
    timeWindows: [{ days: ['mon'], start: '09:00', end: '17:00' }],
    rateLimits: [{ name: 'rps', limit: 1, periodMs: 1000, burst: 0 }],
    createdAt: T0,
    updatedAt: T0,
    version: 1,
    ...overrides,
  };
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

async function listAll(store: MemoryPolicyStore, service: string, limit: number): Promise<string[][]> {
  const pages: string[][] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.listPolicies({ service, limit, after });
    pages.push(page.policies.map((p) => p.id));
    if (page.nextAfter === undefined) return pages;
    after = page.nextAfter;
  }
}

describe('MemoryPolicyStore', () => {
  it('creates and reads a policy; an id taken is AlreadyExistsError and changes nothing', async () => {
    const store = new MemoryPolicyStore();
    await store.createPolicy(policy(1), { serviceDefault: false });
    expect(await store.getPolicy(id(1))).toEqual(policy(1));
    expect(await store.getPolicy(id(2))).toBeUndefined();
    expect(await caught(store.createPolicy(policy(1, { name: 'dup', service: 'billing' }), { serviceDefault: true }))).toBeInstanceOf(AlreadyExistsError);
    expect((await store.getPolicy(id(1)))!.name).toBe('p1');
    expect(await store.getServiceDefault('billing')).toBeUndefined();
    expect(await listAll(store, 'billing', 10)).toEqual([[]]);
  });

  it('copies in and out: callers cannot alias stored state', async () => {
    const store = new MemoryPolicyStore();
    const input = policy(1);
    await store.createPolicy(input, { serviceDefault: false });
    (input.allowedScopes as string[]).push('admin');
    const out = (await store.getPolicy(id(1)))!;
    expect(out.allowedScopes).toEqual(['orders:read']);
    (out.timeWindows[0].days as string[]).push('tue');
    (out.rateLimits as unknown[]).length = 0;
    expect(await store.getPolicy(id(1))).toEqual(policy(1));
    const listed = (await store.listPolicies({ service: 'orders', limit: 10 })).policies[0];
    (listed.allowedScopes as string[]).length = 0;
    expect((await store.getPolicy(id(1)))!.allowedScopes).toEqual(['orders:read']);
  });

  it('lists one service in id order, paged, whatever the insertion order', async () => {
    const store = new MemoryPolicyStore();
    for (const n of [5, 1, 4, 2, 3]) await store.createPolicy(policy(n), { serviceDefault: false });
    await store.createPolicy(policy(9, { service: 'billing' }), { serviceDefault: false });
    expect(await listAll(store, 'orders', 2)).toEqual([[id(1), id(2)], [id(3), id(4)], [id(5)]]);
    expect(await listAll(store, 'orders', 5)).toEqual([[id(1), id(2), id(3), id(4), id(5)]]);
    expect(await listAll(store, 'billing', 5)).toEqual([[id(9)]]);
    expect(await listAll(store, 'search', 5)).toEqual([[]]);
  });

  it('replacePolicy is compare-and-set on version', async () => {
    const store = new MemoryPolicyStore();
    await store.createPolicy(policy(1), { serviceDefault: false });
    await store.replacePolicy(policy(1, { name: 'v2', version: 2 }), 1);
    expect((await store.getPolicy(id(1)))!.name).toBe('v2');
    expect(await caught(store.replacePolicy(policy(1, { name: 'stale', version: 2 }), 1))).toBeInstanceOf(ConflictError);
    expect((await store.getPolicy(id(1)))!.name).toBe('v2');
    expect(await caught(store.replacePolicy(policy(2, { version: 2 }), 1))).toBeInstanceOf(NotFoundError);
    expect(await store.getPolicy(id(2))).toBeUndefined();
  });

  it('the service default: set at create, changed, cleared; only to a policy of that service', async () => {
    const store = new MemoryPolicyStore();
    await store.createPolicy(policy(1), { serviceDefault: true });
    await store.createPolicy(policy(2), { serviceDefault: false });
    await store.createPolicy(policy(3, { service: 'billing' }), { serviceDefault: false });
    expect(await store.getServiceDefault('orders')).toBe(id(1));
    await store.setServiceDefault('orders', id(2));
    expect(await store.getServiceDefault('orders')).toBe(id(2));
    expect(await caught(store.setServiceDefault('orders', id(3)))).toBeInstanceOf(NotFoundError);
    expect(await caught(store.setServiceDefault('orders', id(7)))).toBeInstanceOf(NotFoundError);
    expect(await store.getServiceDefault('orders')).toBe(id(2));
    expect(await store.getServiceDefault('billing')).toBeUndefined();
    await store.setServiceDefault('orders', undefined);
    expect(await store.getServiceDefault('orders')).toBeUndefined();
  });

  it('a later create with serviceDefault takes over the default', async () => {
    const store = new MemoryPolicyStore();
    await store.createPolicy(policy(1), { serviceDefault: true });
    await store.createPolicy(policy(2), { serviceDefault: true });
    expect(await store.getServiceDefault('orders')).toBe(id(2));
  });

  it('deletePolicy returns what it removed and drops it from the list; a missing id is undefined', async () => {
    const store = new MemoryPolicyStore();
    for (const n of [1, 2, 3]) await store.createPolicy(policy(n), { serviceDefault: false });
    expect(await store.deletePolicy(id(2))).toEqual(policy(2));
    expect(await store.getPolicy(id(2))).toBeUndefined();
    expect(await listAll(store, 'orders', 10)).toEqual([[id(1), id(3)]]);
    expect(await store.deletePolicy(id(2))).toBeUndefined();
    // the id may be used again after deletion
    await store.createPolicy(policy(2, { name: 'again' }), { serviceDefault: false });
    expect(await listAll(store, 'orders', 10)).toEqual([[id(1), id(2), id(3)]]);
  });

  it('deleting the service default is FailedPreconditionError and changes nothing; after clearing it, it can go', async () => {
    const store = new MemoryPolicyStore();
    await store.createPolicy(policy(1), { serviceDefault: true });
    expect(await caught(store.deletePolicy(id(1)))).toBeInstanceOf(FailedPreconditionError);
    expect(await store.getPolicy(id(1))).toEqual(policy(1));
    expect(await store.getServiceDefault('orders')).toBe(id(1));
    expect(await listAll(store, 'orders', 10)).toEqual([[id(1)]]);
    await store.setServiceDefault('orders', undefined);
    expect(await store.deletePolicy(id(1))).toEqual(policy(1));
  });
});
