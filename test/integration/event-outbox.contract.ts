import type { EventOutbox } from '../../src/ports/event-outbox';
import { sleep, wireEvent } from './event-fixtures';

/**
 * The behaviour every EventOutbox must have, run against each implementation
 * (memory-event-outbox.test.ts, redis-event-outbox.test.ts). Checks go through the port only.
 */
export interface OutboxUnderTest {
  outbox: EventOutbox;
  cleanup(): Promise<void>;
}

export function describeEventOutboxContract(name: string, make: () => Promise<OutboxUnderTest>): void {
  describe(`${name} (EventOutbox contract)`, () => {
    let outbox: EventOutbox;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ outbox, cleanup } = await make());
    });

    afterEach(async () => {
      await cleanup();
    });

    test('reads back in append order, with increasing seqs, at most `limit`, after a given seq', async () => {
      const events = Array.from({ length: 7 }, (_, n) => wireEvent({ n }));
      for (const e of events) await outbox.append(e);
      const first = await outbox.read(undefined, 4, 0);
      expect(first.map((x) => x.event.id)).toEqual(events.slice(0, 4).map((e) => e.id));
      const rest = await outbox.read(first[3].seq, 100, 0);
      expect(rest.map((x) => x.event.id)).toEqual(events.slice(4).map((e) => e.id));
      const seqs = [...first, ...rest].map((x) => x.seq);
      expect(new Set(seqs).size).toBe(7);
      // reading again does not consume: the same entries, the same seqs
      expect((await outbox.read(undefined, 100, 0)).map((x) => x.seq)).toEqual(seqs);
      expect(await outbox.read(rest[2].seq, 100, 0)).toEqual([]);
    });

    test('keeps every field of the event, traceparent included', async () => {
      const e = wireEvent({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
      const plain = wireEvent();
      await outbox.append(e);
      await outbox.append(plain);
      const [a, b] = await outbox.read(undefined, 10, 0);
      expect(a.event).toEqual(e);
      expect(b.event).toEqual(plain);
      expect(b.event.traceparent).toBeUndefined();
    });

    test('an empty read returns [] at once without blockMs, and after about blockMs with it', async () => {
      let t = Date.now();
      expect(await outbox.read(undefined, 10, 0)).toEqual([]);
      expect(Date.now() - t).toBeLessThan(500);
      t = Date.now();
      expect(await outbox.read(undefined, 10, 200)).toEqual([]);
      expect(Date.now() - t).toBeGreaterThanOrEqual(150);
    });

    test('a blocked read wakes up when an event is appended, long before its block time', async () => {
      await outbox.append(wireEvent());
      const [old] = await outbox.read(undefined, 10, 0);
      const t = Date.now();
      const pending = outbox.read(old.seq, 10, 10_000);
      await sleep(50);
      const e = wireEvent();
      await outbox.append(e);
      const got = await pending;
      expect(got.map((x) => x.event.id)).toEqual([e.id]);
      expect(Date.now() - t).toBeLessThan(5000);
    });

    test('ack drops the entries up to and including the seq, oldest first; size counts the rest', async () => {
      const events = Array.from({ length: 5 }, (_, n) => wireEvent({ n }));
      for (const e of events) await outbox.append(e);
      expect(await outbox.size()).toBe(5);
      const all = await outbox.read(undefined, 10, 0);
      await outbox.ack(all[1].seq);
      expect(await outbox.size()).toBe(3);
      expect((await outbox.read(undefined, 10, 0)).map((x) => x.event.id)).toEqual(events.slice(2).map((e) => e.id));
      // an ack of an older seq (a late retry) changes nothing
      await outbox.ack(all[0].seq);
      expect(await outbox.size()).toBe(3);
      // acking a later seq drops the earlier ones too, even those never acked one by one
      await outbox.ack(all[3].seq);
      expect((await outbox.read(undefined, 10, 0)).map((x) => x.event.id)).toEqual([events[4].id]);
      await outbox.ack(all[4].seq);
      expect(await outbox.size()).toBe(0);
      // seqs keep increasing after the outbox ran empty
      await outbox.append(wireEvent());
      const [next] = await outbox.read(all[4].seq, 10, 0);
      expect(next).toBeDefined();
      expect(await outbox.read(undefined, 10, 0)).toEqual([next]);
    });
  });
}
