import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { EventTransportUnavailableError } from '../../src/adapters/events/errors';
import {
  EVENT_STREAM,
  SHARED_CONSUMER,
  createNatsEventTransport,
  eventSubject,
  type NatsEventTransport,
  type NatsEventTransportOptions,
} from '../../src/adapters/events/nats-event-transport';
import type { WireEvent } from '../../src/ports/event-transport';
import { startNats, type NatsServerHandle } from '../support/nats-server';
import { sleep, testLogger, waitFor, wireEvent } from './event-fixtures';
import { startTcpProxy } from './tcp-proxy';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

let server: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
const transports: NatsEventTransport[] = [];

async function transport(opts: Partial<NatsEventTransportOptions> = {}): Promise<NatsEventTransport> {
  const t = await createNatsEventTransport({ url: server.url, logger: testLogger(), reconnectTimeWait: 100, ...opts });
  transports.push(t);
  return t;
}

async function messageCount(): Promise<number> {
  return (await jsm.streams.info(EVENT_STREAM)).state.messages;
}

/** Publishes, retrying while the transport is (re)connecting. */
async function publishEventually(t: NatsEventTransport, e: WireEvent, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await t.publish(e);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

beforeAll(async () => {
  server = await startNats();
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  jsm = await jetstreamManager(nc);
});

afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.close()));
  await jsm.consumers.delete(EVENT_STREAM, SHARED_CONSUMER).catch(() => undefined);
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

describe('NatsEventTransport', () => {
  test('creates the stream: file storage, limits, max age and bytes, duplicate window, discard old', async () => {
    await transport({ streamMaxAge: 3_600_000, streamMaxBytes: 10 * 1024 * 1024, duplicateWindow: 60_000 });
    const c = (await jsm.streams.info(EVENT_STREAM)).config;
    expect(c).toMatchObject({
      subjects: ['keyward.events.>'],
      storage: 'file',
      retention: 'limits',
      discard: 'old',
      max_age: 3_600_000 * 1e6,
      max_bytes: 10 * 1024 * 1024,
      duplicate_window: 60_000 * 1e6,
    });
    // a transport with other settings puts its own back (create-or-update)
    await transport();
    const d = (await jsm.streams.info(EVENT_STREAM)).config;
    expect(d).toMatchObject({ max_age: 7 * 86_400_000 * 1e6, max_bytes: 1024 ** 3, duplicate_window: 120_000 * 1e6 });
  });

  test('publish -> a subscribeAll subscriber on another connection gets it: subject, body, headers, traceparent', async () => {
    const publisher = await transport({ name: 'pub' });
    const subscriber = await transport({ name: 'sub' });
    const got: WireEvent[] = [];
    await subscriber.subscribeAll((e) => got.push(e));
    const traced = wireEvent({ service: 'orders', traceparent: TRACEPARENT });
    const plain = wireEvent({ service: '' });
    await publisher.publish(traced);
    await publisher.publish(plain);
    await waitFor(() => got.length === 2, 5000, 'two events');
    expect(got[0]).toEqual(traced);
    expect(got[1]).toEqual(plain);
    expect(got[1].traceparent).toBeUndefined();

    const stored = await jsm.streams.getMessage(EVENT_STREAM, { last_by_subj: 'keyward.events.orders.quota.exceeded' });
    expect(stored?.subject).toBe(eventSubject(traced));
    expect(stored?.string()).toBe(traced.body);
    expect(stored?.header.get('Nats-Msg-Id')).toBe(traced.id);
    expect(stored?.header.get('Content-Type')).toBe('application/json');
    expect(stored?.header.get('traceparent')).toBe(TRACEPARENT);
    const noService = await jsm.streams.getMessage(EVENT_STREAM, { last_by_subj: 'keyward.events._.quota.exceeded' });
    expect(noService?.header.get('Nats-Msg-Id')).toBe(plain.id);
    expect(noService?.header.get('traceparent')).toBe('');
  });

  test('subject: keyward.events.<service>.<type>, `_` without a service', () => {
    expect(eventSubject({ service: 'orders', type: 'key.revoked' })).toBe('keyward.events.orders.key.revoked');
    expect(eventSubject({ service: '', type: 'quota.exceeded' })).toBe('keyward.events._.quota.exceeded');
    expect(eventSubject({ service: 'a.b*>', type: 'key.revoked' })).toBe('keyward.events.a_b__.key.revoked');
  });

  test('the same event id published twice (from two connections) is stored and delivered once', async () => {
    const a = await transport();
    const b = await transport();
    const got: string[] = [];
    await b.subscribeAll((e) => got.push(e.id));
    const before = await messageCount();
    const e = wireEvent();
    await a.publish(e);
    await a.publish(e);
    await b.publish(e);
    const marker = wireEvent();
    await a.publish(marker);
    await waitFor(() => got.includes(marker.id), 5000, 'the marker event');
    expect(await messageCount()).toBe(before + 2);
    expect(got).toEqual([e.id, marker.id]);
  });

  test('subscribeAll starts at new events and skips messages that are not keyward events', async () => {
    const t = await transport();
    await t.publish(wireEvent()); // before the subscription: not delivered
    const got: string[] = [];
    await t.subscribeAll((e) => got.push(e.id));
    await nc.publish('keyward.events.orders.key.revoked', 'not json');
    await sleep(20);
    const e = wireEvent();
    await t.publish(e);
    await waitFor(() => got.length >= 1, 5000, 'the event');
    await sleep(100);
    expect(got).toEqual([e.id]);
  });

  test('subscribeShared on two transports: every event handled exactly once in total', async () => {
    const seen = new Map<string, string[]>();
    const handler = (who: string) => async (e: WireEvent) => {
      seen.set(e.id, [...(seen.get(e.id) ?? []), who]);
      await sleep(5);
    };
    const a = await transport({ name: 'a' });
    const b = await transport({ name: 'b' });
    await a.subscribeShared(handler('a'));
    await b.subscribeShared(handler('b'));
    const events = Array.from({ length: 40 }, (_, n) => wireEvent({ n }));
    for (const e of events) await a.publish(e);
    await waitFor(() => seen.size === events.length, 10_000, 'every event handled');
    await sleep(300); // would a duplicate show up?
    for (const e of events) expect(seen.get(e.id)).toHaveLength(1);
    const ci = await jsm.consumers.info(EVENT_STREAM, SHARED_CONSUMER);
    expect(ci.config).toMatchObject({ ack_policy: 'explicit', ack_wait: 30_000 * 1e6, max_deliver: 10 });
    await waitFor(async () => (await jsm.consumers.info(EVENT_STREAM, SHARED_CONSUMER)).num_ack_pending === 0, 5000, 'all acked');
  });

  test('subscribeShared: a rejected event is redelivered (after the nak delay) until handled', async () => {
    const attempts = new Map<string, number>();
    const t = await transport({ nakDelay: () => 100 });
    await t.subscribeShared(async (e) => {
      const n = (attempts.get(e.id) ?? 0) + 1;
      attempts.set(e.id, n);
      if (n < 3) throw new Error(`fail #${n}`);
    });
    const e = wireEvent();
    await t.publish(e);
    await waitFor(() => attempts.get(e.id) === 3, 5000, 'the third delivery');
    await sleep(300);
    expect(attempts.get(e.id)).toBe(3);
    await waitFor(async () => (await jsm.consumers.info(EVENT_STREAM, SHARED_CONSUMER)).num_ack_pending === 0, 5000, 'acked');
  });

  test('ping resolves while connected, and publish/ping reject with a retryable error once closed', async () => {
    const t = await transport();
    await expect(t.ping()).resolves.toBeUndefined();
    await t.close();
    await expect(t.ping()).rejects.toBeInstanceOf(EventTransportUnavailableError);
    const err = await t.publish(wireEvent()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventTransportUnavailableError);
    expect((err as EventTransportUnavailableError).retryable).toBe(true);
  });
});

describe('NatsEventTransport across a NATS outage', () => {
  test('starts while NATS is down, fails fast meanwhile, and works once NATS is up', async () => {
    const down = await startNats();
    try {
      await down.kill();
      const t0 = Date.now();
      const t = await createNatsEventTransport({ url: down.url, logger: testLogger(), reconnectTimeWait: 100, startTimeout: 200 });
      transports.push(t);
      expect(Date.now() - t0).toBeLessThan(2000);
      await expect(t.ping()).rejects.toBeInstanceOf(EventTransportUnavailableError);
      await expect(t.publish(wireEvent())).rejects.toBeInstanceOf(EventTransportUnavailableError);
      const got: string[] = [];
      await t.subscribeAll((e) => got.push(e.id));
      // a subscription closed while NATS is still down closes at once
      const shared = await t.subscribeShared(async () => {});
      const s0 = Date.now();
      await shared.close();
      expect(Date.now() - s0).toBeLessThan(1000);
      await down.restart();
      await waitFor(async () => t.ping().then(() => true, () => false), 5000, 'connected');
      const e = wireEvent();
      await publishEventually(t, e);
      await waitFor(() => got.length === 1, 10_000, 'the event');
      expect(got).toEqual([e.id]);
      // never-connected transports close promptly too
      const never = await createNatsEventTransport({ url: 'nats://127.0.0.1:1', logger: testLogger(), reconnectTimeWait: 100, startTimeout: 50 });
      const c0 = Date.now();
      await never.close();
      expect(Date.now() - c0).toBeLessThan(3000);
    } finally {
      await Promise.all(transports.splice(0).map((t) => t.close()));
      await down.stop();
    }
  });

  test('NATS killed and restarted: subscribers resume after the last event they saw, in order, exactly once', async () => {
    const proxy = await startTcpProxy(server.port);
    try {
      const publisher = await transport({ name: 'publisher' });
      // connected throughout, directly
      const direct: string[] = [];
      await (await transport({ name: 'direct' })).subscribeAll((e) => direct.push(e.id));
      // connected throughout, but through a proxy the test cuts: it misses the time NATS comes back
      const cut: string[] = [];
      const cutOff = await transport({ url: proxy.url, name: 'cut-off' });
      await cutOff.subscribeAll((e) => cut.push(e.id));

      const before = Array.from({ length: 3 }, (_, n) => wireEvent({ n }));
      for (const e of before) await publisher.publish(e);
      await waitFor(() => direct.length === 3 && cut.length === 3, 5000, 'the first events');
      // subscribed after them, saw nothing yet: after the restart it must not replay the stream
      const late: string[] = [];
      await (await transport({ name: 'late' })).subscribeAll((e) => late.push(e.id));

      proxy.block();
      await server.kill();
      await server.restart();
      // published by another connection while the cut-off subscriber cannot reach NATS
      const during = Array.from({ length: 3 }, (_, n) => wireEvent({ n: 10 + n }));
      for (const e of during) await publishEventually(publisher, e);
      await waitFor(() => direct.length === 6, 10_000, 'the direct subscriber to resume');
      proxy.unblock();
      const after = Array.from({ length: 3 }, (_, n) => wireEvent({ n: 20 + n }));
      for (const e of after) await publishEventually(publisher, e);

      const all = [...before, ...during, ...after].map((e) => e.id);
      await waitFor(() => direct.length >= 9 && cut.length >= 9 && late.length >= 6, 12_000, 'every event');
      await sleep(200);
      expect(direct).toEqual(all);
      expect(cut).toEqual(all);
      expect(late).toEqual(all.slice(3));
    } finally {
      await Promise.all(transports.splice(0).map((t) => t.close())); // before the proxy goes
      await proxy.close();
    }
  });
});
