import Redis from 'ioredis';
import { createNatsEventTransport, type NatsEventTransport } from '../../src/adapters/events/nats-event-transport';
import { RedisEventOutbox } from '../../src/adapters/events/redis-event-outbox';
import { RedisLease } from '../../src/adapters/events/redis-lease';
import { createRedisClient, waitUntilReady } from '../../src/adapters/redis/redis-client';
import { EventRelay } from '../../src/app/event-relay';
import type { EventOutbox } from '../../src/ports/event-outbox';
import type { WireEvent } from '../../src/ports/event-transport';
import { startNats, type NatsServerHandle } from '../support/nats-server';
import { startRedis, type RedisServerHandle } from '../support/redis-server';
import { sleep, testLogger, waitFor, wireEvent } from './event-fixtures';

let nats: NatsServerHandle;
let redis: RedisServerHandle;
let admin: Redis;
const cleanups: (() => Promise<void> | void)[] = [];

async function redisClient(): Promise<Redis> {
  const c = createRedisClient(redis.url);
  cleanups.push(() => c.disconnect());
  await waitUntilReady(c);
  return c;
}

async function transport(name: string): Promise<NatsEventTransport> {
  const t = await createNatsEventTransport({ url: nats.url, logger: testLogger(), name, reconnectTimeWait: 100 });
  cleanups.push(() => t.close());
  return t;
}

function outbox(client: Redis, lease?: RedisLease): RedisEventOutbox {
  const o = new RedisEventOutbox({ redis: client, lease });
  cleanups.push(() => o.close());
  return o;
}

function relay(opts: ConstructorParameters<typeof EventRelay>[0]): EventRelay {
  const r = new EventRelay(opts);
  cleanups.push(() => r.stop());
  return r;
}

/** A subscriber on its own connection, recording event ids in arrival order. */
async function subscriber(): Promise<string[]> {
  const got: string[] = [];
  await (await transport('subscriber')).subscribeAll((e) => got.push(e.id));
  return got;
}

beforeAll(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  admin = new Redis(redis.url, { maxRetriesPerRequest: null, disconnectTimeout: 50 });
  admin.on('error', () => {});
});

beforeEach(async () => {
  await admin.flushall();
});

afterEach(async () => {
  // relays first (registered last), then outboxes, transports, clients
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  admin?.disconnect();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

describe('EventRelay: Redis outbox -> NATS', () => {
  test('NATS killed half-way: appends land in the outbox; after the restart a subscriber gets all 50, in order, once', async () => {
    const got = await subscriber();
    const client = await redisClient();
    const lease = new RedisLease({ redis: client, instanceId: 'solo' });
    const box = outbox(client, lease);
    const r = relay({ outbox: box, transport: await transport('relay'), logger: testLogger(), lease, maxBackoffMs: 200 });
    r.start();

    const events = Array.from({ length: 50 }, (_, n) => wireEvent({ n }));
    for (const e of events.slice(0, 25)) {
      await box.append(e);
      await sleep(2);
    }
    await nats.kill(); // maybe in the middle of a publish: its PubAck is lost, it is published again
    for (const e of events.slice(25)) await box.append(e);
    expect(await box.size()).toBeGreaterThanOrEqual(25);
    await sleep(300); // the relay keeps retrying meanwhile, and skips nothing
    await nats.restart();

    await waitFor(() => got.length >= 50, 12_000, 'all 50 events');
    await waitFor(async () => (await box.size()) === 0, 5000, 'an empty outbox');
    await sleep(200);
    expect(got).toEqual(events.map((e) => e.id));
    expect(r.stats().publishFailures).toBeGreaterThan(0);
  });

  test('two relays racing on one outbox, leader stopped and lease lost on the way: published in order, exactly once', async () => {
    const got = await subscriber();
    const ttl = 600;
    const clientA = await redisClient();
    const clientB = await redisClient();
    const leaseA = new RedisLease({ redis: clientA, instanceId: 'a' });
    const leaseB = new RedisLease({ redis: clientB, instanceId: 'b' });
    const boxA = outbox(clientA, leaseA);
    const boxB = outbox(clientB, leaseB);
    const a = relay({ outbox: boxA, transport: await transport('relay-a'), logger: testLogger(), lease: leaseA, leaseTtlMs: ttl });
    const b = relay({ outbox: boxB, transport: await transport('relay-b'), logger: testLogger(), lease: leaseB, leaseTtlMs: ttl });
    a.start();
    b.start();

    const events = Array.from({ length: 60 }, (_, n) => wireEvent({ n }));
    for (const [i, e] of events.entries()) {
      await (i % 2 ? boxA : boxB).append(e); // appends from both sidecars share one order
      await sleep(3);
      if (i === 20) {
        // graceful handover: the leader stops and releases the lease, the other one takes it
        const leader = a.isLeader() ? a : b;
        await leader.stop();
        leader.start();
      }
      if (i === 40) {
        // the lease lapses in Redis under the leader: another term starts (maybe on the other relay)
        await admin.del(leaseA.key);
      }
    }
    await waitFor(() => got.length >= 60, 10_000, 'all 60 events');
    await waitFor(async () => (await boxA.size()) === 0, 5000, 'an empty outbox');
    await sleep(300);
    expect(got).toEqual(events.map((e) => e.id));
    expect([a.isLeader(), b.isLeader()].filter(Boolean).length).toBeLessThanOrEqual(1);
    expect(a.stats().published + b.stats().published).toBeGreaterThanOrEqual(60);
  });

  test('idle: blocks in the outbox instead of spinning; an appended event reaches a subscriber quickly', async () => {
    const got = await subscriber();
    const box = outbox(await redisClient());
    let reads = 0;
    const counting: EventOutbox = {
      append: (e) => box.append(e),
      read: (after, limit, block) => {
        reads++;
        return box.read(after, limit, block);
      },
      ack: (s) => box.ack(s),
      size: () => box.size(),
      close: () => box.close(),
    };
    const r = relay({ outbox: counting, transport: await transport('relay'), logger: testLogger(), blockMs: 500 });
    r.start();
    await sleep(1000);
    expect(reads).toBeLessThanOrEqual(4); // about one per blockMs

    const latencies: number[] = [];
    for (let n = 0; n < 5; n++) {
      const e = wireEvent({ n });
      const t = Date.now();
      await box.append(e);
      await waitFor(() => got.includes(e.id), 2000, 'the event');
      latencies.push(Date.now() - t);
    }
    expect(Math.max(...latencies)).toBeLessThan(2000); // a sanity bound, not a target

    const t = Date.now();
    await r.stop(); // in a blocking read now
    expect(Date.now() - t).toBeLessThan(1000);
  });

  test('drain: publishes what is pending when NATS is up, returns false at once when it is down', async () => {
    const got = await subscriber();
    const box = outbox(await redisClient());
    const t = await transport('relay');
    const r = relay({ outbox: box, transport: t, logger: testLogger() });
    const events: WireEvent[] = Array.from({ length: 5 }, (_, n) => wireEvent({ n }));
    for (const e of events) await box.append(e);
    expect(await r.drain(5000)).toBe(true); // not started: drains directly
    expect(await box.size()).toBe(0);
    await waitFor(() => got.length === 5, 5000, 'the drained events');
    expect(got).toEqual(events.map((e) => e.id));

    await nats.kill();
    try {
      await box.append(wireEvent());
      const t0 = Date.now();
      expect(await r.drain(5000)).toBe(false);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(await box.size()).toBe(1); // still there for the next relay
    } finally {
      await nats.restart();
    }
  });
});
