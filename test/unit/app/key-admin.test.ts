import { MAX_CAS_ATTEMPTS } from '../../../src/app/cas-retry';
import { MemoryLimiter } from '../../../src/adapters/limits/memory-limiter';
import { MemoryPolicyStore } from '../../../src/adapters/store/memory-policy-store';
import { createHash } from 'node:crypto';
import { MemoryKeyStore } from '../../../src/adapters/store/memory-key-store';
import {
  KeyAdmin,
  UPDATABLE_FIELDS,
  type CreateKeyInput,
  type KeyChangeKind,
  type ListKeysInput,
  type UpdateKeyInput,
} from '../../../src/app/key-admin';
import { ADMIN_SERVICE, rootPrincipal, type Principal } from '../../../src/domain/admin-access';
import { ManualClock } from '../../../src/domain/clock';
import {
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  StoreUnavailableError,
} from '../../../src/domain/errors';
import { LIMITS } from '../../../src/domain/input-rules';
import { displayHint, parseKey } from '../../../src/domain/key-format';
import { isKeyId, KeyIdGenerator } from '../../../src/domain/key-id';
import type { KeyRecord } from '../../../src/domain/key-record';
import { ScopeSet } from '../../../src/domain/scopes';
import type { KeyStore } from '../../../src/ports/key-store';

const T0 = 1_700_000_000_000;
const MISSING_ID = 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A';

const root = rootPrincipal();
const principal = (actor: string, ...scopes: string[]): Principal => ({ actor, scopes: new ScopeSet(scopes) });
const ordersWriter = principal('key_writer', 'service:orders:write');
const ordersReader = principal('key_reader', 'service:orders:read');
const allTenants = principal('key_tenants', 'service:*');
const adminKey = principal('key_admin', 'admin');
const nobody = principal('key_nobody');

type Event = { kind: KeyChangeKind; record: KeyRecord; actor: string };

function createInput(overrides: Partial<CreateKeyInput> = {}): CreateKeyInput {
  return {
    service: 'orders',
    owner: 'team-a',
    name: 'checkout',
    scopes: ['orders:read'],
    metadata: { env: 'prod' },
    prefix: '',
    ...overrides,
  };
}

function updateInput(keyId: string, overrides: Partial<UpdateKeyInput> = {}): UpdateKeyInput {
  return { keyId, updateMask: [], name: '', scopes: [], metadata: {}, enabled: false, ...overrides };
}

function listInput(overrides: Partial<ListKeysInput> = {}): ListKeysInput {
  return { service: '', owner: '', pageSize: 0, pageToken: '', ...overrides };
}

/** Wraps a store, replacing some of its methods. */
function wrapStore(inner: MemoryKeyStore, overrides: Partial<Record<keyof KeyStore, unknown>>): KeyStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop as keyof KeyStore];
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

function setup(opts: { store?: KeyStore; inner?: MemoryKeyStore; defaultPrefix?: string } = {}) {
  const inner = opts.inner ?? new MemoryKeyStore();
  const store = opts.store ?? inner;
  const clock = new ManualClock(T0);
  const events: Event[] = [];
  const limiter = new MemoryLimiter();
  const admin = new KeyAdmin({
    store,
    clock,
    policies: new MemoryPolicyStore(),
    limiter,
    ids: new KeyIdGenerator(),
    defaultPrefix: opts.defaultPrefix ?? 'sk',
    onChange: (c) => {
      events.push({ kind: c.kind, record: c.record, actor: c.actor });
    },
  });
  /** Everything in the store, read directly (not through KeyAdmin). */
  const snapshot = async (): Promise<string> => JSON.stringify((await inner.list({ limit: 1000 })).records);
  /** Every record, paged through KeyAdmin.list with the root principal. */
  const listAll = async (input: Partial<ListKeysInput> = {}, p: Principal = root): Promise<KeyRecord[]> => {
    const out: KeyRecord[] = [];
    let pageToken = '';
    do {
      const page = await admin.list(p, listInput({ ...input, pageToken }));
      out.push(...page.records);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return out;
  };
  const create = (p: Principal, overrides: Partial<CreateKeyInput> = {}) => admin.create(p, createInput(overrides));
  return { inner, store, clock, events, admin, snapshot, listAll, create, limiter };
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

async function expectError(p: Promise<unknown>, cls: abstract new (...args: never[]) => Error): Promise<Error> {
  const err = await caught(p);
  expect(err).toBeInstanceOf(cls);
  return err as Error;
}

/** Seeds a few keys in several services, then checks `fn` leaves the store and listeners untouched. */
async function expectNoChange(env: ReturnType<typeof setup>, fn: () => Promise<void>): Promise<void> {
  const before = await env.snapshot();
  const eventsBefore = env.events.length;
  await fn();
  expect(await env.snapshot()).toBe(before);
  expect(env.events.length).toBe(eventsBefore);
}

async function seed(env: ReturnType<typeof setup>) {
  const orders = await env.create(root, { service: 'orders', notBefore: T0 + 60_000, expiresAt: T0 + 3_600_000 });
  const billing = await env.create(root, { service: 'billing', owner: 'team-b' });
  const adminSvc = await env.create(root, { service: ADMIN_SERVICE, scopes: ['admin'] });
  env.clock.advance(1000);
  return { orders: orders.record, billing: billing.record, adminSvc: adminSvc.record };
}

// ---------------------------------------------------------------------------------------------

describe('KeyAdmin.create', () => {
  it('stores an active key and returns it with the secret', async () => {
    const env = setup();
    const { record, secret } = await env.create(root, {
      scopes: ['orders:read', 'orders:write', 'orders:read'],
      metadata: { env: 'prod', team: 'a' },
    });
    expect(isKeyId(record.id)).toBe(true);
    expect(record).toMatchObject({
      service: 'orders',
      owner: 'team-a',
      name: 'checkout',
      prefix: 'sk',
      scopes: ['orders:read', 'orders:write'],
      metadata: { env: 'prod', team: 'a' },
      state: 'active',
      createdAt: T0,
      updatedAt: T0,
      usageCount: 0,
      version: 1,
    });
    expect('notBefore' in record).toBe(false);
    expect('expiresAt' in record).toBe(false);
    expect('revokedAt' in record).toBe(false);
    const parsed = parseKey(secret);
    expect(parsed?.prefix).toBe('sk');
    expect(record.hint).toBe(displayHint(parsed!));
    expect(secret.startsWith(record.hint)).toBe(true);
    expect(await env.admin.get(root, record.id)).toEqual(record);
    expect(await env.inner.getById(record.id)).toEqual(record);
  });

  it('stores only the SHA-256 of the secret, never the secret', async () => {
    const env = setup();
    const { record, secret } = await env.create(root);
    expect(record.hash).toBe(createHash('sha256').update(Buffer.from(secret, 'utf8')).digest('hex'));
    const random = parseKey(secret)!.random;
    for (const r of [record, await env.inner.getById(record.id), await env.inner.getByHash(record.hash)]) {
      const json = JSON.stringify(r);
      expect(json).not.toContain(secret);
      expect(json).not.toContain(random.slice(4));
    }
    expect(JSON.stringify(env.events)).not.toContain(secret);
  });

  it('makes a different secret and id for every key', async () => {
    const env = setup();
    const made = await Promise.all(Array.from({ length: 20 }, () => env.create(root)));
    expect(new Set(made.map((m) => m.secret)).size).toBe(20);
    expect(new Set(made.map((m) => m.record.id)).size).toBe(20);
    expect(new Set(made.map((m) => m.record.hash)).size).toBe(20);
  });

  it('uses the requested prefix, or the configured default', async () => {
    const env = setup({ defaultPrefix: 'kw_test' });
    const custom = await env.create(root, { prefix: 'pk_live' });
    expect(custom.record.prefix).toBe('pk_live');
    expect(custom.secret.startsWith('pk_live_')).toBe(true);
    const dflt = await env.create(root, { prefix: '' });
    expect(dflt.record.prefix).toBe('kw_test');
    expect(parseKey(dflt.secret)?.prefix).toBe('kw_test');
  });

  it('records the validity window', async () => {
    const env = setup();
    const { record } = await env.create(root, { notBefore: T0 - 5000, expiresAt: T0 + 1 });
    expect(record.notBefore).toBe(T0 - 5000);
    expect(record.expiresAt).toBe(T0 + 1);
    const later = await env.create(root, { notBefore: T0 + 10_000, expiresAt: T0 + 10_001 });
    expect(later.record.notBefore).toBe(T0 + 10_000);
  });

  it('accepts every field at its limit', async () => {
    const env = setup();
    const metadata = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'é'.repeat(255)])); // 4096 bytes
    const { record } = await env.create(root, {
      service: 'a'.repeat(63),
      owner: 'o'.repeat(128),
      name: 'n'.repeat(128),
      scopes: [...Array.from({ length: 63 }, (_, i) => `s${i}`), 'x'.repeat(128)],
      metadata,
      prefix: 'p'.repeat(32),
      expiresAt: T0 + 1,
    });
    expect(record.scopes).toHaveLength(64);
    expect(record.metadata).toEqual(metadata);
    const wide = await env.create(root, {
      metadata: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`${'k'.repeat(62)}${String(i).padStart(2, '0')}`, 'v'])),
    });
    expect(Object.keys(wide.record.metadata)).toHaveLength(32);
    const long = await env.create(root, { metadata: { k: 'v'.repeat(512) } });
    expect(long.record.metadata.k).toHaveLength(512);
    const empty = await env.create(root, { owner: '', name: '', scopes: [], metadata: {} });
    expect(empty.record).toMatchObject({ owner: '', name: '', scopes: [], metadata: {} });
  });

  it('tells the listener, with the actor', async () => {
    const env = setup();
    const { record } = await env.create(ordersWriter);
    expect(env.events).toEqual([{ kind: 'created', record, actor: 'key_writer' }]);
  });

  const tooManyEntries = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
  const tooManyBytes = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'v'.repeat(510)]));
  const invalidCases: Array<[string, Partial<CreateKeyInput>, string]> = [
    ['empty service', { service: '' }, 'service'],
    ['upper-case service', { service: 'Orders' }, 'service'],
    ['service starting with -', { service: '-orders' }, 'service'],
    ['service of 64 characters', { service: 'a'.repeat(64) }, 'service'],
    ['service with _', { service: 'my_service' }, 'service'],
    ['owner of 129 characters', { owner: 'o'.repeat(129) }, 'owner'],
    ['owner with a newline', { owner: 'team\na' }, 'owner'],
    ['name of 129 characters', { name: 'n'.repeat(129) }, 'name'],
    ['name with a control character', { name: 'a\u0007b' }, 'name'],
    ['65 scopes', { scopes: Array.from({ length: 65 }, (_, i) => `s${i}`) }, 'scopes'],
    ['a scope with a space', { scopes: ['a', 'b', 'bad scope'] }, 'scopes[2]'],
    ['an empty scope', { scopes: [''] }, 'scopes[0]'],
    ['a scope of 129 characters', { scopes: ['ok', 'x'.repeat(129)] }, 'scopes[1]'],
    ['a scope with an inner *', { scopes: ['orders:*:read'] }, 'scopes[0]'],
    ['33 metadata entries', { metadata: tooManyEntries }, 'metadata'],
    ['a metadata key of 65 characters', { metadata: { ['k'.repeat(65)]: 'v' } }, 'metadata'],
    ['an empty metadata key', { metadata: { '': 'v' } }, 'metadata'],
    ['a metadata value of 513 characters', { metadata: { k: 'v'.repeat(513) } }, 'metadata["k"]'],
    ['a metadata value with a control character', { metadata: { k: 'a\u0000' } }, 'metadata["k"]'],
    ['metadata over 4096 bytes', { metadata: tooManyBytes }, 'metadata'],
    ['an upper-case prefix', { prefix: 'SK' }, 'prefix'],
    ['a prefix with -', { prefix: 'sk-live' }, 'prefix'],
    ['a prefix of 33 characters', { prefix: 'p'.repeat(33) }, 'prefix'],
    ['a prefix starting with a digit', { prefix: '1sk' }, 'prefix'],
    ['an expiry now', { expiresAt: T0 }, 'expire_time'],
    ['an expiry in the past', { expiresAt: T0 - 1 }, 'expire_time'],
    ['an expiry at not-before', { notBefore: T0 + 5000, expiresAt: T0 + 5000 }, 'expire_time'],
    ['an expiry before not-before', { notBefore: T0 + 5000, expiresAt: T0 + 4000 }, 'expire_time'],
  ];

  it.each(invalidCases)('rejects %s with InvalidArgumentError and writes nothing', async (_label, overrides, field) => {
    const env = setup();
    await seed(env);
    env.clock.set(T0);
    await expectNoChange(env, () => expectInvalid(env.create(root, overrides), field));
  });

  it.each(invalidCases)('rejects %s even for a principal that may write', async (_label, overrides, field) => {
    const env = setup();
    env.clock.set(T0);
    await expectNoChange(env, () => expectInvalid(env.create(ordersWriter, { service: 'orders', ...overrides }), field));
  });

  it('rejects an invalid configured default prefix when none is given', async () => {
    const env = setup({ defaultPrefix: 'Not-Valid' });
    await expectNoChange(env, () => expectInvalid(env.create(root, { prefix: '' }), 'prefix'));
  });

  it('lets a service writer create keys in its service only', async () => {
    const env = setup();
    await env.create(ordersWriter, { service: 'orders' });
    await expectNoChange(env, async () => {
      await expectError(env.create(ordersWriter, { service: 'billing' }), PermissionDeniedError);
    });
  });

  it('does not let a reader, or a credential without scopes, create keys', async () => {
    const env = setup();
    await expectNoChange(env, async () => {
      await expectError(env.create(ordersReader, { service: 'orders' }), PermissionDeniedError);
      await expectError(env.create(nobody, { service: 'orders' }), PermissionDeniedError);
    });
  });

  it('lets only admin create keys of the admin service', async () => {
    const env = setup();
    await expectNoChange(env, async () => {
      await expectError(env.create(allTenants, { service: ADMIN_SERVICE, scopes: ['admin'] }), PermissionDeniedError);
      await expectError(env.create(principal('k', `service:${ADMIN_SERVICE}:write`), { service: ADMIN_SERVICE }), PermissionDeniedError);
    });
    await env.create(adminKey, { service: ADMIN_SERVICE, scopes: ['admin'] });
    await env.create(root, { service: ADMIN_SERVICE, scopes: ['service:orders:read'] });
    await env.create(allTenants, { service: 'billing' });
    expect(env.events.map((e) => e.actor)).toEqual(['key_admin', 'root', 'key_tenants']);
  });

  it('propagates a store failure and tells no listener', async () => {
    const inner = new MemoryKeyStore();
    const env = setup({
      inner,
      store: wrapStore(inner, { create: () => Promise.reject(new StoreUnavailableError('down')) }),
    });
    await expectError(env.create(root), StoreUnavailableError);
    expect(env.events).toEqual([]);
    expect(await env.snapshot()).toBe('[]');
  });
});

// ---------------------------------------------------------------------------------------------

describe('KeyAdmin.get', () => {
  it('returns keys to principals that may read their service', async () => {
    const env = setup();
    const { orders, billing, adminSvc } = await seed(env);
    expect(await env.admin.get(root, orders.id)).toEqual(orders);
    expect(await env.admin.get(root, adminSvc.id)).toEqual(adminSvc);
    expect(await env.admin.get(ordersReader, orders.id)).toEqual(orders);
    expect(await env.admin.get(ordersWriter, orders.id)).toEqual(orders);
    expect(await env.admin.get(allTenants, billing.id)).toEqual(billing);
    expect(await env.admin.get(adminKey, adminSvc.id)).toEqual(adminSvc);
  });

  it("answers NotFound for another service's key, exactly as for a missing one", async () => {
    const env = setup();
    const { billing, adminSvc } = await seed(env);
    const missing = (await expectError(env.admin.get(ordersWriter, MISSING_ID), NotFoundError)).message;
    const foreign = (await expectError(env.admin.get(ordersWriter, billing.id), NotFoundError)).message;
    expect(foreign.replace(billing.id, '<id>')).toBe(missing.replace(MISSING_ID, '<id>'));
    await expectError(env.admin.get(nobody, billing.id), NotFoundError);
    await expectError(env.admin.get(allTenants, adminSvc.id), NotFoundError);
  });

  it.each(['', 'nope', 'KEY_01JD6Z3M8Q4ZC2N1XW7V5TBR9A', `${MISSING_ID}x`])('rejects the key id %j', async (id) => {
    const env = setup();
    await seed(env);
    await expectNoChange(env, () => expectInvalid(env.admin.get(root, id), 'key_id'));
  });

  it('returns a copy: changing it does not change the store', async () => {
    const env = setup();
    const { orders } = await seed(env);
    const got = await env.admin.get(root, orders.id);
    (got.scopes as string[]).push('mutated');
    (got.metadata as Record<string, string>).x = 'y';
    expect(await env.admin.get(root, orders.id)).toEqual(orders);
  });
});

// ---------------------------------------------------------------------------------------------

describe('KeyAdmin.list', () => {
  it('lists every service for admin, in id order', async () => {
    const env = setup();
    const { orders, billing, adminSvc } = await seed(env);
    const all = await env.admin.list(root, listInput());
    expect(all.records).toEqual([orders, billing, adminSvc]);
    expect(all.nextPageToken).toBe('');
    expect((await env.admin.list(adminKey, listInput())).records).toHaveLength(3);
  });

  it('filters by service, owner and state', async () => {
    const env = setup();
    const a1 = (await env.create(root, { owner: 'a' })).record;
    const b1 = (await env.create(root, { owner: 'b' })).record;
    const a2 = (await env.create(root, { owner: 'a' })).record;
    const other = (await env.create(root, { service: 'billing', owner: 'a' })).record;
    await env.admin.update(root, updateInput(a2.id, { updateMask: ['enabled'], enabled: false }));
    const ids = async (input: Partial<ListKeysInput>) => (await env.listAll(input)).map((r) => r.id);
    expect(await ids({ service: 'orders' })).toEqual([a1.id, b1.id, a2.id]);
    expect(await ids({ service: 'orders', owner: 'a' })).toEqual([a1.id, a2.id]);
    expect(await ids({ owner: 'a' })).toEqual([a1.id, a2.id, other.id]);
    expect(await ids({ service: 'orders', state: 'disabled' })).toEqual([a2.id]);
    expect(await ids({ service: 'orders', owner: 'a', state: 'active' })).toEqual([a1.id]);
    expect(await ids({ state: 'active' })).toEqual([a1.id, b1.id, other.id]);
    expect(await ids({ service: 'payments' })).toEqual([]);
  });

  it('lets tenants list the services they may read, and nothing else', async () => {
    const env = setup();
    const { orders, billing } = await seed(env);
    expect((await env.admin.list(ordersReader, listInput({ service: 'orders' }))).records).toEqual([orders]);
    expect((await env.admin.list(ordersWriter, listInput({ service: 'orders' }))).records).toEqual([orders]);
    expect((await env.admin.list(allTenants, listInput({ service: 'billing' }))).records).toEqual([billing]);
    await expectError(env.admin.list(ordersWriter, listInput({ service: 'billing' })), PermissionDeniedError);
    await expectError(env.admin.list(nobody, listInput({ service: 'orders' })), PermissionDeniedError);
    await expectError(env.admin.list(ordersWriter, listInput({ service: '' })), PermissionDeniedError);
    await expectError(env.admin.list(allTenants, listInput({ service: '' })), PermissionDeniedError);
    await expectError(env.admin.list(allTenants, listInput({ service: ADMIN_SERVICE })), PermissionDeniedError);
    expect((await env.admin.list(adminKey, listInput({ service: ADMIN_SERVICE }))).records).toHaveLength(1);
  });

  it('uses 100 as the default page size', async () => {
    const env = setup();
    for (let i = 0; i < 101; i++) await env.create(root);
    const page = await env.admin.list(root, listInput({ pageSize: 0 }));
    expect(page.records).toHaveLength(100);
    expect(page.nextPageToken).not.toBe('');
  });

  const badLists: Array<[string, Partial<ListKeysInput>, string]> = [
    ['a bad service', { service: 'Bad' }, 'service'],
    ['an owner of 129 characters', { owner: 'o'.repeat(129) }, 'owner'],
    ['an owner with a control character', { owner: 'a\tb' }, 'owner'],
    ['a negative page size', { pageSize: -1 }, 'page_size'],
    ['a page size of 1001', { pageSize: 1001 }, 'page_size'],
    ['a fractional page size', { pageSize: 2.5 }, 'page_size'],
    ['a garbage page token', { pageToken: 'garbage' }, 'page_token'],
    ['an over-long page token', { pageToken: 'A'.repeat(LIMITS.pageTokenLength + 1) }, 'page_token'],
  ];
  it.each(badLists)('rejects %s', async (_label, overrides, field) => {
    const env = setup();
    await seed(env);
    await expectNoChange(env, () => expectInvalid(env.admin.list(root, listInput(overrides)), field));
  });

  it.each([
    ['service', { service: 'billing' }],
    ['owner', { service: 'orders', owner: 'team-b' }],
    ['state', { service: 'orders', state: 'active' as const }],
    ['no filter', { service: '' }],
  ])('refuses a page token when the %s filter changes', async (_label, changed) => {
    const env = setup();
    for (let i = 0; i < 5; i++) await env.create(root);
    const first = await env.admin.list(root, listInput({ service: 'orders', pageSize: 2 }));
    expect(first.nextPageToken).not.toBe('');
    await expectNoChange(env, () =>
      expectInvalid(env.admin.list(root, listInput({ ...changed, pageSize: 2, pageToken: first.nextPageToken })), 'page_token'),
    );
  });

  it('accepts a different page size between pages', async () => {
    const env = setup();
    const made: string[] = [];
    for (let i = 0; i < 7; i++) made.push((await env.create(root)).record.id);
    const p1 = await env.admin.list(root, listInput({ pageSize: 2 }));
    const p2 = await env.admin.list(root, listInput({ pageSize: 5, pageToken: p1.nextPageToken }));
    expect([...p1.records, ...p2.records].map((r) => r.id)).toEqual(made);
    expect(p2.nextPageToken).toBe('');
  });

  it('pages through 250 keys, 100 at a time, each key exactly once and in order', async () => {
    const env = setup();
    const made: string[] = [];
    for (let i = 0; i < 250; i++) {
      if (i % 3 === 0) env.clock.advance(1);
      made.push((await env.create(root, { owner: `o${i % 4}` })).record.id);
    }
    expect([...made].sort()).toEqual(made);
    const pages: string[][] = [];
    let token = '';
    do {
      const page = await env.admin.list(root, listInput({ service: 'orders', pageSize: 100, pageToken: token }));
      pages.push(page.records.map((r) => r.id));
      token = page.nextPageToken;
    } while (token !== '' && pages.length < 10);
    expect(pages.map((p) => p.length)).toEqual([100, 100, 50]);
    expect(pages.flat()).toEqual(made);
  });

  it('ends with an empty token when the last page is exactly full', async () => {
    const env = setup();
    for (let i = 0; i < 200; i++) await env.create(root);
    const p1 = await env.admin.list(root, listInput({ pageSize: 100 }));
    const p2 = await env.admin.list(root, listInput({ pageSize: 100, pageToken: p1.nextPageToken }));
    expect(p2.records).toHaveLength(100);
    expect(p2.nextPageToken).toBe('');
  });

  it('neither skips nor repeats existing keys when keys are created and deleted between pages', async () => {
    const env = setup();
    const original: string[] = [];
    for (let i = 0; i < 250; i++) {
      if (i % 5 === 0) env.clock.advance(1);
      original.push((await env.create(root)).record.id);
    }
    const inserted: string[] = [];
    const deleted = new Set<string>();
    const seen: string[] = [];
    let token = '';
    let round = 0;
    do {
      const page = await env.admin.list(root, listInput({ service: 'orders', pageSize: 100, pageToken: token }));
      seen.push(...page.records.map((r) => r.id));
      token = page.nextPageToken;
      round++;
      // Concurrent writers: new keys (some in the same millisecond as the last ones)...
      for (let i = 0; i < 30; i++) {
        if (i % 10 === 0) env.clock.advance(1);
        inserted.push((await env.create(root)).record.id);
      }
      // ...a deletion of a key not yet listed, and of the cursor key itself.
      if (round === 1) {
        const unseen = original[150];
        await env.admin.delete(root, unseen);
        deleted.add(unseen);
        const cursor = seen[seen.length - 1];
        await env.admin.delete(root, cursor);
        deleted.add(cursor);
      }
    } while (token !== '' && round < 20);
    expect(new Set(seen).size).toBe(seen.length); // nothing repeated
    expect([...seen].sort()).toEqual(seen); // in id order
    const expectedOriginal = original.filter((id) => !deleted.has(id) || seen.slice(0, 100).includes(id));
    expect(seen.filter((id) => original.includes(id))).toEqual(expectedOriginal); // nothing skipped
    expect(seen).not.toContain(original[150]);
    // Keys created while paging come after every cursor, so they are listed too (until the end).
    const lastRoundInserts = inserted.slice(-30);
    expect(seen).toEqual([...expectedOriginal, ...inserted.filter((id) => !lastRoundInserts.includes(id))]);
  });

  it('pages with owner and state filters', async () => {
    const env = setup();
    const expected: string[] = [];
    for (let i = 0; i < 40; i++) {
      const { record } = await env.create(root, { owner: i % 2 === 0 ? 'even' : 'odd' });
      if (i % 3 === 0) await env.admin.update(root, updateInput(record.id, { updateMask: ['enabled'], enabled: false }));
      else if (i % 2 === 0) expected.push(record.id);
    }
    const got = await env.listAll({ service: 'orders', owner: 'even', state: 'active', pageSize: 3 });
    expect(got.map((r) => r.id)).toEqual(expected);
    expect(got.every((r) => r.owner === 'even' && r.state === 'active')).toBe(true);
  });

  it.each([
    ['CJK', '漢'.repeat(128)],
    ['emoji', '😀'.repeat(64)],
    ['quotes and backslashes', '"\\'.repeat(64)],
  ])('pages with the longest %s owner filter', async (_label, owner) => {
    const env = setup();
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await env.create(root, { service: 'a'.repeat(63), owner })).record.id);
    const got = await env.listAll({ service: 'a'.repeat(63), owner, state: 'active', pageSize: 2 });
    expect(got.map((r) => r.id)).toEqual(made);
  });
});

// ---------------------------------------------------------------------------------------------

describe('KeyAdmin.update', () => {
  it('changes only the fields in the mask, bumping version and updatedAt', async () => {
    const env = setup();
    const { orders } = await seed(env);
    env.clock.set(T0 + 5000);
    const updated = await env.admin.update(
      ordersWriter,
      updateInput(orders.id, { updateMask: ['name'], name: 'renamed', scopes: ['ignored'], metadata: { ignored: 'x' }, enabled: false }),
    );
    expect(updated).toEqual({ ...orders, name: 'renamed', version: 2, updatedAt: T0 + 5000 });
    expect(await env.admin.get(root, orders.id)).toEqual(updated);
    expect(env.events.at(-1)).toEqual({ kind: 'updated', record: updated, actor: 'key_writer' });
  });

  it('replaces scopes (de-duplicated) and metadata', async () => {
    const env = setup();
    const { orders } = await seed(env);
    const updated = await env.admin.update(
      root,
      updateInput(orders.id, { updateMask: ['scopes', 'metadata'], scopes: ['b', 'a', 'b'], metadata: { only: 'this' } }),
    );
    expect(updated.scopes).toEqual(['b', 'a']);
    expect(updated.metadata).toEqual({ only: 'this' });
  });

  it('sets and clears the expiry', async () => {
    const env = setup();
    const { billing } = await seed(env);
    const set = await env.admin.update(root, updateInput(billing.id, { updateMask: ['expire_time'], expiresAt: T0 + 99_000 }));
    expect(set.expiresAt).toBe(T0 + 99_000);
    const kept = await env.admin.update(root, updateInput(billing.id, { updateMask: ['name'], name: 'x' }));
    expect(kept.expiresAt).toBe(T0 + 99_000);
    const cleared = await env.admin.update(root, updateInput(billing.id, { updateMask: ['expire_time'] }));
    expect('expiresAt' in cleared).toBe(false);
    expect('expiresAt' in (await env.admin.get(root, billing.id))).toBe(false);
  });

  it('disables and re-enables', async () => {
    const env = setup();
    const { orders } = await seed(env);
    const disabled = await env.admin.update(root, updateInput(orders.id, { updateMask: ['enabled'], enabled: false }));
    expect(disabled.state).toBe('disabled');
    const enabled = await env.admin.update(root, updateInput(orders.id, { updateMask: ['enabled'], enabled: true }));
    expect(enabled.state).toBe('active');
    expect(enabled.version).toBe(3);
  });

  it('accepts repeated mask paths and every updatable field at once', async () => {
    const env = setup();
    const { billing } = await seed(env);
    expect([...UPDATABLE_FIELDS]).toEqual(['name', 'scopes', 'metadata', 'expire_time', 'enabled', 'policy_id', 'credits']);
    const updated = await env.admin.update(
      root,
      updateInput(billing.id, {
        updateMask: [...UPDATABLE_FIELDS, 'name'],
        name: 'all',
        scopes: ['s'],
        metadata: { m: '1' },
        expiresAt: T0 + 50_000,
        enabled: false,
        policyId: '',
        credits: 7,
      }),
    );
    expect(updated).toMatchObject({ name: 'all', scopes: ['s'], metadata: { m: '1' }, expiresAt: T0 + 50_000, state: 'disabled', version: 2 });
    expect(updated.policyId).toBeUndefined();
    expect(await env.limiter.credits(billing.id, { initial: 0 }, T0)).toBe(7);
  });

  it('ignores invalid values of fields outside the mask', async () => {
    const env = setup();
    const { orders } = await seed(env);
    const updated = await env.admin.update(
      root,
      updateInput(orders.id, { updateMask: ['enabled'], name: 'x'.repeat(500), scopes: ['bad scope'], metadata: { '': '' }, expiresAt: 0, enabled: true }),
    );
    expect(updated.name).toBe(orders.name);
  });

  const badUpdates: Array<[string, Partial<UpdateKeyInput>, string]> = [
    ['an empty update mask', { updateMask: [] }, 'update_mask'],
    ['an unknown path', { updateMask: ['owner'] }, 'update_mask'],
    ['an immutable field', { updateMask: ['service'] }, 'update_mask'],
    ['a camel-case path', { updateMask: ['expireTime'], expiresAt: T0 + 99_000 }, 'update_mask'],
    ['a valid path with an unknown one', { updateMask: ['name', 'state'], name: 'renamed' }, 'update_mask'],
    ['an empty path', { updateMask: [''] }, 'update_mask'],
    ['a name of 129 characters', { updateMask: ['name'], name: 'n'.repeat(129) }, 'name'],
    ['a name with a control character', { updateMask: ['name'], name: 'a\nb' }, 'name'],
    ['65 scopes', { updateMask: ['scopes'], scopes: Array.from({ length: 65 }, (_, i) => `s${i}`) }, 'scopes'],
    ['a bad scope', { updateMask: ['scopes'], scopes: ['ok', 'no spaces'] }, 'scopes[1]'],
    ['33 metadata entries', { updateMask: ['metadata'], metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }, 'metadata'],
    ['a metadata value of 513 characters', { updateMask: ['metadata'], metadata: { k: 'v'.repeat(513) } }, 'metadata["k"]'],
    ['a metadata key of 65 characters', { updateMask: ['metadata'], metadata: { ['k'.repeat(65)]: 'v' } }, 'metadata'],
    ['an expiry now', { updateMask: ['expire_time'], expiresAt: T0 + 1000 }, 'expire_time'],
    ['an expiry in the past', { updateMask: ['expire_time'], expiresAt: T0 }, 'expire_time'],
    ["an expiry before the key's not-before", { updateMask: ['expire_time'], expiresAt: T0 + 30_000 }, 'expire_time'],
    ["an expiry at the key's not-before", { updateMask: ['expire_time'], expiresAt: T0 + 60_000 }, 'expire_time'],
  ];

  it.each(badUpdates)('rejects %s and writes nothing', async (_label, overrides, field) => {
    const env = setup();
    const { orders } = await seed(env); // now = T0 + 1000; orders has notBefore T0 + 60s
    await expectNoChange(env, () => expectInvalid(env.admin.update(root, updateInput(orders.id, overrides)), field));
  });

  it.each(['', 'nope', MISSING_ID.toLowerCase()])('rejects the key id %j', async (id) => {
    const env = setup();
    await seed(env);
    await expectNoChange(env, () => expectInvalid(env.admin.update(root, updateInput(id, { updateMask: ['name'] })), 'key_id'));
  });

  it('refuses to change a revoked key', async () => {
    const env = setup();
    const { orders } = await seed(env);
    await env.admin.revoke(root, orders.id, 'leaked');
    await expectNoChange(env, () =>
      expectError(env.admin.update(root, updateInput(orders.id, { updateMask: ['enabled'], enabled: true })), FailedPreconditionError).then(() => {}),
    );
  });

  it('enforces tenant isolation and write access', async () => {
    const env = setup();
    const { orders, billing, adminSvc } = await seed(env);
    const rename = (id: string) => updateInput(id, { updateMask: ['name'], name: 'hijacked' });
    await expectNoChange(env, async () => {
      await expectError(env.admin.update(ordersWriter, rename(billing.id)), NotFoundError);
      await expectError(env.admin.update(ordersWriter, rename(MISSING_ID)), NotFoundError);
      await expectError(env.admin.update(ordersReader, rename(orders.id)), PermissionDeniedError);
      await expectError(env.admin.update(nobody, rename(orders.id)), NotFoundError);
      await expectError(env.admin.update(allTenants, rename(adminSvc.id)), NotFoundError);
    });
    expect((await env.admin.update(adminKey, rename(adminSvc.id))).name).toBe('hijacked');
  });

  it('retries when a concurrent writer wins the compare-and-set, keeping both changes', async () => {
    const inner = new MemoryKeyStore();
    let interfered = false;
    const store = wrapStore(inner, {
      replace: async (record: KeyRecord, expectedVersion: number) => {
        if (!interfered) {
          interfered = true;
          // Another sidecar disables the key between our read and our write.
          const current = (await inner.getById(record.id))!;
          await inner.replace({ ...current, state: 'disabled', version: current.version + 1 }, current.version);
        }
        return inner.replace(record, expectedVersion);
      },
    });
    const env = setup({ inner, store });
    const { orders } = await seed(env);
    const updated = await env.admin.update(root, updateInput(orders.id, { updateMask: ['name'], name: 'renamed' }));
    expect(updated).toMatchObject({ name: 'renamed', state: 'disabled', version: 3 });
    expect(await inner.getById(orders.id)).toMatchObject({ name: 'renamed', state: 'disabled', version: 3 });
    expect(env.events.filter((e) => e.kind === 'updated')).toHaveLength(1);
  });

  it('gives up with ConflictError after MAX_CAS_ATTEMPTS lost compare-and-sets, telling no listener', async () => {
    const inner = new MemoryKeyStore();
    let attempts = 0;
    const store = wrapStore(inner, {
      replace: () => {
        attempts++;
        return Promise.reject(new ConflictError('lost the race'));
      },
    });
    const env = setup({ inner, store });
    const { orders } = await seed(env);
    const eventsBefore = env.events.length;
    const err = await expectError(env.admin.update(root, updateInput(orders.id, { updateMask: ['name'], name: 'x' })), ConflictError);
    expect((err as ConflictError).retryable).toBe(true);
    expect(attempts).toBe(MAX_CAS_ATTEMPTS);
    expect(env.events.length).toBe(eventsBefore);
  });

  it('many concurrent updates of one key all succeed (jittered retries), each applied once', async () => {
    const env = setup();
    const { orders } = await seed(env);
    const n = 12;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => env.admin.update(root, updateInput(orders.id, { updateMask: ['metadata'], metadata: { [`k${i}`]: 'v' } }))),
    );
    expect(results).toHaveLength(n);
    const final = await env.admin.get(root, orders.id);
    expect(final.version).toBe(orders.version + n);
    expect(env.events.filter((e) => e.kind === 'updated')).toHaveLength(n);
  });

  it('answers NotFound when the key is deleted between read and write', async () => {
    const inner = new MemoryKeyStore();
    const store = wrapStore(inner, {
      replace: async (record: KeyRecord, expectedVersion: number) => {
        await inner.delete(record.id);
        return inner.replace(record, expectedVersion);
      },
    });
    const env = setup({ inner, store });
    const { orders } = await seed(env);
    const err = await expectError(env.admin.update(root, updateInput(orders.id, { updateMask: ['name'], name: 'x' })), NotFoundError);
    expect(err.message).toContain(orders.id);
  });
});

// ---------------------------------------------------------------------------------------------

describe('KeyAdmin.revoke', () => {
  it('revokes with a reason and time, and tells the listener', async () => {
    const env = setup();
    const { orders } = await seed(env);
    const revoked = await env.admin.revoke(ordersWriter, orders.id, 'leaked in CI');
    expect(revoked).toEqual({
      ...orders,
      state: 'revoked',
      revokedAt: T0 + 1000,
      revokeReason: 'leaked in CI',
      updatedAt: T0 + 1000,
      version: 2,
      dueAt: undefined, // a revoked key has nothing left for the lifecycle scheduler
    });
    expect(await env.admin.get(root, orders.id)).toEqual(revoked);
    expect(env.events.at(-1)).toEqual({ kind: 'revoked', record: revoked, actor: 'key_writer' });
  });

  it('revokes a disabled key', async () => {
    const env = setup();
    const { orders } = await seed(env);
    await env.admin.update(root, updateInput(orders.id, { updateMask: ['enabled'], enabled: false }));
    expect((await env.admin.revoke(root, orders.id, '')).state).toBe('revoked');
  });

  it('is idempotent: a second revoke changes nothing and tells no listener', async () => {
    const env = setup();
    const { orders } = await seed(env);
    const first = await env.admin.revoke(root, orders.id, 'first');
    env.clock.advance(60_000);
    await expectNoChange(env, async () => {
      const second = await env.admin.revoke(root, orders.id, 'second');
      expect(second).toEqual(first);
    });
  });

  it('accepts a 256-character reason and rejects 257 or control characters', async () => {
    const env = setup();
    const { orders, billing } = await seed(env);
    await expectNoChange(env, async () => {
      await expectInvalid(env.admin.revoke(root, orders.id, 'r'.repeat(257)), 'reason');
      await expectInvalid(env.admin.revoke(root, orders.id, 'line\nbreak'), 'reason');
      await expectInvalid(env.admin.revoke(root, 'not-an-id', 'x'), 'key_id');
    });
    expect((await env.admin.revoke(root, billing.id, 'r'.repeat(256))).revokeReason).toHaveLength(256);
  });

  it('enforces tenant isolation and write access', async () => {
    const env = setup();
    const { orders, billing, adminSvc } = await seed(env);
    await expectNoChange(env, async () => {
      await expectError(env.admin.revoke(ordersWriter, billing.id, 'x'), NotFoundError);
      await expectError(env.admin.revoke(ordersReader, orders.id, 'x'), PermissionDeniedError);
      await expectError(env.admin.revoke(allTenants, adminSvc.id, 'x'), NotFoundError);
      await expectError(env.admin.revoke(root, MISSING_ID, 'x'), NotFoundError);
    });
  });

  it('checks write access even for a no-op revoke', async () => {
    const env = setup();
    const { orders } = await seed(env);
    await env.admin.revoke(root, orders.id, 'x');
    await expectNoChange(env, () => expectError(env.admin.revoke(ordersReader, orders.id, 'x'), PermissionDeniedError).then(() => {}));
  });
});

// ---------------------------------------------------------------------------------------------

describe('KeyAdmin.delete', () => {
  it('removes the key and tells the listener with the removed record', async () => {
    const env = setup();
    const { orders } = await seed(env);
    await env.admin.delete(ordersWriter, orders.id);
    await expectError(env.admin.get(root, orders.id), NotFoundError);
    expect(await env.inner.getByHash(orders.hash)).toBeUndefined();
    expect(env.events.at(-1)).toEqual({ kind: 'deleted', record: orders, actor: 'key_writer' });
    expect((await env.listAll()).map((r) => r.id)).not.toContain(orders.id);
  });

  it('deletes a revoked key', async () => {
    const env = setup();
    const { orders } = await seed(env);
    await env.admin.revoke(root, orders.id, 'x');
    await env.admin.delete(root, orders.id);
    await expectError(env.admin.get(root, orders.id), NotFoundError);
  });

  it('answers NotFound for a second delete, writing nothing', async () => {
    const env = setup();
    const { orders } = await seed(env);
    await env.admin.delete(root, orders.id);
    await expectNoChange(env, () => expectError(env.admin.delete(root, orders.id), NotFoundError).then(() => {}));
  });

  it('answers NotFound when the key disappears between read and delete', async () => {
    const inner = new MemoryKeyStore();
    const store = wrapStore(inner, {
      delete: async (id: string) => {
        await inner.delete(id);
        return undefined;
      },
    });
    const env = setup({ inner, store });
    const { orders } = await seed(env);
    const before = env.events.length;
    await expectError(env.admin.delete(root, orders.id), NotFoundError);
    expect(env.events.length).toBe(before);
  });

  it('enforces tenant isolation and write access', async () => {
    const env = setup();
    const { orders, billing, adminSvc } = await seed(env);
    await expectNoChange(env, async () => {
      await expectError(env.admin.delete(ordersWriter, billing.id), NotFoundError);
      await expectError(env.admin.delete(ordersReader, orders.id), PermissionDeniedError);
      await expectError(env.admin.delete(nobody, orders.id), NotFoundError);
      await expectError(env.admin.delete(allTenants, adminSvc.id), NotFoundError);
      await expectInvalid(env.admin.delete(root, 'key_123'), 'key_id');
    });
    await env.admin.delete(adminKey, adminSvc.id);
    await expectError(env.admin.get(root, adminSvc.id), NotFoundError);
  });
});

// ---------------------------------------------------------------------------------------------

describe('KeyAdmin change listener', () => {
  it('hears every committed change in order, with its kind and actor', async () => {
    const env = setup();
    const { record } = await env.create(root);
    await env.admin.update(ordersWriter, updateInput(record.id, { updateMask: ['name'], name: 'n' }));
    await env.admin.revoke(adminKey, record.id, 'r');
    await env.admin.delete(root, record.id);
    expect(env.events.map((e) => [e.kind, e.actor, e.record.id, e.record.version])).toEqual([
      ['created', 'root', record.id, 1],
      ['updated', 'key_writer', record.id, 2],
      ['revoked', 'key_admin', record.id, 3],
      ['deleted', 'root', record.id, 3],
    ]);
  });

  it('is optional', async () => {
    const admin = new KeyAdmin({ store: new MemoryKeyStore(), clock: new ManualClock(T0), ids: new KeyIdGenerator(), defaultPrefix: 'sk' });
    const { record } = await admin.create(root, createInput());
    await admin.revoke(root, record.id, '');
    await admin.delete(root, record.id);
  });
});
