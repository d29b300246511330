import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import fc from 'fast-check';
import Redis from 'ioredis';
import { MemoryLimiter } from '../../src/adapters/limits/memory-limiter';
import { RedisLimiter } from '../../src/adapters/limits/redis-limiter';
import { createRedisClient, waitUntilReady } from '../../src/adapters/redis/redis-client';
import { StoreUnavailableError } from '../../src/domain/errors';
import type { CreditRule, RateLimitRule } from '../../src/domain/policy';
import type { LimitResult, Limiter } from '../../src/ports/limiter';
import { startRedis, type RedisServerHandle } from '../support/redis-server';
import { describeLimiterContract, toCheck } from './limiter.contract';

// ioredis's own dependency; no types shipped.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const calculateSlot = require('cluster-key-slot') as (key: string) => number;

let server: RedisServerHandle;
/** Inspects the test server directly (KEYS is fine here: a test server with a handful of keys). */
let admin: Redis;
const limiters: Limiter[] = [];

type LimiterOptions = { keyPrefix?: string; expiryMarginMs?: number; batchWrites?: boolean };

/** A limiter on its own connected client (returned too, for tests that watch what it sends). */
async function newLimiterWithClient(opts: LimiterOptions = {}): Promise<{ limiter: RedisLimiter; redis: Redis }> {
  const redis = createRedisClient(server.url);
  await waitUntilReady(redis);
  const limiter = new RedisLimiter({ redis, ...opts });
  limiters.push(limiter);
  return { limiter, redis };
}

async function newLimiter(opts: LimiterOptions = {}): Promise<RedisLimiter> {
  return (await newLimiterWithClient(opts)).limiter;
}

beforeAll(async () => {
  server = await startRedis();
  admin = new Redis(server.url, { maxRetriesPerRequest: null, disconnectTimeout: 50 });
  admin.on('error', () => {});
});

afterEach(async () => {
  await Promise.all(limiters.splice(0).map((l) => l.close()));
});

afterAll(async () => {
  await admin?.quit();
  await server?.stop();
});

describeLimiterContract('MemoryLimiter', async () => {
  const limiter = new MemoryLimiter();
  return { limiter, cleanup: () => limiter.close() };
});

describeLimiterContract('RedisLimiter', async () => {
  const limiter = await newLimiter();
  return { limiter, cleanup: async () => {} };
});

const T0 = Date.UTC(2025, 6, 14, 10, 30);
const perSecond: RateLimitRule = { name: 'per-second', limit: 10, periodMs: 1000, burst: 4 };
const perDay: RateLimitRule = { name: 'per-day', limit: 1000, periodMs: 86_400_000, burst: 0 };

describe('RedisLimiter on Redis', () => {
  beforeEach(async () => {
    await admin.flushall();
  });

  it('keeps a key’s state in two keys of one slot, tagged by key id, and spreads keys over slots', async () => {
    for (const keyPrefix of [undefined, 'tenant-1']) {
      await admin.flushall();
      const limiter = await newLimiter({ keyPrefix });
      const ids = Array.from({ length: 8 }, () => `key_${randomUUID()}`);
      for (const keyId of ids) {
        await limiter.check(toCheck({ keyId, cost: 1, rateLimits: [perSecond, perDay], credits: { initial: 5 }, now: T0 }));
      }
      const keys = (await admin.keys('*')).sort();
      const tag = (id: string): string => `{${keyPrefix ?? 'kw'}l:${id}}`;
      expect(keys).toEqual(ids.flatMap((id) => [`${tag(id)}:cr`, `${tag(id)}:rl`]).sort());
      for (const id of ids) {
        expect(calculateSlot(`${tag(id)}:rl`)).toBe(calculateSlot(`${tag(id)}:cr`));
        expect(limiter.keysOf(id)).toEqual({ rates: `${tag(id)}:rl`, credits: `${tag(id)}:cr` });
      }
      expect(new Set(ids.map((id) => calculateSlot(tag(id)))).size).toBeGreaterThan(1);
    }
  });

  it('stores TATs as `ms frac den` and credits as r/s, with expiry on the limits only', async () => {
    const limiter = await newLimiter();
    const keyId = `key_${randomUUID()}`;
    const three: RateLimitRule = { name: 'three', limit: 3, periodMs: 1000, burst: 0 };
    await limiter.check(toCheck({ keyId, cost: 1, rateLimits: [perSecond, three, perDay], credits: { initial: 5 }, now: T0 }));
    const { rates, credits } = limiter.keysOf(keyId);
    expect(await admin.hgetall(rates)).toEqual({
      'per-second': `${T0 + 100} 0 1`,
      three: `${T0 + 333} 1 3`,
      'per-day': `${T0 + 86_400} 0 1`,
    });
    expect(await admin.hgetall(credits)).toEqual({ r: '4', s: String(T0) });
    // expires when the slowest limit is full again (86.4 s) plus the margin (60 s)
    const ttl = await admin.pttl(rates);
    expect(ttl).toBeGreaterThan(146_400 - 2000);
    expect(ttl).toBeLessThanOrEqual(146_400);
    expect(await admin.pttl(credits)).toBe(-1);
    // only ever lengthened: a check of a faster limit alone does not shorten it
    await limiter.check(toCheck({ keyId, cost: 1, rateLimits: [perSecond], now: T0 + 10 }));
    expect(await admin.pttl(rates)).toBeGreaterThan(146_400 - 2000);
  });

  it('lets idle limit state vanish by itself', async () => {
    const limiter = await newLimiter({ expiryMarginMs: 0 });
    const keyId = `key_${randomUUID()}`;
    const fast: RateLimitRule = { name: 'fast', limit: 20, periodMs: 1000, burst: 0 }; // full again in 50 ms
    await limiter.check(toCheck({ keyId, cost: 1, rateLimits: [fast], now: Date.now() }));
    expect(await admin.exists(limiter.keysOf(keyId).rates)).toBe(1);
    await new Promise((r) => setTimeout(r, 120));
    expect(await admin.exists(limiter.keysOf(keyId).rates)).toBe(0);
  });

  it('writes nothing when a check is refused: no lazy init, no refill, no TAT, no expiry change', async () => {
    const limiter = await newLimiter();
    const keyId = `key_${randomUUID()}`;
    const { rates, credits } = limiter.keysOf(keyId);
    // refused on a key never seen: no key is created
    const tooBig = await limiter.check(toCheck({ keyId, cost: 9, rateLimits: [perSecond], credits: { initial: 5 }, now: T0 }));
    expect(tooBig.allowed).toBe(false);
    expect(await admin.exists(rates, credits)).toBe(0);
    const poor = await limiter.check(toCheck({ keyId, cost: 5, rateLimits: [perSecond], credits: { initial: 4 }, now: T0 }));
    expect(poor.denied).toEqual({ kind: 'credits' });
    expect(await admin.exists(rates, credits)).toBe(0);

    const daily: CreditRule = { initial: 5, refill: { period: 'daily', amount: 100 } };
    const roomy: RateLimitRule = { name: 'roomy', limit: 10, periodMs: 1000, burst: 9 };
    await limiter.check(toCheck({ keyId, cost: 5, rateLimits: [roomy], credits: daily, now: T0 }));
    const snapshot = async () => [await admin.dump(rates), await admin.dump(credits), await admin.pttl(rates)];
    const before = await snapshot();
    // refused by the rate limit the next day: the refill it computed is reported, not written
    const r = await limiter.check(toCheck({ keyId, cost: 11, rateLimits: [roomy], credits: daily, now: T0 + 86_400_000 }));
    expect(r).toMatchObject({ allowed: false, denied: { kind: 'rate_limit' }, creditsRemaining: 100 });
    // refused by the credits: the rate limits are not written
    const r2 = await limiter.check(toCheck({ keyId, cost: 1, rateLimits: [roomy], credits: daily, now: T0 + 1 }));
    expect(r2).toMatchObject({ allowed: false, denied: { kind: 'credits' }, creditsRemaining: 0 });
    const after = await snapshot();
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
    expect(Number(after[2])).toBeLessThanOrEqual(Number(before[2]));
  });

  it('makes one round trip per call: check and credits one script each', async () => {
    const { limiter, redis } = await newLimiterWithClient();
    const keyId = `key_${randomUUID()}`;
    const full = { keyId, cost: 2, rateLimits: [perSecond, perDay], credits: { initial: 50, refill: { period: 'monthly' as const, amount: 9 } } };
    await limiter.check(toCheck({ ...full, now: T0 })); // scripts loaded
    await limiter.credits(keyId, { initial: 1 }, T0);
    const sent = jest.spyOn(redis, 'sendCommand');
    const names = async (fn: () => Promise<unknown>): Promise<string[]> => {
      sent.mockClear();
      await fn();
      return sent.mock.calls.map(([command]) => command.name);
    };
    expect(await names(() => limiter.check(toCheck({ ...full, now: T0 + 1 })))).toEqual(['evalsha']);
    expect(await names(() => limiter.check(toCheck({ ...full, cost: 50, now: T0 + 2 })))).toEqual(['evalsha']);
    expect(await names(() => limiter.check(toCheck({ keyId, cost: 1, rateLimits: [perSecond], now: T0 + 3 })))).toEqual(['evalsha']);
    expect(await names(() => limiter.check(toCheck({ keyId, cost: 1, rateLimits: [], credits: { initial: 3 }, now: T0 + 4 })))).toEqual([
      'evalsha',
    ]);
    expect(await names(() => limiter.check(toCheck({ keyId, cost: 1, rateLimits: [], now: T0 + 5 })))).toEqual([]);
    expect(await names(() => limiter.credits(keyId, { initial: 1 }, T0))).toEqual(['evalsha']);
    expect(await names(() => limiter.credits(keyId, undefined, T0))).toEqual([]);
    expect(await names(() => limiter.setCredits(keyId, 10, T0))).toEqual(['hset']);
    expect(await names(() => limiter.forget(keyId))).toEqual(['del']);
    sent.mockRestore();
  });

  it('sends CHECK the same arguments as earlier versions (sidecars of several versions share the state)', async () => {
    const { limiter, redis } = await newLimiterWithClient();
    const keyId = `key_${randomUUID()}`;
    const { rates, credits } = limiter.keysOf(keyId);
    const sent = jest.spyOn(redis, 'sendCommand');
    const three: RateLimitRule = { name: 'three', limit: 3, periodMs: 1000, burst: 1 };
    const monthly: CreditRule = { initial: 50, refill: { period: 'monthly', amount: 9 } };
    await limiter.check(toCheck({ keyId, cost: 2, rateLimits: [perSecond, three], credits: monthly, now: T0 + 0.5 }));
    await limiter.check(toCheck({ keyId, cost: 1, rateLimits: [perDay], now: T0 }));
    await limiter.check(toCheck({ keyId, cost: 3, rateLimits: [], credits: { initial: 7 }, now: T0 }));
    const argv = sent.mock.calls.filter(([c]) => c.name === 'evalsha').map(([c]) => c.args.slice(1));
    sent.mockRestore();
    // now, cost, n, margin; per rule name, num, den, cap; has credits, initial, refill start, refill amount
    expect(argv).toEqual([
      ['2', rates, credits, String(T0), '2', '2', '60000', 'per-second', '100', '1', '500', 'three', '1000', '3', '2000', '1', '50', String(Date.UTC(2025, 6, 1)), '9'],
      ['2', rates, credits, String(T0), '1', '1', '60000', 'per-day', '86400', '1', '86400', '0', '0', '', '0'],
      ['2', rates, credits, String(T0), '3', '0', '60000', '1', '7', '', '0'],
    ]);
  });

  it('writes the commands of one event-loop turn in one socket write (batchWrites), each alone without it', async () => {
    for (const batchWrites of [true, false]) {
      const { limiter, redis } = await newLimiterWithClient({ batchWrites });
      const keyId = `key_${randomUUID()}`;
      await limiter.check(toCheck({ keyId, cost: 1, rateLimits: [perSecond], now: T0 })); // script loaded
      const socket = redis.stream as Socket;
      const write = jest.spyOn(socket, '_write');
      const writev = jest.spyOn(socket, '_writev');
      // 20 checks of one key at one instant, and a command of another user of the client
      const checks = Array.from({ length: 20 }, () => limiter.check(toCheck({ keyId, cost: 1, rateLimits: [perSecond], now: T0 + 1 })));
      const other = redis.set(`other-${keyId}`, 'x');
      const results = await Promise.all(checks);
      expect(await other).toBe('OK');
      if (batchWrites) {
        expect(write).not.toHaveBeenCalled();
        expect(writev).toHaveBeenCalledTimes(1);
        expect(writev.mock.calls[0][0]).toHaveLength(21);
      } else {
        expect(write).toHaveBeenCalledTimes(21);
        expect(writev).not.toHaveBeenCalled();
      }
      // every script ran, in order: burst 4 after one unit at T0 leaves 4 of the 20
      expect(results.map((r) => r.allowed)).toEqual([...Array<boolean>(4).fill(true), ...Array<boolean>(16).fill(false)]);
      expect(results[3].rateLimits[0].remaining).toBe(0);
      write.mockRestore();
      writev.mockRestore();
    }
  });

  it('answers checks with several limits, credits and denials alike with batching on and off', async () => {
    const ids = [`key_${randomUUID()}`, `key_${randomUUID()}`];
    const on = await newLimiter();
    const off = new RedisLimiter({ redis: createRedisClient(server.url), batchWrites: false });
    limiters.push(off);
    await waitUntilReady((off as unknown as { redis: Redis }).redis);
    const three: RateLimitRule = { name: 'three', limit: 3, periodMs: 1000, burst: 1 };
    const run = async (limiter: RedisLimiter, keyId: string): Promise<LimitResult[]> =>
      Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          limiter.check(toCheck({ keyId, cost: 1 + (i % 2), rateLimits: [perSecond, three], credits: { initial: 6 }, now: T0 + 400 * i })),
        ),
      );
    const batched = await run(on, ids[0]);
    const single = await run(off, ids[1]);
    expect(batched).toEqual(single);
    expect(batched.some((r) => r.denied?.kind === 'rate_limit')).toBe(true);
    expect(batched.some((r) => r.denied?.kind === 'credits')).toBe(true);
  });

  it('reloads its scripts when the server forgot them', async () => {
    const limiter = await newLimiter();
    const keyId = `key_${randomUUID()}`;
    await limiter.check(toCheck({ keyId, cost: 1, rateLimits: [perSecond], credits: { initial: 5 }, now: T0 }));
    await admin.script('FLUSH');
    expect((await limiter.check(toCheck({ keyId, cost: 1, rateLimits: [perSecond], credits: { initial: 5 }, now: T0 }))).creditsRemaining).toBe(3);
    await admin.script('FLUSH');
    expect(await limiter.credits(keyId, { initial: 5 }, T0)).toBe(3);
  });

  it('reports an unreachable Redis as StoreUnavailableError', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const limiter = new RedisLimiter({ redis: createRedisClient(`redis://127.0.0.1:${port}`) });
    limiters.push(limiter);
    const keyId = `key_${randomUUID()}`;
    await expect(limiter.check(toCheck({ keyId, cost: 1, rateLimits: [perSecond], now: T0 }))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(limiter.credits(keyId, { initial: 1 }, T0)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(limiter.setCredits(keyId, 1, T0)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(limiter.forget(keyId)).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('reports corrupted state as a plain error, not as an outage', async () => {
    const limiter = await newLimiter();
    const keyId = `key_${randomUUID()}`;
    await admin.hset(limiter.keysOf(keyId).rates, 'per-second', 'garbage');
    const err = await limiter.check(toCheck({ keyId, cost: 1, rateLimits: [perSecond], now: T0 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toMatch(/invalid rate-limit state/);
    const other = `key_${randomUUID()}`;
    await admin.set(limiter.keysOf(other).credits, 'not a hash');
    const wrong = await limiter.credits(other, { initial: 1 }, T0).catch((e: unknown) => e);
    expect(wrong).not.toBeInstanceOf(StoreUnavailableError);
    expect((wrong as Error).message).toMatch(/WRONGTYPE/);
  });

  it('refuses key prefixes it cannot tag', () => {
    const redis = new Redis(server.url, { lazyConnect: true });
    expect(() => new RedisLimiter({ redis, keyPrefix: 'a{b' })).toThrow(RangeError);
    expect(() => new RedisLimiter({ redis, keyPrefix: '' })).toThrow(RangeError);
    expect(() => new RedisLimiter({ redis, expiryMarginMs: -1 })).toThrow(RangeError);
    const prefixed = new Redis(server.url, { lazyConnect: true, keyPrefix: 'x:' });
    expect(() => new RedisLimiter({ redis: prefixed })).toThrow(/keyPrefix/);
    redis.disconnect();
    prefixed.disconnect();
  });

  it('property: decides exactly like MemoryLimiter on random traffic (the Lua mirrors gcra.ts)', async () => {
    const redisLimiter = await newLimiter();
    const rules: RateLimitRule[] = [
      { name: 'a', limit: 3, periodMs: 1000, burst: 1 },
      { name: 'b', limit: 7, periodMs: 60_000, burst: 3 },
      { name: 'c', limit: 2, periodMs: 333, burst: 0 },
      { name: 'd', limit: 1000, periodMs: 86_400_000, burst: 5 },
    ];
    const aEdited: RateLimitRule = { name: 'a', limit: 7, periodMs: 2000, burst: 2 };
    const creditRules: (CreditRule | undefined)[] = [
      undefined,
      { initial: 10 },
      { initial: 6, refill: { period: 'daily', amount: 4 } },
      { initial: 3, refill: { period: 'monthly', amount: 8 } },
    ];
    const op = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.record({
          kind: fc.constant('check' as const),
          key: fc.nat(2),
          dt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 700 }), fc.integer({ min: 0, max: 3 * 86_400_000 })),
          cost: fc.integer({ min: 1, max: 5 }),
          // limit `a` changes between two versions now and then (a policy edit): TATs written
          // under another interval are read alike
          rules: fc.tuple(fc.subarray(rules), fc.boolean()).map(([rs, edited]) => rs.map((r) => (r.name === 'a' && edited ? aEdited : r))),
          credits: fc.nat(3),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('credits' as const), key: fc.nat(2), credits: fc.nat(3) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('set' as const), key: fc.nat(2), value: fc.nat(12) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('forget' as const), key: fc.nat(2) }) },
    );
    const seen = { allowed: 0, rate_limit: 0, credits: 0 };
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 400 * 86_400_000 }), fc.array(op, { minLength: 10, maxLength: 40, size: 'max' }), async (start, ops) => {
        const memory = new MemoryLimiter();
        const run = randomUUID();
        let now = Date.UTC(2024, 0, 1) + start;
        for (const o of ops) {
          const keyId = `key_${run}_${o.key}`;
          let a: unknown;
          let b: unknown;
          if (o.kind === 'check') {
            now += o.dt;
            const c = toCheck({ keyId, cost: o.cost, rateLimits: o.rules, credits: creditRules[o.credits], now });
            [a, b] = await Promise.all([memory.check(c), redisLimiter.check(c)]);
          } else if (o.kind === 'credits') {
            const rule = creditRules[o.credits];
            [a, b] = await Promise.all([memory.credits(keyId, rule, now), redisLimiter.credits(keyId, rule, now)]);
          } else if (o.kind === 'set') {
            await Promise.all([memory.setCredits(keyId, o.value, now), redisLimiter.setCredits(keyId, o.value, now)]);
          } else {
            await Promise.all([memory.forget(keyId), redisLimiter.forget(keyId)]);
          }
          expect(b).toEqual(a);
          if (o.kind === 'check') seen[(a as LimitResult).allowed ? 'allowed' : ((a as LimitResult).denied!.kind)]++;
        }
      }),
      { numRuns: 100 },
    );
    // the runs exercised every outcome
    expect(seen.allowed).toBeGreaterThan(300);
    expect(seen.rate_limit).toBeGreaterThan(100);
    expect(seen.credits).toBeGreaterThan(30);
  });
});
