import { randomUUID } from 'node:crypto';
import { AlreadyExistsError, ConflictError, FencedError, NotFoundError } from '../../src/domain/errors';
import { generateKey, displayHint, parseKey } from '../../src/domain/key-format';
import { hashKey } from '../../src/domain/key-hash';
import { KeyIdGenerator } from '../../src/domain/key-id';
import { KEY_STATES, type KeyRecord } from '../../src/domain/key-record';
import type { Fence, KeyStore, ListQuery } from '../../src/ports/key-store';
import type { Lease } from '../../src/ports/lease';

/** A fresh usage batch id. */
const nextBatch = (): string => randomUUID();

/**
 * The behaviour every KeyStore must have, run against each implementation
 * (memory-key-store.test.ts, redis-key-store.test.ts). Checks go through the port only.
 */
export interface StoreUnderTest {
  store: KeyStore;
  cleanup(): Promise<void>;
  /** A new lease (its own instance) of the kind whose fences the store checks: same server or table. */
  lease(name: string): Lease;
  /** Now by the store's clock (what sealed-secret expiry is judged by). */
  now(): number;
  /** Lets `ms` pass on the store's clock: a fake clock advances, a real one is waited on. */
  pass(ms: number): Promise<void>;
}

const ids = new KeyIdGenerator();
const T0 = Date.UTC(2025, 0, 1);

/** A valid record with a fresh time-ordered id and the hash of a freshly generated key. */
export function makeRecord(overrides: Partial<KeyRecord> = {}): KeyRecord {
  const prefix = overrides.prefix ?? 'sk_test';
  const secret = generateKey(prefix);
  return {
    id: ids.next(Date.now()),
    hash: hashKey(secret),
    service: 'orders',
    owner: 'team-a',
    name: 'checkout',
    prefix,
    hint: displayHint(parseKey(secret)!),
    scopes: ['orders:read', 'orders:write'],
    metadata: { env: 'test' },
    state: 'active',
    createdAt: T0,
    updatedAt: T0,
    usageCount: 0,
    version: 1,
    ...overrides,
  };
}

const byId = (a: KeyRecord, b: KeyRecord): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Walks every page of a query; checks page sizes and that `nextAfter` is the page's last id. */
export async function listAll(
  store: KeyStore,
  query: Omit<ListQuery, 'after'>,
): Promise<{ ids: string[]; pages: number }> {
  const out: string[] = [];
  let after: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await store.list({ ...query, after });
    pages++;
    expect(page.records.length).toBeLessThanOrEqual(query.limit);
    out.push(...page.records.map((r) => r.id));
    if (page.nextAfter === undefined) break;
    expect(page.records.length).toBe(query.limit); // a page is only cut short at the end
    expect(page.nextAfter).toBe(page.records[page.records.length - 1].id);
    after = page.nextAfter;
    if (pages > 10_000) throw new Error('list does not terminate');
  }
  return { ids: out, pages };
}

export function describeKeyStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`KeyStore contract: ${name}`, () => {
    let sut: StoreUnderTest;
    let store: KeyStore;

    beforeEach(async () => {
      sut = await makeStore();
      store = sut.store;
    });

    afterEach(async () => {
      await sut.cleanup();
    });

    /** Ids of every match, through the paging path. */
    const all = async (q: Omit<ListQuery, 'limit' | 'after'> = {}): Promise<string[]> =>
      (await listAll(store, { ...q, limit: 1000 })).ids;

    describe('create and get', () => {
      it('finds a created record by id and by hash', async () => {
        const r = makeRecord();
        await store.create(r);
        expect(await store.getById(r.id)).toStrictEqual(r);
        expect(await store.getByHash(r.hash)).toStrictEqual(r);
      });

      it('returns undefined for unknown ids and hashes', async () => {
        await store.create(makeRecord());
        expect(await store.getById(makeRecord().id)).toBeUndefined();
        expect(await store.getByHash(makeRecord().hash)).toBeUndefined();
      });

      it('round-trips every optional field, and keeps absent ones absent', async () => {
        const full = makeRecord({
          owner: 'Ünïcødé owner | with: separators {braces}',
          name: 'name with "quotes" and \\ backslash',
          scopes: [],
          metadata: { 'k:1': 'v|1', emoji: '🔑', empty: '' },
          state: 'revoked',
          notBefore: T0 - 1000,
          expiresAt: T0 + 86_400_000,
          revokedAt: T0 + 5,
          revokeReason: 'leaked in a log',
          lastUsedAt: T0 + 3,
          usageCount: 42,
          version: 7,
          updatedAt: T0 + 5,
        });
        const bare = makeRecord({ metadata: {}, scopes: ['a'] });
        await store.create(full);
        await store.create(bare);
        expect(await store.getById(full.id)).toStrictEqual(full);
        expect(await store.getByHash(full.hash)).toStrictEqual(full);
        const got = await store.getById(bare.id);
        expect(got).toStrictEqual(bare);
        for (const k of ['notBefore', 'expiresAt', 'revokedAt', 'revokeReason', 'lastUsedAt']) {
          expect(Object.prototype.hasOwnProperty.call(got, k)).toBe(false);
        }
      });

      it('refuses a duplicate id with AlreadyExistsError and writes nothing', async () => {
        const first = makeRecord();
        await store.create(first);
        const dup = makeRecord({ id: first.id, service: 'billing', owner: 'team-z', state: 'disabled' });
        await expect(store.create(dup)).rejects.toBeInstanceOf(AlreadyExistsError);
        expect(await store.getById(first.id)).toStrictEqual(first);
        expect(await store.getByHash(dup.hash)).toBeUndefined();
        expect(await all()).toEqual([first.id]);
        expect(await all({ service: 'billing' })).toEqual([]);
        expect(await all({ owner: 'team-z' })).toEqual([]);
        expect(await all({ state: 'disabled' })).toEqual([]);
      });

      it('refuses a duplicate hash with AlreadyExistsError and writes nothing', async () => {
        const first = makeRecord();
        await store.create(first);
        const dup = makeRecord({ hash: first.hash, service: 'billing', owner: 'team-z' });
        await expect(store.create(dup)).rejects.toBeInstanceOf(AlreadyExistsError);
        expect(await store.getById(dup.id)).toBeUndefined();
        expect(await store.getByHash(first.hash)).toStrictEqual(first);
        expect(await all()).toEqual([first.id]);
        expect(await all({ service: 'billing' })).toEqual([]);
        expect(await all({ owner: 'team-z' })).toEqual([]);
      });

      it('lets exactly one of two concurrent creates of the same id win', async () => {
        const a = makeRecord();
        const b = makeRecord({ id: a.id });
        const results = await Promise.allSettled([store.create(a), store.create(b)]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        expect(rejected.reason).toBeInstanceOf(AlreadyExistsError);
        expect(await all()).toEqual([a.id]);
      });
    });

    describe('replace', () => {
      it('replaces when the version matches', async () => {
        const r = makeRecord();
        await store.create(r);
        const next: KeyRecord = {
          ...r,
          name: 'renamed',
          scopes: ['x'],
          metadata: { a: 'b' },
          updatedAt: T0 + 1,
          version: 2,
        };
        await store.replace(next, 1);
        expect(await store.getById(r.id)).toStrictEqual(next);
        expect(await store.getByHash(r.hash)).toStrictEqual(next);
      });

      it('fails with ConflictError on a stale version and leaves the record unchanged', async () => {
        const r = makeRecord();
        await store.create(r);
        const v2 = { ...r, name: 'v2', version: 2 };
        await store.replace(v2, 1);
        await expect(store.replace({ ...r, name: 'stale', version: 2 }, 1)).rejects.toBeInstanceOf(ConflictError);
        await expect(store.replace({ ...r, name: 'ahead', version: 4 }, 3)).rejects.toBeInstanceOf(ConflictError);
        expect(await store.getById(r.id)).toStrictEqual(v2);
      });

      it('lets exactly one of two concurrent replaces of one version win', async () => {
        const r = makeRecord();
        await store.create(r);
        const results = await Promise.allSettled([
          store.replace({ ...r, name: 'a', version: 2 }, 1),
          store.replace({ ...r, name: 'b', version: 2 }, 1),
        ]);
        expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
        const loser = results.find((x) => x.status === 'rejected') as PromiseRejectedResult;
        expect(loser.reason).toBeInstanceOf(ConflictError);
        expect(['a', 'b']).toContain((await store.getById(r.id))!.name);
      });

      it('fails with NotFoundError when the record is missing or deleted', async () => {
        const r = makeRecord();
        await expect(store.replace({ ...r, version: 2 }, 1)).rejects.toBeInstanceOf(NotFoundError);
        await store.create(r);
        await store.delete(r.id);
        await expect(store.replace({ ...r, version: 2 }, 1)).rejects.toBeInstanceOf(NotFoundError);
        expect(await store.getById(r.id)).toBeUndefined();
        expect(await all()).toEqual([]);
      });

      it('moves the key between state indexes', async () => {
        const r = makeRecord();
        const other = makeRecord();
        await store.create(r);
        await store.create(other);
        await store.replace({ ...r, state: 'disabled', version: 2 }, 1);
        expect(await all({ state: 'active' })).toEqual([other.id]);
        expect(await all({ state: 'disabled' })).toEqual([r.id]);
        expect(await all({ service: 'orders', state: 'disabled' })).toEqual([r.id]);
        expect(await all({ owner: 'team-a', state: 'disabled' })).toEqual([r.id]);
        await store.replace({ ...r, state: 'revoked', revokedAt: T0 + 9, revokeReason: 'x', version: 3 }, 2);
        expect(await all({ state: 'disabled' })).toEqual([]);
        expect(await all({ state: 'revoked' })).toEqual([r.id]);
        expect(await all({ service: 'orders', owner: 'team-a', state: 'revoked' })).toEqual([r.id]);
        expect(await all()).toEqual([r.id, other.id].sort());
      });

      it('moves the key between service and owner indexes if those change', async () => {
        const r = makeRecord();
        await store.create(r);
        await store.replace({ ...r, service: 'billing', owner: 'team-b', version: 2 }, 1);
        expect(await all({ service: 'orders' })).toEqual([]);
        expect(await all({ owner: 'team-a' })).toEqual([]);
        expect(await all({ service: 'billing', owner: 'team-b' })).toEqual([r.id]);
        expect(await all({ owner: 'team-b', state: 'active' })).toEqual([r.id]);
      });

      it('keeps the stored usage whatever the usage fields of the new record say', async () => {
        const r = makeRecord();
        await store.create(r);
        await store.addUsage([{ keyId: r.id, count: 5, lastUsedAt: T0 + 100 }], nextBatch());
        await store.replace({ ...r, name: 'n2', version: 2 }, 1);
        await store.replace({ ...r, name: 'n3', usageCount: 999, lastUsedAt: T0 + 999_999, version: 3 }, 2);
        const got = await store.getById(r.id);
        expect(got).toMatchObject({ name: 'n3', usageCount: 5, lastUsedAt: T0 + 100, version: 3 });
      });

      it('keeps a never-used key without lastUsedAt', async () => {
        const r = makeRecord();
        await store.create(r);
        await store.replace({ ...r, lastUsedAt: T0 + 1, usageCount: 3, version: 2 }, 1);
        const got = await store.getById(r.id);
        expect(got).toStrictEqual({ ...r, version: 2 });
      });

      it('clears optional fields the new record leaves out', async () => {
        const r = makeRecord({ expiresAt: T0 + 1000, notBefore: T0 - 1 });
        await store.create(r);
        const { expiresAt: _dropped, ...rest } = r;
        const next: KeyRecord = { ...rest, version: 2 };
        await store.replace(next, 1);
        const got = await store.getById(r.id);
        expect(got).toStrictEqual(next);
        expect(got).not.toHaveProperty('expiresAt');
      });
    });

    describe('delete', () => {
      it('removes the record and every index entry, and returns what it removed', async () => {
        const r = makeRecord({ state: 'disabled' });
        const kept = makeRecord({ state: 'disabled' });
        await store.create(r);
        await store.create(kept);
        await store.addUsage([{ keyId: r.id, count: 2, lastUsedAt: T0 + 7 }], nextBatch());
        const removed = await store.delete(r.id);
        expect(removed).toStrictEqual({ ...r, usageCount: 2, lastUsedAt: T0 + 7 });
        expect(await store.getById(r.id)).toBeUndefined();
        expect(await store.getByHash(r.hash)).toBeUndefined();
        for (const q of [
          {},
          { service: 'orders' },
          { owner: 'team-a' },
          { state: 'disabled' as const },
          { owner: 'team-a', state: 'disabled' as const },
          { service: 'orders', owner: 'team-a' },
          { service: 'orders', state: 'disabled' as const },
          { service: 'orders', owner: 'team-a', state: 'disabled' as const },
        ]) {
          expect(await all(q)).toEqual([kept.id]);
        }
      });

      it('returns undefined when there is nothing to delete', async () => {
        expect(await store.delete(makeRecord().id)).toBeUndefined();
        const r = makeRecord();
        await store.create(r);
        await store.delete(r.id);
        expect(await store.delete(r.id)).toBeUndefined();
      });

      it('frees the id and the hash', async () => {
        const r = makeRecord();
        await store.create(r);
        await store.delete(r.id);
        await store.create(r);
        expect(await store.getByHash(r.hash)).toStrictEqual(r);
      });
    });

    describe('list', () => {
      const SERVICES = ['orders', 'billing'];
      const OWNERS = ['team-a', 'team-b'];

      /** 24 keys over 2 services x 2 owners x 3 states, shuffled creation order. */
      async function seed(): Promise<KeyRecord[]> {
        const records: KeyRecord[] = [];
        for (let i = 0; i < 24; i++) {
          records.push(
            makeRecord({ service: SERVICES[i % 2], owner: OWNERS[Math.floor(i / 2) % 2], state: KEY_STATES[i % 3] }),
          );
        }
        // insert out of id order: the store, not insertion order, defines list order
        for (const r of [...records].reverse()) await store.create(r);
        return records.sort(byId);
      }

      const matches = (q: Omit<ListQuery, 'limit'>) => (r: KeyRecord) =>
        (q.service === undefined || r.service === q.service) &&
        (q.owner === undefined || r.owner === q.owner) &&
        (q.state === undefined || r.state === q.state);

      it('filters by every combination of service, owner and state, in id order', async () => {
        const records = await seed();
        for (const service of [undefined, ...SERVICES, 'nobody']) {
          for (const owner of [undefined, ...OWNERS, 'nobody']) {
            for (const state of [undefined, ...KEY_STATES]) {
              const q = { service, owner, state };
              const page = await store.list({ ...q, limit: 100 });
              expect(page.records.map((r) => r.id)).toEqual(records.filter(matches(q)).map((r) => r.id));
              expect(page.nextAfter).toBeUndefined();
              for (const r of page.records) expect(r).toStrictEqual(records.find((x) => x.id === r.id));
            }
          }
        }
      });

      it('pages cover every matching key exactly once, for any page size', async () => {
        const records = await seed();
        const queries: Omit<ListQuery, 'limit' | 'after'>[] = [
          {},
          { service: 'orders' },
          { owner: 'team-b' },
          { state: 'disabled' },
          { owner: 'team-a', state: 'revoked' },
          { service: 'billing', owner: 'team-b', state: 'active' },
        ];
        for (const q of queries) {
          const expected = records.filter(matches(q)).map((r) => r.id);
          expect(expected.length).toBeGreaterThan(0);
          for (const limit of [1, 2, 3, 5, expected.length - 1, expected.length, expected.length + 1, 1000]) {
            if (limit < 1) continue;
            const { ids: got, pages } = await listAll(store, { ...q, limit });
            expect(got).toEqual(expected);
            expect(pages).toBe(Math.max(1, Math.ceil(expected.length / limit)));
          }
        }
      });

      it('gives no nextAfter when the last page is exactly full', async () => {
        const records: KeyRecord[] = [];
        for (let i = 0; i < 6; i++) records.push(makeRecord());
        for (const r of records) await store.create(r);
        const p1 = await store.list({ limit: 3 });
        expect(p1.records.map((r) => r.id)).toEqual(records.slice(0, 3).map((r) => r.id));
        expect(p1.nextAfter).toBe(records[2].id);
        const p2 = await store.list({ limit: 3, after: p1.nextAfter });
        expect(p2.records.map((r) => r.id)).toEqual(records.slice(3).map((r) => r.id));
        expect(p2.nextAfter).toBeUndefined();
        const whole = await store.list({ limit: 6 });
        expect(whole.records).toHaveLength(6);
        expect(whole.nextAfter).toBeUndefined();
      });

      it('gives no nextAfter when the last matches of a filtered index fill the page exactly', async () => {
        // owner + state: the state is checked per record; non-matching keys after the last match
        // must not produce a trailing nextAfter
        const recs = [
          makeRecord({ state: 'disabled' }),
          makeRecord(),
          makeRecord({ state: 'disabled' }),
          makeRecord(),
          makeRecord(),
        ];
        for (const r of recs) await store.create(r);
        const page = await store.list({ owner: 'team-a', state: 'disabled', limit: 2 });
        expect(page.records.map((r) => r.id)).toEqual([recs[0].id, recs[2].id]);
        expect(page.nextAfter).toBeUndefined();
        const first = await store.list({ owner: 'team-a', state: 'disabled', limit: 1 });
        expect(first.records.map((r) => r.id)).toEqual([recs[0].id]);
        expect(first.nextAfter).toBe(recs[0].id);
      });

      it('finds sparse matches of a filtered index', async () => {
        const recs: KeyRecord[] = [];
        for (let i = 0; i < 60; i++) recs.push(makeRecord({ state: i % 20 === 19 ? 'revoked' : 'active' }));
        for (const r of recs) await store.create(r);
        const expected = recs.filter((r) => r.state === 'revoked').map((r) => r.id);
        expect((await listAll(store, { owner: 'team-a', state: 'revoked', limit: 1 })).ids).toEqual(expected);
        expect((await listAll(store, { owner: 'team-a', state: 'revoked', limit: 2 })).ids).toEqual(expected);
        expect((await listAll(store, { owner: 'team-a', state: 'revoked', limit: 3 })).ids).toEqual(expected);
        expect(await store.list({ owner: 'team-a', state: 'disabled', limit: 5 })).toEqual({ records: [] });
      });

      it('returns an empty page without nextAfter when nothing matches', async () => {
        expect(await store.list({ limit: 10 })).toEqual({ records: [] });
        await store.create(makeRecord());
        expect(await store.list({ service: 'billing', limit: 10 })).toEqual({ records: [] });
      });

      it('continues after any id, even one that no longer exists', async () => {
        const recs = [makeRecord(), makeRecord(), makeRecord(), makeRecord()];
        for (const r of recs) await store.create(r);
        const p1 = await store.list({ limit: 2 });
        await store.delete(p1.nextAfter!);
        const p2 = await store.list({ limit: 2, after: p1.nextAfter });
        expect(p2.records.map((r) => r.id)).toEqual([recs[2].id, recs[3].id]);
        expect((await store.list({ limit: 10, after: recs[3].id })).records).toEqual([]);
        expect((await store.list({ limit: 10, after: 'key_' })).records).toHaveLength(3);
      });

      it('is stable under concurrent inserts and deletes between pages', async () => {
        const original: KeyRecord[] = [];
        for (let i = 0; i < 9; i++) original.push(makeRecord());
        for (const r of original) await store.create(r);
        const seen: string[] = [];
        const inserted: KeyRecord[] = [];
        let page = await store.list({ limit: 4 });
        seen.push(...page.records.map((r) => r.id));
        // between pages: new keys arrive (later ids) and an already-listed key is deleted
        for (let i = 0; i < 3; i++) inserted.push(makeRecord());
        for (const r of inserted) await store.create(r);
        await store.delete(original[0].id);
        while (page.nextAfter !== undefined) {
          page = await store.list({ limit: 4, after: page.nextAfter });
          seen.push(...page.records.map((r) => r.id));
          const late = makeRecord(); // and more arrive after every page
          inserted.push(late);
          await store.create(late);
          if (inserted.length > 50) throw new Error('listing never catches up with inserts');
        }
        expect(new Set(seen).size).toBe(seen.length); // nothing repeated
        for (const r of original) expect(seen).toContain(r.id); // nothing skipped
        expect(seen).toEqual([...seen].sort());
      });

      it('orders by id, not by insertion, across id generators', async () => {
        const gen2 = new KeyIdGenerator();
        const a = makeRecord({ id: gen2.next(T0) });
        const b = makeRecord({ id: gen2.next(T0 + 1) });
        const c = makeRecord(); // now: after both
        await store.create(c);
        await store.create(b);
        await store.create(a);
        expect(await all()).toEqual([a.id, b.id, c.id]);
      });
    });

    describe('addUsage', () => {
      it('adds counts across calls and within one batch', async () => {
        const a = makeRecord();
        const b = makeRecord({ usageCount: 10 });
        await store.create(a);
        await store.create(b);
        await store.addUsage([
          { keyId: a.id, count: 3, lastUsedAt: T0 + 1 },
          { keyId: b.id, count: 1, lastUsedAt: T0 + 1 },
          { keyId: a.id, count: 4, lastUsedAt: T0 + 2 },
        ], nextBatch());
        await store.addUsage([{ keyId: a.id, count: 5, lastUsedAt: T0 + 3 }], nextBatch());
        expect(await store.getById(a.id)).toMatchObject({ usageCount: 12, lastUsedAt: T0 + 3 });
        expect(await store.getByHash(b.hash)).toMatchObject({ usageCount: 11, lastUsedAt: T0 + 1 });
      });

      it('applies a batch once however often it is retried under the same id', async () => {
        const r = makeRecord();
        await store.create(r);
        const id = nextBatch();
        await store.addUsage([{ keyId: r.id, count: 3, lastUsedAt: T0 + 1 }], id);
        await store.addUsage([{ keyId: r.id, count: 3, lastUsedAt: T0 + 1 }], id);
        await Promise.all([1, 2, 3].map(() => store.addUsage([{ keyId: r.id, count: 3, lastUsedAt: T0 + 1 }], id)));
        expect(await store.getById(r.id)).toMatchObject({ usageCount: 3 });
        await store.addUsage([{ keyId: r.id, count: 3, lastUsedAt: T0 + 1 }], nextBatch());
        expect(await store.getById(r.id)).toMatchObject({ usageCount: 6 });
      });

      it('adds up exactly when several sidecars flush concurrently', async () => {
        const r = makeRecord();
        await store.create(r);
        const times = Array.from({ length: 40 }, (_, i) => T0 + ((i * 7919) % 1000)); // shuffled
        await Promise.all(times.map((t, i) => store.addUsage([{ keyId: r.id, count: i + 1, lastUsedAt: t }], nextBatch())));
        expect(await store.getById(r.id)).toMatchObject({ usageCount: (40 * 41) / 2, lastUsedAt: Math.max(...times) });
      });

      it('never moves lastUsedAt back', async () => {
        const r = makeRecord();
        await store.create(r);
        await store.addUsage([{ keyId: r.id, count: 1, lastUsedAt: T0 + 500 }], nextBatch());
        await store.addUsage([{ keyId: r.id, count: 1, lastUsedAt: T0 + 100 }], nextBatch());
        await store.addUsage([
          { keyId: r.id, count: 1, lastUsedAt: T0 + 900 },
          { keyId: r.id, count: 1, lastUsedAt: T0 + 200 },
        ], nextBatch());
        expect(await store.getById(r.id)).toMatchObject({ usageCount: 4, lastUsedAt: T0 + 900 });
      });

      it('does not change the version, so it never causes a compare-and-set conflict', async () => {
        const r = makeRecord();
        await store.create(r);
        await store.addUsage([{ keyId: r.id, count: 1, lastUsedAt: T0 }], nextBatch());
        expect((await store.getById(r.id))!.version).toBe(1);
        await store.replace({ ...r, name: 'after usage', version: 2 }, 1);
        expect((await store.getById(r.id))!.name).toBe('after usage');
      });

      it('ignores usage of deleted and unknown keys without resurrecting them', async () => {
        const gone = makeRecord();
        const live = makeRecord();
        await store.create(gone);
        await store.create(live);
        await store.delete(gone.id);
        await store.addUsage([
          { keyId: gone.id, count: 3, lastUsedAt: T0 + 1 },
          { keyId: makeRecord().id, count: 3, lastUsedAt: T0 + 1 },
          { keyId: live.id, count: 2, lastUsedAt: T0 + 2 },
        ], nextBatch());
        expect(await store.getById(gone.id)).toBeUndefined();
        expect(await store.getByHash(gone.hash)).toBeUndefined();
        expect(await all()).toEqual([live.id]);
        expect(await store.getById(live.id)).toMatchObject({ usageCount: 2, lastUsedAt: T0 + 2 });
        // the id is still free: no partial record blocks it
        await store.create(gone);
        expect(await store.getById(gone.id)).toStrictEqual(gone);
      });

      it('accepts an empty batch', async () => {
        await expect(store.addUsage([], nextBatch())).resolves.toBeUndefined();
      });
    });

    describe('rotation fields', () => {
      it('round-trips the rotation and lifecycle fields through create and replace', async () => {
        const r = makeRecord({
          state: 'rotated',
          rotatedTo: ids.next(Date.now()),
          rotatedFrom: ids.next(Date.now()),
          rotatedAt: T0 + 10,
          graceEndsAt: T0 + 20,
          limitsId: ids.next(Date.now()),
          dueAt: T0 + 30,
          expiryHandledAt: T0 + 40,
          rotationNoticeAt: T0 + 50,
        });
        await store.create(r);
        expect(await store.getById(r.id)).toStrictEqual(r);
        expect(await store.getByHash(r.hash)).toStrictEqual(r);
        expect((await store.list({ state: 'rotated', limit: 10 })).records).toStrictEqual([r]);
        // clearing them all leaves none behind
        const { rotatedTo: _a, rotatedFrom: _b, rotatedAt: _c, graceEndsAt: _d, limitsId: _e, dueAt: _f, expiryHandledAt: _g, rotationNoticeAt: _h, ...plain } = r;
        const next: KeyRecord = { ...plain, state: 'active', version: 2 };
        await store.replace(next, 1);
        const got = await store.getById(r.id);
        expect(got).toStrictEqual(next);
        for (const k of ['rotatedTo', 'rotatedFrom', 'rotatedAt', 'graceEndsAt', 'limitsId', 'dueAt', 'expiryHandledAt', 'rotationNoticeAt']) {
          expect(Object.prototype.hasOwnProperty.call(got, k)).toBe(false);
        }
      });
    });

    describe('rotate', () => {
      const NOW = T0 + 1_000_000;

      /** An active key (due at its expiry) and the two records of its rotation. */
      function rotation(grace: number, overrides: Partial<KeyRecord> = {}) {
        const old = makeRecord({ expiresAt: NOW + 5_000_000, dueAt: NOW + 5_000_000, policyId: 'pol_01HZY3K0AX7R5M3B2C1D4E5F6G', credits: 9, ...overrides });
        const fresh = makeRecord();
        const retired: KeyRecord = {
          ...old,
          rotatedTo: fresh.id,
          rotatedAt: NOW,
          graceEndsAt: NOW + grace,
          state: grace === 0 ? 'rotated' : old.state,
          ...(grace === 0 ? { dueAt: undefined } : { dueAt: NOW + grace }),
          updatedAt: NOW,
          version: old.version + 1,
        };
        if (retired.dueAt === undefined) delete (retired as { dueAt?: number }).dueAt;
        const successor: KeyRecord = {
          ...fresh,
          scopes: old.scopes,
          metadata: old.metadata,
          expiresAt: NOW + 5_000_000,
          dueAt: NOW + 5_000_000,
          policyId: old.policyId,
          credits: old.credits,
          rotatedFrom: old.id,
          limitsId: old.id,
          createdAt: NOW,
          updatedAt: NOW,
        };
        return { old, retired, successor };
      }

      it('replaces the old record and inserts the successor, both read back with every field', async () => {
        const { old, retired, successor } = rotation(60_000);
        await store.create(old);
        await store.addUsage([{ keyId: old.id, count: 4, lastUsedAt: T0 + 1 }], nextBatch());
        await store.rotate({ retired, expectedVersion: 1, successor });
        const usage = { usageCount: 4, lastUsedAt: T0 + 1 }; // usage stays the store's
        expect(await store.getById(old.id)).toStrictEqual({ ...retired, ...usage });
        expect(await store.getByHash(old.hash)).toStrictEqual({ ...retired, ...usage });
        expect(await store.getById(successor.id)).toStrictEqual(successor);
        expect(await store.getByHash(successor.hash)).toStrictEqual(successor);
        expect(await store.takeSealedSecret(successor.id)).toBeUndefined(); // none given
      });

      it('keeps the list indexes right: a retired key moves to `rotated`, the successor is active', async () => {
        const other = makeRecord({ state: 'disabled' });
        await store.create(other);
        const grace = rotation(60_000);
        const now = rotation(0, { owner: 'team-b' });
        for (const r of [grace.old, now.old]) await store.create(r);
        await store.rotate({ retired: grace.retired, expectedVersion: 1, successor: grace.successor });
        await store.rotate({ retired: now.retired, expectedVersion: 1, successor: { ...now.successor, owner: 'team-b' } });
        const sorted = (xs: string[]) => [...xs].sort();
        expect(await all({ state: 'rotated' })).toEqual([now.old.id]);
        expect(await all({ owner: 'team-b', state: 'rotated' })).toEqual([now.old.id]);
        expect(await all({ service: 'orders', state: 'rotated' })).toEqual([now.old.id]);
        expect(await all({ state: 'active' })).toEqual(sorted([grace.old.id, grace.successor.id, now.successor.id]));
        expect(await all({ owner: 'team-b', state: 'active' })).toEqual([now.successor.id]);
        expect(await all({ state: 'disabled' })).toEqual([other.id]);
        expect(await all({ owner: 'team-b' })).toEqual(sorted([now.old.id, now.successor.id]));
        expect(await all()).toEqual(sorted([other.id, grace.old.id, grace.successor.id, now.old.id, now.successor.id]));
      });

      /** Everything a failed rotation must have left as it was. */
      async function expectUntouched(old: KeyRecord, successor: KeyRecord, due: string[]): Promise<void> {
        expect(await store.getById(old.id)).toStrictEqual(old);
        expect(await store.getByHash(old.hash)).toStrictEqual(old);
        expect(await store.getById(successor.id)).toBeUndefined();
        expect(await store.takeSealedSecret(successor.id)).toBeUndefined();
        expect(await store.due(Number.MAX_SAFE_INTEGER, 100)).toEqual(due);
        expect(await all({ state: 'rotated' })).toEqual([]);
        expect(await all()).not.toContain(successor.id);
      }

      it('writes nothing on either record when the compare-and-set fails', async () => {
        const { old, retired, successor } = rotation(0);
        await store.create(old);
        const sealed = { sealed: 'v1.kek.sealed-form', expiresAt: Date.now() + 3_600_000 };
        await expect(store.rotate({ retired, expectedVersion: 2, successor, sealed })).rejects.toBeInstanceOf(ConflictError);
        expect(await store.getByHash(successor.hash)).toBeUndefined();
        await expectUntouched(old, successor, [old.id]);
      });

      it('writes nothing when the old key is gone', async () => {
        const { old, retired, successor } = rotation(0);
        await expect(store.rotate({ retired, expectedVersion: 1, successor })).rejects.toBeInstanceOf(NotFoundError);
        expect(await store.getById(old.id)).toBeUndefined();
        expect(await store.getById(successor.id)).toBeUndefined();
        expect(await store.due(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
        expect(await all()).toEqual([]);
      });

      it('writes nothing on either record when the successor hash is taken', async () => {
        const { old, retired, successor } = rotation(0);
        const holder = makeRecord({ state: 'disabled' });
        await store.create(old);
        await store.create(holder);
        const taken = { ...successor, hash: holder.hash };
        const sealed = { sealed: 'v1.kek.sealed-form', expiresAt: Date.now() + 3_600_000 };
        await expect(store.rotate({ retired, expectedVersion: 1, successor: taken, sealed })).rejects.toBeInstanceOf(AlreadyExistsError);
        expect(await store.getByHash(holder.hash)).toStrictEqual(holder);
        await expectUntouched(old, successor, [old.id]);
        // the old key's own hash is taken too
        await expect(store.rotate({ retired, expectedVersion: 1, successor: { ...successor, hash: old.hash } })).rejects.toBeInstanceOf(AlreadyExistsError);
        await expectUntouched(old, successor, [old.id]);
      });

      it('writes nothing when the successor id is taken', async () => {
        const { old, retired, successor } = rotation(0);
        const holder = makeRecord({ id: successor.id, service: 'billing' });
        await store.create(old);
        await store.create(holder);
        await expect(store.rotate({ retired, expectedVersion: 1, successor })).rejects.toBeInstanceOf(AlreadyExistsError);
        expect(await store.getById(old.id)).toStrictEqual(old);
        expect(await store.getById(holder.id)).toStrictEqual(holder);
        expect(await store.getByHash(successor.hash)).toBeUndefined();
        expect(await store.due(Number.MAX_SAFE_INTEGER, 10)).toEqual([old.id]);
        expect(await all({ state: 'rotated' })).toEqual([]);
      });

      it('refuses a successor with the old key id', async () => {
        const { old, retired, successor } = rotation(0);
        await store.create(old);
        await expect(store.rotate({ retired, expectedVersion: 1, successor: { ...successor, id: old.id } })).rejects.toBeInstanceOf(RangeError);
        expect(await store.getById(old.id)).toStrictEqual(old);
        expect(await store.getByHash(successor.hash)).toBeUndefined();
      });

      it('lets exactly one of two concurrent rotations of one version win', async () => {
        const a = rotation(60_000);
        const b = rotation(60_000);
        const old = a.old;
        await store.create(old);
        const retiredB = { ...a.retired, rotatedTo: b.successor.id };
        const successorB = { ...b.successor, rotatedFrom: old.id, limitsId: old.id };
        const results = await Promise.allSettled([
          store.rotate({ retired: a.retired, expectedVersion: 1, successor: a.successor }),
          store.rotate({ retired: retiredB, expectedVersion: 1, successor: successorB }),
        ]);
        expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
        expect((results.find((x) => x.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
        const winner = (await store.getById(old.id))!.rotatedTo;
        const loser = winner === a.successor.id ? b.successor : a.successor;
        expect([a.successor.id, b.successor.id]).toContain(winner);
        expect(await store.getById(loser.id)).toBeUndefined();
        expect(await store.getByHash(loser.hash)).toBeUndefined();
        expect((await all()).sort()).toEqual([old.id, winner!].sort());
      });
    });

    describe('due index', () => {
      it('gives the ids due at or before `now`, earliest first, and none of the others', async () => {
        const late = makeRecord({ dueAt: T0 + 300 });
        const early = makeRecord({ dueAt: T0 + 100 });
        const exact = makeRecord({ dueAt: T0 + 200 });
        const future = makeRecord({ dueAt: T0 + 10_000 });
        const never = makeRecord();
        for (const r of [late, early, exact, future, never]) await store.create(r);
        expect(await store.due(T0 + 300, 10)).toEqual([early.id, exact.id, late.id]);
        expect(await store.due(T0 + 200, 10)).toEqual([early.id, exact.id]);
        expect(await store.due(T0 + 99, 10)).toEqual([]);
        expect(await store.due(T0 + 10_000, 10)).toEqual([early.id, exact.id, late.id, future.id]);
        expect(await store.due(Number.MAX_SAFE_INTEGER, 10)).not.toContain(never.id);
      });

      it('returns at most `limit` ids, the earliest, and refuses a non-positive limit', async () => {
        const recs = Array.from({ length: 7 }, (_, i) => makeRecord({ dueAt: T0 + 1000 - i })); // latest id earliest due
        for (const r of recs) await store.create(r);
        const earliestFirst = [...recs].reverse().map((r) => r.id);
        expect(await store.due(T0 + 1000, 3)).toEqual(earliestFirst.slice(0, 3));
        expect(await store.due(T0 + 1000, 7)).toEqual(earliestFirst);
        expect(await store.due(T0 + 1000, 1)).toEqual(earliestFirst.slice(0, 1));
        await expect(store.due(T0, 0)).rejects.toBeInstanceOf(RangeError);
        await expect(store.due(T0, 1.5)).rejects.toBeInstanceOf(RangeError);
      });

      it('lists keys that share a due time', async () => {
        const recs = Array.from({ length: 3 }, () => makeRecord({ dueAt: T0 + 5 }));
        for (const r of recs) await store.create(r);
        expect((await store.due(T0 + 5, 10)).sort()).toEqual(recs.map((r) => r.id).sort());
      });

      it('drops a key from the index on delete, and when a replace clears its dueAt', async () => {
        const a = makeRecord({ dueAt: T0 + 1 });
        const b = makeRecord({ dueAt: T0 + 2 });
        const c = makeRecord({ dueAt: T0 + 3 });
        for (const r of [a, b, c]) await store.create(r);
        await store.delete(a.id);
        expect(await store.due(T0 + 10, 10)).toEqual([b.id, c.id]);
        const { dueAt: _cleared, ...bare } = b;
        await store.replace({ ...bare, version: 2 }, 1);
        expect(await store.due(T0 + 10, 10)).toEqual([c.id]);
        await store.delete(c.id);
        expect(await store.due(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
      });

      it('moves a key when a replace moves its dueAt, and adds one that gets a dueAt', async () => {
        const a = makeRecord({ dueAt: T0 + 1 });
        const b = makeRecord({ dueAt: T0 + 2 });
        const c = makeRecord();
        for (const r of [a, b, c]) await store.create(r);
        await store.replace({ ...a, dueAt: T0 + 50, version: 2 }, 1); // later: done for now
        expect(await store.due(T0 + 10, 10)).toEqual([b.id]);
        await store.replace({ ...c, dueAt: T0, version: 2 }, 1); // earlier than every other
        expect(await store.due(T0 + 100, 10)).toEqual([c.id, b.id, a.id]);
        expect(await store.due(T0 + 10, 10)).toEqual([c.id, b.id]);
      });

      it('is unchanged by a failed replace', async () => {
        const a = makeRecord({ dueAt: T0 + 1 });
        await store.create(a);
        await expect(store.replace({ ...a, dueAt: T0 + 99, version: 3 }, 2)).rejects.toBeInstanceOf(ConflictError);
        expect(await store.due(T0 + 1, 10)).toEqual([a.id]);
      });

      it('moves the retired entry and adds the successor on rotate', async () => {
        const old = makeRecord({ dueAt: T0 + 10 });
        const other = makeRecord({ dueAt: T0 + 20 });
        await store.create(old);
        await store.create(other);
        const successor = makeRecord({ dueAt: T0 + 5, rotatedFrom: old.id });
        const retired = { ...old, rotatedTo: successor.id, rotatedAt: T0, graceEndsAt: T0 + 30, dueAt: T0 + 30, version: 2 };
        await store.rotate({ retired, expectedVersion: 1, successor });
        expect(await store.due(T0 + 100, 10)).toEqual([successor.id, other.id, old.id]);
        // a retirement without a further due time leaves the index
        const { dueAt: _none, ...done } = retired;
        await store.replace({ ...done, state: 'rotated', version: 3 }, 2);
        expect(await store.due(T0 + 100, 10)).toEqual([successor.id, other.id]);
      });
    });

    describe('sealed secrets', () => {
      /** Rotates a fresh key with a sealed secret expiring at `expiresAt`; returns the successor id. */
      async function sealedRotation(expiresAt: number, sealedForm = `v1.kek.${randomUUID()}`): Promise<{ id: string; sealed: { sealed: string; expiresAt: number } }> {
        const old = makeRecord();
        await store.create(old);
        const successor = makeRecord({ rotatedFrom: old.id, limitsId: old.id });
        const sealed = { sealed: sealedForm, expiresAt };
        await store.rotate({ retired: { ...old, rotatedTo: successor.id, rotatedAt: T0, graceEndsAt: T0 + 1, version: 2 }, expectedVersion: 1, successor, sealed });
        return { id: successor.id, sealed };
      }

      it('gives the sealed secret exactly once', async () => {
        const { id, sealed } = await sealedRotation(sut.now() + 3_600_000, 'v1.0a1b2c3d.opaque/with:every+char=');
        expect(await store.takeSealedSecret(id)).toStrictEqual(sealed);
        expect(await store.takeSealedSecret(id)).toBeUndefined();
        expect(await store.takeSealedSecret(makeRecord().id)).toBeUndefined();
      });

      it('reads the sealed secret without removing it', async () => {
        const { id, sealed } = await sealedRotation(sut.now() + 3_600_000);
        expect(await store.readSealedSecret(id)).toStrictEqual(sealed);
        expect(await store.readSealedSecret(id)).toStrictEqual(sealed);
        expect(await store.takeSealedSecret(id)).toStrictEqual(sealed);
        expect(await store.readSealedSecret(id)).toBeUndefined();
        expect(await store.readSealedSecret(makeRecord().id)).toBeUndefined();
      });

      it('gives it to exactly one of several concurrent takes', async () => {
        const { id, sealed } = await sealedRotation(sut.now() + 3_600_000);
        const takes = await Promise.all(Array.from({ length: 5 }, () => store.takeSealedSecret(id)));
        expect(takes.filter((t) => t !== undefined)).toStrictEqual([sealed]);
      });

      it('destroys it at its expiry', async () => {
        const soon = await sealedRotation(sut.now() + 40);
        const past = await sealedRotation(sut.now() - 1);
        await sut.pass(120);
        expect(await store.takeSealedSecret(soon.id)).toBeUndefined();
        expect(await store.takeSealedSecret(past.id)).toBeUndefined();
      });

      it('destroys it when the key is deleted', async () => {
        const { id } = await sealedRotation(sut.now() + 3_600_000);
        await store.delete(id);
        expect(await store.takeSealedSecret(id)).toBeUndefined();
      });
    });

    describe('fencing', () => {
      const LEASE = 'scheduler';

      /** A fence taken by one holder, then made stale by another taking the lease over. */
      async function staleAndCurrent(): Promise<{ stale: Fence; current: Fence }> {
        const first = sut.lease(LEASE);
        expect(await first.tryAcquire(60_000)).toBe(true);
        const stale = { lease: LEASE, value: first.holder()! };
        await first.release();
        const second = sut.lease(LEASE);
        expect(await second.tryAcquire(60_000)).toBe(true);
        const current = { lease: LEASE, value: second.holder()! };
        expect(current.value).not.toBe(stale.value);
        return { stale, current };
      }

      it('writes with a current fence', async () => {
        const { current } = await staleAndCurrent();
        const r = makeRecord({ dueAt: T0 });
        await store.create(r, { fence: current });
        await store.replace({ ...r, name: 'fenced', version: 2 }, 1, { fence: current });
        const successor = makeRecord();
        await store.rotate({ retired: { ...r, name: 'fenced', rotatedTo: successor.id, version: 3 }, expectedVersion: 2, successor }, { fence: current });
        expect(await store.getById(r.id)).toMatchObject({ name: 'fenced', rotatedTo: successor.id, version: 3 });
        expect(await store.getById(successor.id)).toStrictEqual(successor);
      });

      it('refuses a stale fence with FencedError and writes nothing', async () => {
        const { stale, current } = await staleAndCurrent();
        const r = makeRecord({ dueAt: T0 });
        await store.create(r, { fence: current });
        const fresh = makeRecord({ dueAt: T0 });
        await expect(store.create(fresh, { fence: stale })).rejects.toBeInstanceOf(FencedError);
        expect(await store.getById(fresh.id)).toBeUndefined();
        expect(await store.getByHash(fresh.hash)).toBeUndefined();
        await expect(store.replace({ ...r, name: 'stale', dueAt: T0 + 99, version: 2 }, 1, { fence: stale })).rejects.toBeInstanceOf(FencedError);
        const successor = makeRecord({ dueAt: T0 });
        const sealed = { sealed: 'v1.kek.x', expiresAt: sut.now() + 3_600_000 };
        await expect(
          store.rotate({ retired: { ...r, rotatedTo: successor.id, state: 'rotated', version: 2 }, expectedVersion: 1, successor, sealed }, { fence: stale }),
        ).rejects.toBeInstanceOf(FencedError);
        expect(await store.getById(r.id)).toStrictEqual(r);
        expect(await store.getById(successor.id)).toBeUndefined();
        expect(await store.takeSealedSecret(successor.id)).toBeUndefined();
        expect(await store.due(T0 + 100, 10)).toEqual([r.id]);
        expect(await all()).toEqual([r.id]);
        expect(await all({ state: 'rotated' })).toEqual([]);
      });

      it('refuses a fence on a lease nobody holds, or held under another name', async () => {
        const { current } = await staleAndCurrent();
        await expect(store.create(makeRecord(), { fence: { lease: 'other', value: current.value } })).rejects.toBeInstanceOf(FencedError);
        expect(await all()).toEqual([]);
      });
    });

    describe('isolation', () => {
      it('returns copies: mutating a returned record does not change the store', async () => {
        const r = makeRecord();
        await store.create(r);
        const got = (await store.getById(r.id)) as { -readonly [K in keyof KeyRecord]: KeyRecord[K] };
        got.name = 'mutated';
        (got.scopes as string[]).push('evil:*');
        (got.metadata as Record<string, string>).env = 'prod';
        const byHash = (await store.getByHash(r.hash))!;
        (byHash.scopes as string[]).length = 0;
        const listed = (await store.list({ limit: 10 })).records[0];
        (listed.metadata as Record<string, string>).x = 'y';
        expect(await store.getById(r.id)).toStrictEqual(r);
      });

      it('copies on the way in: mutating the created record does not change the store', async () => {
        const scopes = ['a:read'];
        const metadata: Record<string, string> = { k: 'v' };
        const r = makeRecord({ scopes, metadata });
        await store.create(r);
        scopes.push('b:write');
        metadata.k = 'changed';
        expect(await store.getById(r.id)).toMatchObject({ scopes: ['a:read'], metadata: { k: 'v' } });
      });
    });

    describe('ping', () => {
      it('resolves while the store is reachable', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });
    });
  });
}

