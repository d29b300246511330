import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import Redis from 'ioredis';
import {
  createRedisClient,
  RedisKeyStore,
  waitUntilReady,
  type RedisClientOptions,
} from '../../src/adapters/store/redis-key-store';
import { RedisLease } from '../../src/adapters/events/redis-lease';
import { RedisLimiter } from '../../src/adapters/limits/redis-limiter';
import { AlreadyExistsError, StoreUnavailableError } from '../../src/domain/errors';
import { compileLimits } from '../../src/domain/limit-rules';
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
  return {
    store,
    cleanup: () => store.close(),
    // RedisLease on the store's server and prefix: fences are checked against its key
    lease: (name) => new RedisLease({ redis: admin, name }),
    // Redis judges expiry (PEXPIREAT) by its own clock: real time, on this machine
    now: () => Date.now(),
    pass: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
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
      await store.replace({ ...recs[0], state: 'disabled', dueAt: 7, version: 2 }, 1);
      const lease = new RedisLease({ redis: admin, keyPrefix, name: 'scheduler' });
      await lease.tryAcquire(60_000);
      const successor = makeRecord({ dueAt: 9, rotatedFrom: recs[0].id });
      await store.rotate(
        { retired: { ...recs[0], state: 'disabled', rotatedTo: successor.id, dueAt: 8, version: 3 }, expectedVersion: 2, successor, sealed: { sealed: 'v1.x.y', expiresAt: Date.now() + 60_000 } },
        { fence: { lease: lease.name, value: lease.holder()! } },
      );
      const keys = await admin.keys('*');
      expect(keys).toEqual(expect.arrayContaining([`{${keyPrefix ?? 'kw'}}:due`, `{${keyPrefix ?? 'kw'}}:sealed:${successor.id}`]));
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

  it('writes format 2 only for records with rotation fields, and still reads format 1 records', async () => {
    const store = await newStore();
    const plain = makeRecord();
    const rotated = makeRecord({ rotatedFrom: plain.id, limitsId: plain.id, dueAt: 5 });
    await store.create(plain);
    await store.create(rotated);
    expect(await admin.hget(`{kw}:r:${plain.hash}`, 'v')).toBe('1');
    expect(await admin.hget(`{kw}:r:${rotated.hash}`, 'v')).toBe('2');
    // clearing the fields writes format 1 again
    const { rotatedFrom: _f, limitsId: _l, dueAt: _d, ...bare } = rotated;
    await store.replace({ ...bare, version: 2 }, 1);
    expect(await admin.hget(`{kw}:r:${rotated.hash}`, 'v')).toBe('1');
    // a record as the previous release wrote it (format 1, no rotation keys in d)
    const old = makeRecord({ expiresAt: 123, policyId: 'pol_01HZY3K0AX7R5M3B2C1D4E5F6G', credits: 3 });
    await admin.hset(`{kw}:r:${old.hash}`, {
      v: '1', id: old.id, h: old.hash, ver: '1', svc: old.service, own: old.owner, st: 'active', u: '0',
      d: JSON.stringify({ n: old.name, p: old.prefix, hi: old.hint, sc: old.scopes, m: old.metadata, ca: old.createdAt, ua: old.updatedAt, ea: 123, po: old.policyId, cr: 3 }),
    });
    await admin.set(`{kw}:id:${old.id}`, old.hash);
    expect(await store.getByHash(old.hash)).toStrictEqual(old);
    expect(await store.getById(old.id)).toStrictEqual(old);
    // and a format 1 record never gains rotation fields by accident
    const v1 = JSON.parse((await admin.hget(`{kw}:r:${old.hash}`, 'd'))!) as Record<string, unknown>;
    await admin.hset(`{kw}:r:${old.hash}`, 'd', JSON.stringify({ ...v1, rt: 'key_x', du: 1 }));
    expect(await store.getByHash(old.hash)).toStrictEqual(old);
  });

  it('stores a sealed secret as its sealed form only, expiring at its expiresAt', async () => {
    const store = await newStore();
    const old = makeRecord();
    await store.create(old);
    const successor = makeRecord();
    const expiresAt = Date.now() + 60_000;
    await store.rotate({ retired: { ...old, rotatedTo: successor.id, version: 2 }, expectedVersion: 1, successor, sealed: { sealed: 'v1.abcd.ciphertext', expiresAt } });
    const key = `{kw}:sealed:${successor.id}`;
    expect(JSON.parse((await admin.get(key))!)).toEqual({ s: 'v1.abcd.ciphertext', e: expiresAt });
    expect(Number(await admin.pexpiretime(key))).toBe(expiresAt);
    await store.takeSealedSecret(successor.id);
    expect(await admin.exists(key)).toBe(0);
  });

  it('refuses arguments Redis would refuse halfway through a script, before writing', async () => {
    const store = await newStore();
    const old = makeRecord();
    await store.create(old);
    const successor = makeRecord();
    const retired = { ...old, rotatedTo: successor.id, version: 2 };
    const before = (await admin.keys('*')).sort();
    await expect(store.rotate({ retired, expectedVersion: 1, successor, sealed: { sealed: 'x', expiresAt: 1.5 } })).rejects.toThrow(RangeError);
    await expect(store.rotate({ retired, expectedVersion: 1, successor: { ...successor, dueAt: NaN } })).rejects.toThrow(RangeError);
    await expect(store.create(makeRecord({ dueAt: Infinity }))).rejects.toThrow(RangeError);
    await expect(store.create(makeRecord(), { fence: { lease: 'x}{y', value: 'v' } })).rejects.toThrow(RangeError);
    expect((await admin.keys('*')).sort()).toEqual(before);
  });

  it('pages a 10k-key due range in bounded batches, each key once, earliest first', async () => {
    const store = await newStore();
    const NOW = 1_000_000;
    const dueRecs = Array.from({ length: 10_000 }, (_, i) => makeRecord({ dueAt: NOW - 10_000 + ((i * 7_919) % 10_000) })); // shuffled due times
    const later = Array.from({ length: 500 }, (_, i) => makeRecord({ dueAt: NOW + 1 + i }));
    const never = Array.from({ length: 500 }, () => makeRecord());
    const all = [...dueRecs, ...later, ...never];
    for (let i = 0; i < all.length; i += 500) await Promise.all(all.slice(i, i + 500).map((r) => store.create(r)));
    const expected = [...dueRecs].sort((a, b) => a.dueAt! - b.dueAt!).map((r) => r.id);
    expect(await store.due(NOW, 20_000)).toEqual(expected);

    // the scheduler's loop: take a batch, handle it (here: the step is done, no further due time), repeat
    const byId = new Map(dueRecs.map((r) => [r.id, r]));
    const seen: string[] = [];
    let calls = 0;
    for (;;) {
      const batch = await store.due(NOW, 1_000);
      calls++;
      expect(batch.length).toBeLessThanOrEqual(1_000);
      if (batch.length === 0) break;
      seen.push(...batch);
      await Promise.all(batch.map((id) => {
        const { dueAt: _done, ...r } = byId.get(id)!;
        return store.replace({ ...r, expiryHandledAt: NOW, version: 2 }, 1);
      }));
      if (calls > 20) throw new Error('due never drains');
    }
    expect(calls).toBe(11);
    expect(seen).toEqual(expected);
    expect(await store.due(NOW, 10)).toEqual([]);
    expect(await admin.zcard('{kw}:due')).toBe(later.length);
    expect(await store.due(NOW + 500, 1_000)).toEqual(later.map((r) => r.id));
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
    const successor = makeRecord();
    const sealed = { sealed: 's', expiresAt: Date.now() + 60_000 };
    await store.rotate({ retired: { ...b, rotatedTo: 'key_loaded', version: 2 }, expectedVersion: 1, successor: makeRecord(), sealed }); // load
    expect(await names(() => store.rotate({ retired: { ...a, rotatedTo: successor.id, version: 4 }, expectedVersion: 3, successor, sealed }))).toEqual(['evalsha']);
    expect(await names(() => store.due(Date.now(), 100))).toEqual(['zrangebyscore']);
    expect(await names(() => store.takeSealedSecret(successor.id))).toEqual(['getdel']);
    expect(await names(() => store.delete(b.id))).toEqual(['evalsha']);
    sent.mockRestore();
  });

  it('writes the reads of one event-loop turn in one socket write, shared with the limiter on the same client', async () => {
    const redis = createRedisClient(server.url);
    await waitUntilReady(redis);
    const store = new RedisKeyStore({ redis });
    stores.push(store);
    const limiter = new RedisLimiter({ redis, batchWrites: true });
    const records = [makeRecord(), makeRecord(), makeRecord()];
    for (const r of records) await store.create(r);
    const limits = compileLimits([{ name: 'rps', limit: 10, periodMs: 1000, burst: 10 }]);
    await limiter.check({ keyId: records[0].id, cost: 1, limits, now: 1_000 }); // script loaded
    const socket = redis.stream as Socket;
    const write = jest.spyOn(socket, '_write');
    const writev = jest.spyOn(socket, '_writev');
    const reads = [...records, ...records].map((r) => store.getByHash(r.hash));
    const check = limiter.check({ keyId: records[1].id, cost: 1, limits, now: 1_001 });
    const missing = store.getByHash(makeRecord().hash);
    const found = await Promise.all(reads);
    expect(found.map((r) => r?.id)).toEqual([...records, ...records].map((r) => r.id));
    expect(await missing).toBeUndefined();
    expect((await check).allowed).toBe(true);
    expect(write).not.toHaveBeenCalled();
    expect(writev).toHaveBeenCalledTimes(1);
    expect(writev.mock.calls[0][0]).toHaveLength(8);
    // the next turn corks again: a lone read is one write of its own
    write.mockClear();
    writev.mockClear();
    expect((await store.getByHash(records[2].hash))?.id).toBe(records[2].id);
    expect(write.mock.calls.length + writev.mock.calls.length).toBe(1);
    write.mockRestore();
    writev.mockRestore();
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
      rotate: () => store.rotate({ retired: { ...r, rotatedTo: 'key_x', version: 2 }, expectedVersion: 1, successor: makeRecord() }),
      due: () => store.due(Date.now(), 10),
      takeSealedSecret: () => store.takeSealedSecret(r.id),
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
