import { randomUUID } from 'node:crypto';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../../src/domain/errors';
import { generateKey, displayHint, parseKey } from '../../src/domain/key-format';
import { hashKey } from '../../src/domain/key-hash';
import { KeyIdGenerator } from '../../src/domain/key-id';
import { KEY_STATES, type KeyRecord } from '../../src/domain/key-record';
import type { KeyStore, ListQuery } from '../../src/ports/key-store';

/** A fresh usage batch id. */
const nextBatch = (): string => randomUUID();

/**
 * The behaviour every KeyStore must have, run against each implementation
 * (memory-key-store.test.ts, redis-key-store.test.ts). Checks go through the port only.
 */
export interface StoreUnderTest {
  store: KeyStore;
  cleanup(): Promise<void>;
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

