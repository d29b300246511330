import Redis from 'ioredis';
import type { DeadLetter } from '../../src/adapters/notify/dead-letter-store';
import { RedisDeadLetterStore } from '../../src/adapters/notify/redis-dead-letter-store';
import { createRedisClient, waitUntilReady } from '../../src/adapters/redis/redis-client';
import { StoreUnavailableError } from '../../src/domain/errors';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

let server: RedisServerHandle;
let admin: Redis;
const clients: Redis[] = [];

function letter(i: number, over: Partial<DeadLetter> = {}): DeadLetter {
  return {
    channel: 'security',
    eventIds: [`evt_${i}`, `evt_${i}b`],
    reason: 'exhausted',
    attempts: 6,
    lastError: 'HTTP 503',
    lastStatus: 503,
    firstAttemptAt: 1_000 + i,
    lastAttemptAt: 2_000 + i,
    body: `{"events":[{"id":"evt_${i}"},{"id":"evt_${i}b"}]}`,
    ...over,
  };
}

async function client(): Promise<Redis> {
  const c = createRedisClient(server.url);
  clients.push(c);
  await waitUntilReady(c);
  return c;
}

beforeAll(async () => {
  server = await startRedis();
  admin = new Redis(server.url, { maxRetriesPerRequest: null, disconnectTimeout: 50 });
  admin.on('error', () => {});
});

beforeEach(async () => {
  await admin.flushall();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
});

afterAll(async () => {
  await admin?.quit();
  await server?.stop();
});

describe('RedisDeadLetterStore', () => {
  it('appends to {kw}:deadletters and lists newest first, records intact', async () => {
    const store = new RedisDeadLetterStore({ redis: await client() });
    await store.append(letter(1));
    const queueFull = letter(2, { reason: 'queue_full', attempts: 0, lastError: 'queue_full', lastStatus: undefined });
    await store.append(queueFull);
    const list = await store.list(10);
    expect(list).toEqual([queueFull, letter(1)]);
    expect(list[0]).not.toHaveProperty('lastStatus');
    expect(await admin.llen('{kw}:deadletters')).toBe(2);
    expect(JSON.parse((await admin.lindex('{kw}:deadletters', 0))!)).toMatchObject({ v: 1, reason: 'queue_full' });
    expect(await store.list(1)).toHaveLength(1);
    expect(await store.list(0)).toEqual([]);
  });

  it('trims the list to maxLength', async () => {
    const store = new RedisDeadLetterStore({ redis: await client(), maxLength: 3, keyPrefix: 'other' });
    for (let i = 0; i < 10; i++) await store.append(letter(i));
    expect(await admin.llen('{other}:deadletters')).toBe(3);
    expect((await store.list(10)).map((r) => r.eventIds[0])).toEqual(['evt_9', 'evt_8', 'evt_7']);
  });

  it('skips entries it cannot read instead of guessing', async () => {
    const store = new RedisDeadLetterStore({ redis: await client() });
    await store.append(letter(1));
    await admin.lpush('{kw}:deadletters', 'not json', JSON.stringify({ v: 99, channel: 'x' }));
    expect((await store.list(10)).map((r) => r.eventIds[0])).toEqual(['evt_1']);
  });

  it('an unreachable Redis is StoreUnavailableError, for append and list', async () => {
    const c = await client();
    const store = new RedisDeadLetterStore({ redis: c });
    c.disconnect();
    await expect(store.append(letter(1))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.append(letter(1))).rejects.toThrow(/redis unavailable \(deadletters append\)/);
    await expect(store.list(1)).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('a key of the wrong type is a refusal (plain Error naming it), not an outage', async () => {
    await admin.set('{kw}:deadletters', 'a string');
    const store = new RedisDeadLetterStore({ redis: await client() });
    const err = await store.append(letter(1)).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toMatch(/^redis deadletters append failed: WRONGTYPE/);
    await expect(store.list(1)).rejects.toThrow(/WRONGTYPE/);
  });

  it('refuses bad options', async () => {
    const redis = await client();
    expect(() => new RedisDeadLetterStore({ redis, keyPrefix: '{x}' })).toThrow(RangeError);
    expect(() => new RedisDeadLetterStore({ redis, maxLength: 0 })).toThrow(RangeError);
  });
});
