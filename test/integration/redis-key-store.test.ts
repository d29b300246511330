import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import {
  createRedisClient,
  RedisKeyStore,
  waitUntilReady,
  type RedisClientOptions,
} from '../../src/adapters/store/redis-key-store';
import { AlreadyExistsError, StoreUnavailableError } from '../../src/domain/errors';
import type { KeyStore } from '../../src/ports/key-store';
import { startRedis, type RedisServerHandle } from '../support/redis-server';
import { describeKeyStoreContract, listAll, makeRecord } from './key-store.contract';

// ioredis's own dependency; no types shipped.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const calculateSlot = require('cluster-key-slot') as (key: string) => number;

let server: RedisServerHandle;
/** Inspects the test server directly (KEYS is fine here: a test server with a handful of keys). */
let admin: Redis;
const stores: KeyStore[] = [];

async function newStore(opts: { keyPrefix?: string; scanBatch?: number; client?: RedisClientOptions } = {}) {
  const redis = createRedisClient(server.url, opts.client);
  await waitUntilReady(redis);
  const store = new RedisKeyStore({ redis, keyPrefix: opts.keyPrefix, scanBatch: opts.scanBatch });
  stores.push(store);
  return store;
}

beforeAll(async () => {
  server = await startRedis();
  // The outage test kills the server under this client too: keep it quiet, and let quit() not
  // wait on the dead socket.
  admin = new Redis(server.url, { maxRetriesPerRequest: null, disconnectTimeout: 50 });
  admin.on('error', () => {});
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await admin?.quit();
  await server?.stop();
});

describeKeyStoreContract('RedisKeyStore', async () => {
  await admin.flushall();
  const store = await newStore();
  return { store, cleanup: () => store.close() };
});

describe('RedisKeyStore on Redis', () => {
  beforeEach(async () => {
    await admin.flushall();
  });

  it('writes nothing when a create fails: no record, pointer or index entry', async () => {
    const store = await newStore();
    const first = makeRecord();
    await store.create(first);
    const before = (await admin.keys('*')).sort();
    expect(before).toHaveLength(2 + 6); // record, id pointer, six index entries' sets
    const dupId = makeRecord({ id: first.id, service: 'billing', owner: 'team-z', state: 'disabled' });
    const dupHash = makeRecord({ hash: first.hash, service: 'billing', owner: 'team-z', state: 'revoked' });
    await expect(store.create(dupId)).rejects.toBeInstanceOf(AlreadyExistsError);
    await expect(store.create(dupHash)).rejects.toBeInstanceOf(AlreadyExistsError);
    expect((await admin.keys('*')).sort()).toEqual(before);
    for (const key of before.filter((k) => k.includes(':i:'))) {
      expect(await admin.zrange(key, '0', '-1')).toEqual([first.id]);
    }
  });

  it('leaves no key behind after delete, and addUsage of a deleted key writes nothing', async () => {
    const store = await newStore();
    const r = makeRecord();
    await store.create(r);
    await store.replace({ ...r, state: 'disabled', version: 2 }, 1);
    await store.addUsage([{ keyId: r.id, count: 1, lastUsedAt: 1 }], randomUUID());
    await store.delete(r.id);
    await store.addUsage([{ keyId: r.id, count: 1, lastUsedAt: 2 }], randomUUID());
    // Only the usage batch markers remain, and they expire by themselves.
    const left = await admin.keys('*');
    expect(left).toHaveLength(2);
    for (const k of left) {
      expect(k).toMatch(/^\{kw\}:ub:/);
      expect(await admin.pttl(k)).toBeGreaterThan(0);
    }
  });

  it('keeps index entries in step with the record through replaces', async () => {
    const store = await newStore();
    const r = makeRecord();
    await store.create(r);
    await store.replace({ ...r, state: 'disabled', version: 2 }, 1);
    await store.replace({ ...r, state: 'active', owner: 'team-b', version: 3 }, 2);
    const indexes = (await admin.keys('*:i:*')).sort();
    expect(indexes).toEqual(
      [
        '{kw}:i:s:*',
        '{kw}:i:s:*|o:team-b',
        '{kw}:i:s:*|st:active',
        '{kw}:i:s:orders',
        '{kw}:i:s:orders|o:team-b',
        '{kw}:i:s:orders|st:active',
      ].sort(),
    );
  });

  it('puts every key in one hash slot, for the default and a custom prefix', async () => {
    for (const keyPrefix of [undefined, 'tenant-1']) {
      await admin.flushall();
      const store = await newStore({ keyPrefix });
      const recs = [
        makeRecord(),
        makeRecord({ service: 'billing', owner: 'x{y}z', state: 'disabled' }),
        makeRecord({ owner: 'o|o:st:', state: 'revoked' }),
      ];
      for (const r of recs) await store.create(r);
      await store.addUsage(recs.map((r) => ({ keyId: r.id, count: 1, lastUsedAt: 5 })), randomUUID());
      await store.replace({ ...recs[0], state: 'disabled', version: 2 }, 1);
      const keys = await admin.keys('*');
      expect(keys.length).toBeGreaterThan(10);
      const tag = `{${keyPrefix ?? 'kw'}}`;
      const slot = calculateSlot(tag);
      for (const k of keys) {
        expect(k.startsWith(`${tag}:`)).toBe(true);
        expect(calculateSlot(k)).toBe(slot);
      }
      expect(await store.getByHash(recs[1].hash)).toMatchObject({ owner: 'x{y}z', usageCount: 1 });
    }
  });

  it('keeps two prefixes apart on one server', async () => {
    const a = await newStore({ keyPrefix: 'a' });
    const b = await newStore({ keyPrefix: 'b' });
    const r = makeRecord();
    await a.create(r);
    expect(await b.getById(r.id)).toBeUndefined();
    await b.create(r);
    expect((await b.list({ limit: 10 })).records).toHaveLength(1);
  });

  it('stores a versioned, compact hash and refuses formats it does not know', async () => {
    const store = await newStore();
    const r = makeRecord();
    await store.create(r);
    const fields = await admin.hgetall(`{kw}:r:${r.hash}`);
    expect(Object.keys(fields).sort()).toEqual(['d', 'h', 'id', 'own', 'st', 'svc', 'u', 'v', 'ver']);
    expect(fields.v).toBe('1');
    await admin.hset(`{kw}:r:${r.hash}`, 'v', '99');
    await expect(store.getByHash(r.hash)).rejects.toThrow(/unsupported format version 99/);
  });

  it('makes one round trip per call: getByHash is one HGETALL, the rest one script each', async () => {
    const redis = createRedisClient(server.url);
    await waitUntilReady(redis);
    const store = new RedisKeyStore({ redis });
    stores.push(store);
    const a = makeRecord();
    const b = makeRecord();
    await store.create(a); // loads scripts (EVALSHA, then EVAL on NOSCRIPT) before counting
    await store.getById(a.id);
    await store.replace({ ...a, version: 2 }, 1);
    await store.delete(makeRecord().id);
    await store.list({ limit: 1 });
    await store.addUsage([{ keyId: a.id, count: 1, lastUsedAt: 1 }], randomUUID());
    const sent = jest.spyOn(redis, 'sendCommand');
    const names = async (fn: () => Promise<unknown>): Promise<string[]> => {
      sent.mockClear();
      await fn();
      return sent.mock.calls.map(([command]) => command.name);
    };
    expect(await names(() => store.getByHash(a.hash))).toEqual(['hgetall']);
    expect(await names(() => store.getById(a.id))).toEqual(['evalsha']);
    expect(await names(() => store.create(b))).toEqual(['evalsha']);
    expect(await names(() => store.replace({ ...a, state: 'disabled', version: 3 }, 2))).toEqual(['evalsha']);
    expect(await names(() => store.list({ service: 'orders', limit: 1 }))).toEqual(['evalsha']);
    expect(await names(() => store.list({ owner: 'team-a', state: 'disabled', limit: 10 }))).toEqual(['evalsha']);
    const batch = [a, b, a].map((r) => ({ keyId: r.id, count: 2, lastUsedAt: 3 }));
    expect(await names(() => store.addUsage(batch, randomUUID()))).toEqual(['evalsha']);
    expect(await names(() => store.delete(b.id))).toEqual(['evalsha']);
    sent.mockRestore();
  });

  it('reports a refused command as a plain error, not as an outage', async () => {
    const store = await newStore();
    const hash = makeRecord().hash;
    await admin.set(`{kw}:r:${hash}`, 'not a hash');
    const err = await store.getByHash(hash).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toMatch(/WRONGTYPE/);
  });

  it('reloads its scripts when the server forgot them', async () => {
    const store = await newStore();
    const r = makeRecord();
    await store.create(r);
    await admin.script('FLUSH');
    expect(await store.getById(r.id)).toStrictEqual(r);
    await store.addUsage([{ keyId: r.id, count: 1, lastUsedAt: 1 }], randomUUID());
    expect(await store.delete(r.id)).toMatchObject({ usageCount: 1 });
  });

  it('walks a sparse filtered index in several bounded script calls', async () => {
    const store = await newStore({ scanBatch: 4 });
    const recs = Array.from({ length: 40 }, (_, i) => makeRecord({ state: i % 9 === 8 ? 'disabled' : 'active' }));
    for (const r of recs) await store.create(r);
    const expected = recs.filter((r) => r.state === 'disabled').map((r) => r.id);
    for (const limit of [1, 2, 4, 100]) {
      expect((await listAll(store, { owner: 'team-a', state: 'disabled', limit })).ids).toEqual(expected);
      expect((await listAll(store, { limit })).ids).toEqual(recs.map((r) => r.id));
    }
  });

  it('rejects a non-positive page size', async () => {
    const store = await newStore();
    await expect(store.list({ limit: 0 })).rejects.toThrow(RangeError);
  });

  it('fails fast with StoreUnavailableError when Redis does not answer', async () => {
    const store = await newStore({ client: { commandTimeout: 300 } });
    const r = makeRecord();
    await store.create(r);
    process.kill(server.pid, 'SIGSTOP');
    try {
      const started = Date.now();
      const err = await store.getByHash(r.hash).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).cause).toBeInstanceOf(Error);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      process.kill(server.pid, 'SIGCONT');
    }
  });

  it('reports StoreUnavailableError when Redis cannot be reached at all', async () => {
    const dead = await startRedis();
    const url = dead.url;
    await dead.stop();
    const redis = createRedisClient(url);
    const store = new RedisKeyStore({ redis });
    stores.push(store);
    await expect(waitUntilReady(redis, 300)).rejects.toBeInstanceOf(StoreUnavailableError);
    const started = Date.now();
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.getById(makeRecord().id)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  // Last: it kills and restarts the shared server.
  it('survives an outage: every method fails fast while Redis is down, then works again', async () => {
    const store = await newStore();
    const r = makeRecord();
    await store.create(r);
    await server.kill();

    const calls: Record<string, () => Promise<unknown>> = {
      create: () => store.create(makeRecord()),
      getById: () => store.getById(r.id),
      getByHash: () => store.getByHash(r.hash),
      replace: () => store.replace({ ...r, name: 'x', version: 2 }, 1),
      delete: () => store.delete(r.id),
      list: () => store.list({ limit: 10 }),
      listFiltered: () => store.list({ owner: 'team-a', state: 'active', limit: 10 }),
      addUsage: () => store.addUsage([{ keyId: r.id, count: 1, lastUsedAt: 1 }], randomUUID()),
      ping: () => store.ping(),
    };
    for (const [name, call] of Object.entries(calls)) {
      const started = Date.now();
      const err = await call().then(
        () => new Error(`${name} succeeded with Redis down`),
        (e: unknown) => e,
      );
      expect([name, err]).toEqual([name, expect.any(StoreUnavailableError)]);
      expect((err as StoreUnavailableError).cause).toBeDefined();
      expect((err as StoreUnavailableError).retryable).toBe(true);
      expect(Date.now() - started).toBeLessThan(1500);
    }
    // several in flight at once, too
    const burst = await Promise.allSettled(Object.values(calls).map((c) => c()));
    for (const b of burst) expect(b).toMatchObject({ status: 'rejected', reason: expect.any(StoreUnavailableError) });

    await server.restart();
    await eventually(() => store.ping(), 10_000);
    // no persistence on the test server: the data is gone, the store works again
    const again = makeRecord();
    await store.create(again);
    expect(await store.getByHash(again.hash)).toStrictEqual(again);
    expect((await store.list({ limit: 10 })).records.map((x) => x.id)).toEqual([again.id]);
  });
});

async function eventually(fn: () => Promise<unknown>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fn();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
