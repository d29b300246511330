import { InProcessEventTransport } from '../../../src/adapters/events/in-process-event-transport';
import { MemoryEventOutbox } from '../../../src/adapters/events/memory-event-outbox';
import { EventTransportUnavailableError } from '../../../src/adapters/events/errors';
import { EventRelay, type RelayLease } from '../../../src/app/event-relay';
import type { EventTransport, Subscription, WireEvent } from '../../../src/ports/event-transport';
import { captureLogger, wireEvent } from '../helpers/events';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** Records publishes; `fail(id)` decides whether a publish of that event fails. */
class FakeTransport implements EventTransport {
  readonly published: string[] = [];
  readonly attempts: string[] = [];
  fail: (id: string) => boolean = () => false;
  reachable = true;
  async publish(e: WireEvent): Promise<void> {
    this.attempts.push(e.id);
    if (this.fail(e.id)) throw new EventTransportUnavailableError('NATS is not connected');
    this.published.push(e.id);
  }
  async subscribeAll(): Promise<Subscription> {
    throw new Error('not used');
  }
  async subscribeShared(): Promise<Subscription> {
    throw new Error('not used');
  }
  async ping(): Promise<void> {
    if (!this.reachable) throw new EventTransportUnavailableError('down');
  }
  async close(): Promise<void> {}
}

/** A lease the test hands out and takes away. */
class FakeLease implements RelayLease {
  available = true;
  held = false;
  tokens = 0;
  current?: number;
  async tryAcquire(): Promise<boolean> {
    if (this.held && this.available) return true;
    if (!this.available) {
      this.held = false;
      return false;
    }
    this.held = true;
    this.current = ++this.tokens;
    return true;
  }
  holds(): boolean {
    return this.held && this.available;
  }
  token(): number | undefined {
    return this.holds() ? this.current : undefined;
  }
  async release(): Promise<void> {
    this.held = false;
  }
}

describe('EventRelay', () => {
  const relays: EventRelay[] = [];
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
  });
  function relay(opts: ConstructorParameters<typeof EventRelay>[0]): EventRelay {
    const r = new EventRelay({ blockMs: 50, initialBackoffMs: 1, maxBackoffMs: 5, ...opts });
    relays.push(r);
    return r;
  }

  test('publishes the outbox in order and acks each entry', async () => {
    const outbox = new MemoryEventOutbox();
    const transport = new FakeTransport();
    const events = Array.from({ length: 10 }, () => wireEvent());
    for (const e of events.slice(0, 5)) await outbox.append(e);
    relay({ outbox, transport, logger: captureLogger().logger }).start();
    for (const e of events.slice(5)) await outbox.append(e);
    await until(() => transport.published.length === 10, 'all published');
    expect(transport.published).toEqual(events.map((e) => e.id));
    expect(await outbox.size()).toBe(0);
  });

  test('a failing publish is retried with the same event; nothing after it goes first, nothing is skipped', async () => {
    const outbox = new MemoryEventOutbox();
    const transport = new FakeTransport();
    const events = [wireEvent(), wireEvent(), wireEvent()];
    let failures = 0;
    transport.fail = (id) => id === events[1].id && failures++ < 4;
    const log = captureLogger();
    const r = relay({ outbox, transport, logger: log.logger });
    for (const e of events) await outbox.append(e);
    r.start();
    await until(() => transport.published.length === 3, 'all published');
    expect(transport.published).toEqual(events.map((e) => e.id));
    expect(transport.attempts).toEqual([events[0].id, ...Array(5).fill(events[1].id), events[2].id]);
    expect(r.stats().publishFailures).toBe(4);
    expect(log.lines.filter((l) => l.msg === 'publishing an event failed; retrying it')).toHaveLength(1); // then quieter
  });

  test('stops promptly while a publish keeps failing, and leaves the entry in the outbox', async () => {
    const outbox = new MemoryEventOutbox();
    const transport = new FakeTransport();
    transport.fail = () => true;
    const r = relay({ outbox, transport, logger: captureLogger().logger, maxBackoffMs: 2000 });
    await outbox.append(wireEvent());
    r.start();
    await until(() => transport.attempts.length >= 3, 'a few attempts');
    const t = Date.now();
    await r.stop();
    expect(Date.now() - t).toBeLessThan(500);
    expect(await outbox.size()).toBe(1);
  });

  test('stops promptly while waiting in a blocking read', async () => {
    const outbox = new MemoryEventOutbox();
    const r = relay({ outbox, transport: new FakeTransport(), logger: captureLogger().logger, blockMs: 10_000 });
    r.start();
    await sleep(20);
    const t = Date.now();
    await r.stop();
    expect(Date.now() - t).toBeLessThan(500);
    await outbox.close(); // ends the abandoned read
  });

  test('with a lease: publishes only while holding it; a new term starts from the oldest entry left', async () => {
    const outbox = new MemoryEventOutbox();
    const transport = new FakeTransport();
    const lease = new FakeLease();
    lease.available = false;
    const r = relay({ outbox, transport, logger: captureLogger().logger, lease, leaseTtlMs: 150 });
    r.start();
    const e1 = wireEvent();
    await outbox.append(e1);
    await sleep(100);
    expect(transport.published).toEqual([]);
    expect(r.isLeader()).toBe(false);

    lease.available = true;
    await until(() => transport.published.length === 1, 'published once leader');
    expect(r.isLeader()).toBe(true);

    // lease lost: an appended event waits
    lease.available = false;
    const e2 = wireEvent();
    await outbox.append(e2);
    await sleep(100);
    expect(transport.published).toEqual([e1.id]);
    lease.available = true;
    await until(() => transport.published.length === 2, 'published in the next term');
    expect(transport.published).toEqual([e1.id, e2.id]);
    expect(lease.tokens).toBe(2);
  });

  test('stop releases the lease', async () => {
    const lease = new FakeLease();
    const r = relay({ outbox: new MemoryEventOutbox(), transport: new FakeTransport(), logger: captureLogger().logger, lease });
    r.start();
    await until(() => r.isLeader(), 'leader');
    await r.stop();
    expect(lease.held).toBe(false);
  });

  test('drain: publishes what is pending (started or not); false at once when the transport is unreachable', async () => {
    const outbox = new MemoryEventOutbox();
    const transport = new FakeTransport();
    const r = relay({ outbox, transport, logger: captureLogger().logger });
    for (let i = 0; i < 3; i++) await outbox.append(wireEvent());
    expect(await r.drain(1000)).toBe(true);
    expect(transport.published).toHaveLength(3);

    r.start();
    for (let i = 0; i < 3; i++) await outbox.append(wireEvent());
    expect(await r.drain(1000)).toBe(true);
    expect(transport.published).toHaveLength(6);

    transport.reachable = false;
    transport.fail = () => true;
    await outbox.append(wireEvent());
    const t = Date.now();
    expect(await r.drain(5000)).toBe(false);
    expect(Date.now() - t).toBeLessThan(500);
  });

  test('embedded mode: memory outbox -> in-process transport reaches subscribeAll handlers in order', async () => {
    const outbox = new MemoryEventOutbox();
    const transport = new InProcessEventTransport();
    const got: string[] = [];
    await transport.subscribeAll((e) => got.push(e.id));
    relay({ outbox, transport, logger: captureLogger().logger }).start();
    const events = Array.from({ length: 20 }, () => wireEvent());
    for (const e of events) await outbox.append(e);
    await until(() => got.length === 20, 'all delivered');
    expect(got).toEqual(events.map((e) => e.id));
    await transport.close();
  });
});
