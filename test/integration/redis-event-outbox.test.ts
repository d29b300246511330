import Redis from 'ioredis';
import { NotLeaderError } from '../../src/adapters/events/errors';
import { RedisEventOutbox, nextId } from '../../src/adapters/events/redis-event-outbox';
import { RedisLease } from '../../src/adapters/events/redis-lease';
import { createRedisClient, waitUntilReady } from '../../src/adapters/redis/redis-client';
import { StoreUnavailableError } from '../../src/domain/errors';
import { startRedis, type RedisServerHandle } from '../support/redis-server';
import { describeEventOutboxContract } from './event-outbox.contract';
import { wireEvent } from './event-fixtures';

let server: RedisServerHandle;
let admin: Redis;
const clients: Redis[] = [];

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

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

describeEventOutboxContract('RedisEventOutbox', async () => {
  await admin.flushall();
  const outbox = new RedisEventOutbox({ redis: await client() });
  return { outbox, cleanup: () => outbox.close() };
});

describe('RedisEventOutbox on Redis', () => {
  beforeEach(async () => {
    await admin.flushall();
  });

  test('one stream under the {kw} tag; appends from two clients share one order', async () => {
    const a = new RedisEventOutbox({ redis: await client() });
    const b = new RedisEventOutbox({ redis: await client() });
    const events = Array.from({ length: 6 }, (_, n) => wireEvent({ n }));
    for (const [i, e] of events.entries()) await (i % 2 ? a : b).append(e);
    expect(await admin.keys('*')).toEqual(['{kw}:outbox']);
    expect((await a.read(undefined, 10, 0)).map((x) => x.event.id)).toEqual(events.map((e) => e.id));
    await Promise.all([a.close(), b.close()]);
  });

  test('nextId is the id right after a seq, so XTRIM MINID drops the seq itself', () => {
    expect(nextId('1700000000000-0')).toBe('1700000000000-1');
    expect(nextId('5-18446744073709551614')).toBe('5-18446744073709551615');
    expect(() => nextId('abc')).toThrow(RangeError);
  });

  test('close ends a blocked read at once', async () => {
    const outbox = new RedisEventOutbox({ redis: await client() });
    await outbox.read(undefined, 1, 10); // opens the blocking connection
    const t = Date.now();
    const pending = outbox.read(undefined, 10, 10_000);
    await new Promise((r) => setTimeout(r, 50));
    await outbox.close();
    await expect(pending).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - t).toBeLessThan(2000);
  });

  test('with a lease, ack trims only while this instance holds it (checked in Redis)', async () => {
    const redis = await client();
    const leaseA = new RedisLease({ redis, instanceId: 'a' });
    const leaseB = new RedisLease({ redis, instanceId: 'b' });
    const outbox = new RedisEventOutbox({ redis, lease: leaseA });
    for (let n = 0; n < 3; n++) await outbox.append(wireEvent({ n }));
    const [e0, e1, e2] = await outbox.read(undefined, 10, 0);

    await expect(outbox.ack(e0.seq)).rejects.toBeInstanceOf(NotLeaderError); // never acquired
    expect(await leaseA.tryAcquire(5000)).toBe(true);
    expect(await leaseB.tryAcquire(5000)).toBe(false);
    await outbox.ack(e0.seq);
    expect(await outbox.size()).toBe(2);

    // the lease lapses in Redis and B takes it: A's local view has not expired yet, Redis says no
    await admin.del(leaseA.key);
    expect(await leaseB.tryAcquire(5000)).toBe(true);
    expect(leaseB.token()).toBeGreaterThan(1);
    expect(leaseA.holds()).toBe(true);
    await expect(outbox.ack(e1.seq)).rejects.toBeInstanceOf(NotLeaderError);
    expect(await outbox.size()).toBe(2);

    // renewing tells A it lost; A's release does not free B's lease
    expect(await leaseA.tryAcquire(5000)).toBe(false);
    await leaseA.release();
    expect(await admin.get(leaseB.key)).toBe(`b:${leaseB.token()}`);
    const outboxB = new RedisEventOutbox({ redis, lease: leaseB });
    await outboxB.ack(e2.seq);
    expect(await outboxB.size()).toBe(0);
    await Promise.all([outbox.close(), outboxB.close()]);
  });

  test('lease: renew keeps the token, a new acquisition after a lapse gets a larger one, release frees it', async () => {
    const redis = await client();
    const lease = new RedisLease({ redis, instanceId: 'x' });
    expect(await lease.tryAcquire(5000)).toBe(true);
    const t1 = lease.token()!;
    expect(await lease.tryAcquire(5000)).toBe(true);
    expect(lease.token()).toBe(t1);
    expect(await admin.pttl(lease.key)).toBeGreaterThan(4000);
    await admin.del(lease.key);
    expect(await lease.tryAcquire(5000)).toBe(true);
    expect(lease.token()).toBe(t1 + 1);
    await lease.release();
    expect(lease.holds()).toBe(false);
    expect(await admin.exists(lease.key)).toBe(0);
    expect((await admin.keys('*')).sort()).toEqual(['{kw}:outbox:fence']);
  });

  test('Redis down: every call rejects with StoreUnavailableError, and works again when it is back', async () => {
    const outbox = new RedisEventOutbox({ redis: await client() });
    await outbox.append(wireEvent());
    await server.kill();
    try {
      await expect(outbox.append(wireEvent())).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(outbox.read(undefined, 10, 0)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(outbox.read(undefined, 10, 100)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(outbox.size()).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(outbox.ack('1-0')).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await server.restart();
    }
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await outbox.append(wireEvent());
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    expect(await outbox.size()).toBe(1); // no AOF: the restarted server starts empty
    expect(await outbox.read(undefined, 10, 500)).toHaveLength(1);
    await outbox.close();
  });
});
