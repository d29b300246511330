import { EventTransportUnavailableError } from '../../../../src/adapters/events/errors';
import { InProcessEventTransport } from '../../../../src/adapters/events/in-process-event-transport';
import type { WireEvent } from '../../../../src/ports/event-transport';
import { captureLogger, wireEvent } from '../../helpers/events';

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('InProcessEventTransport', () => {
  test('subscribeAll: every handler gets every event, in order, before publish resolves', async () => {
    const t = new InProcessEventTransport();
    const a: string[] = [];
    const b: string[] = [];
    await t.subscribeAll((e) => a.push(e.id));
    await t.subscribeAll((e) => b.push(e.id));
    const events = [wireEvent(), wireEvent(), wireEvent()];
    for (const e of events) await t.publish(e);
    expect(a).toEqual(events.map((e) => e.id));
    expect(b).toEqual(events.map((e) => e.id));
    await t.close();
  });

  test('a throwing handler is logged and does not keep the event from the others', async () => {
    const log = captureLogger();
    const t = new InProcessEventTransport({ logger: log.logger });
    const got: string[] = [];
    await t.subscribeAll(() => {
      throw new Error('boom');
    });
    await t.subscribeAll((e) => got.push(e.id));
    const e = wireEvent();
    await t.publish(e);
    expect(got).toEqual([e.id]);
    expect(log.lines.some((l) => l.msg === 'event handler threw')).toBe(true);
  });

  test('a closed subscription gets nothing more', async () => {
    const t = new InProcessEventTransport();
    const got: string[] = [];
    const sub = await t.subscribeAll((e) => got.push(e.id));
    await t.publish(wireEvent());
    await sub.close();
    await t.publish(wireEvent());
    expect(got).toHaveLength(1);
  });

  test('subscribeShared: each event to exactly one handler, taking turns', async () => {
    const t = new InProcessEventTransport();
    const seen: [string, string][] = [];
    await t.subscribeShared(async (e) => void seen.push(['a', e.id]));
    await t.subscribeShared(async (e) => void seen.push(['b', e.id]));
    const events = Array.from({ length: 6 }, () => wireEvent());
    for (const e of events) await t.publish(e);
    await tick();
    expect(seen.map(([, id]) => id).sort()).toEqual(events.map((e) => e.id).sort());
    expect(seen.filter(([who]) => who === 'a')).toHaveLength(3);
    await t.close();
  });

  test('subscribeShared: a rejected event is redelivered, at most maxSharedAttempts times in all', async () => {
    const log = captureLogger();
    const t = new InProcessEventTransport({ logger: log.logger, maxSharedAttempts: 3, retryDelay: () => 1 });
    const attempts: string[] = [];
    await t.subscribeShared(async (e: WireEvent) => {
      attempts.push(e.id);
      throw new Error('webhook down');
    });
    const e = wireEvent();
    await t.publish(e);
    for (let i = 0; i < 50 && attempts.length < 3; i++) await tick(5);
    await tick(20);
    expect(attempts).toEqual([e.id, e.id, e.id]);
    expect(log.lines.filter((l) => l.msg === 'event handler failed; the event will be redelivered')).toHaveLength(2);
    expect(log.lines.some((l) => String(l.msg).startsWith('event handler failed on the last delivery'))).toBe(true);
    await t.close();
  });

  test('subscribeShared: succeeds on a later delivery', async () => {
    const t = new InProcessEventTransport({ retryDelay: () => 1 });
    let calls = 0;
    const done: string[] = [];
    await t.subscribeShared(async (e) => {
      if (++calls < 3) throw new Error('not yet');
      done.push(e.id);
    });
    const e = wireEvent();
    await t.publish(e);
    for (let i = 0; i < 50 && done.length === 0; i++) await tick(5);
    expect(done).toEqual([e.id]);
    expect(calls).toBe(3);
  });

  test('the same event id published again within the duplicate window is delivered once', async () => {
    let now = 1_000_000;
    const t = new InProcessEventTransport({ duplicateWindow: 1000, now: () => now });
    const got: string[] = [];
    await t.subscribeAll((e) => got.push(e.id));
    const e = wireEvent();
    await t.publish(e);
    await t.publish(e);
    expect(got).toEqual([e.id]);
    now += 1001;
    await t.publish(e);
    expect(got).toEqual([e.id, e.id]);
  });

  test('ping resolves until closed; after close publish and ping reject with a retryable error', async () => {
    const t = new InProcessEventTransport({ retryDelay: () => 10_000 });
    await expect(t.ping()).resolves.toBeUndefined();
    await t.subscribeShared(async () => {
      throw new Error('x');
    });
    await t.publish(wireEvent()); // schedules a redelivery far away: close must cancel it
    await tick();
    await t.close();
    await expect(t.ping()).rejects.toBeInstanceOf(EventTransportUnavailableError);
    const err = await t.publish(wireEvent()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventTransportUnavailableError);
    expect((err as EventTransportUnavailableError).retryable).toBe(true);
  });
});
