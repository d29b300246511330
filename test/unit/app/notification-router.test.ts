import {
  InvalidRouteError,
  isTypePattern,
  NotificationRouter,
  RouterClosedError,
  typeMatches,
  UnknownChannelError,
  type Route,
  type RouterTimers,
} from '../../../src/app/notification-router';
import type { Priority } from '../../../src/domain/events';
import type { WireEvent } from '../../../src/ports/event-transport';
import type { NotificationChannel } from '../../../src/ports/notification-channel';
import { captureLogger, routed } from '../helpers/events';

class FakeChannel implements NotificationChannel {
  readonly batches: string[][] = [];
  closed = 0;
  fail: Error | undefined;
  /** While set, send() waits for it. */
  gate: Promise<void> | undefined;
  constructor(readonly name: string) {}
  async send(events: readonly WireEvent[]): Promise<void> {
    if (this.gate) await this.gate;
    if (this.fail) throw this.fail;
    this.batches.push(events.map((e) => e.id));
  }
  async close(): Promise<void> {
    this.closed++;
  }
  get ids(): string[] {
    return this.batches.flat();
  }
}

/** Timers that fire only when the test advances them. */
class FakeTimers implements RouterTimers {
  now = 0;
  private pending = new Map<number, { at: number; fn: () => void }>();
  private next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  get count(): number {
    return this.pending.size;
  }
  async advance(ms: number): Promise<void> {
    this.now += ms;
    for (const [id, t] of [...this.pending].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at <= this.now) {
        this.pending.delete(id);
        t.fn();
      }
    }
    await new Promise((r) => setImmediate(r));
  }
}

function setup(routes: Route[], opts: { names?: string[]; maxSize?: number; windowMs?: number } = {}) {
  const names = opts.names ?? ['a', 'b', 'c'];
  const ch = Object.fromEntries(names.map((n) => [n, new FakeChannel(n)]));
  const timers = new FakeTimers();
  const log = captureLogger();
  const router = new NotificationRouter({
    channels: new Map(Object.entries(ch)),
    routes,
    batch: { maxSize: opts.maxSize ?? 3, windowMs: opts.windowMs ?? 1_000 },
    logger: log.logger,
    timers,
  });
  return { router, ch, timers, log };
}

const route = (types: string[], channels: string[], priorities: Priority[] = []): Route => ({ types, priorities, channels });

describe('type patterns', () => {
  it('matches exact types, trailing wildcards on a dot boundary, and *', () => {
    expect(typeMatches('key.revoked', 'key.revoked')).toBe(true);
    expect(typeMatches('key.revoked', 'key.rotated')).toBe(false);
    expect(typeMatches('key.*', 'key.revoked')).toBe(true);
    expect(typeMatches('key.*', 'key.rotation_due')).toBe(true);
    expect(typeMatches('key.*', 'keys.revoked')).toBe(false);
    expect(typeMatches('key.*', 'key')).toBe(false);
    expect(typeMatches('quota.*', 'key.revoked')).toBe(false);
    expect(typeMatches('*', 'policy.violation')).toBe(true);
  });

  it('accepts only those forms', () => {
    for (const ok of ['*', 'key.revoked', 'key.*', 'ratelimit.exceeded', 'a.b.*']) expect(isTypePattern(ok)).toBe(true);
    for (const bad of ['', 'key*', 'ke*.x', '*.revoked', 'key.*.x', 'key.', '.key', 'Key.Revoked', 'key revoked', '**']) {
      expect(isTypePattern(bad)).toBe(false);
    }
  });
});

describe('NotificationRouter routing', () => {
  it('routes by type wildcard and priority', async () => {
    const { router, ch } = setup([
      route(['key.*'], ['a'], ['critical', 'high']),
      route(['quota.exceeded'], ['b']),
      route(['*'], ['c'], ['normal']),
    ]);
    const revoked = routed('key.revoked', 'critical');
    const created = routed('key.created', 'normal');
    const quota = routed('quota.exceeded', 'high');
    const policy = routed('policy.violation', 'normal');
    for (const e of [revoked, created, quota, policy]) await router.dispatch(e);
    expect(ch.a.ids).toEqual([revoked.id]);
    expect(ch.b.ids).toEqual([quota.id]);
    expect(ch.c.ids).toEqual([created.id, policy.id]);
  });

  it('sends to the union of the matching routes, each channel once', async () => {
    const { router, ch } = setup([route(['key.revoked'], ['a', 'b']), route(['key.*'], ['b', 'c']), route(['*'], ['a'])]);
    const e = routed('key.revoked', 'critical');
    await router.dispatch(e);
    expect(ch.a.batches).toEqual([[e.id]]);
    expect(ch.b.batches).toEqual([[e.id]]);
    expect(ch.c.batches).toEqual([[e.id]]);
    expect(router.channelsFor('key.revoked', 'critical').map((c) => c.name)).toEqual(['a', 'b', 'c']);
    expect(router.channelsFor('quota.exceeded', 'high').map((c) => c.name)).toEqual(['a']);
  });

  it('drops events no route matches', async () => {
    const { router, ch } = setup([route(['key.revoked'], ['a'])]);
    await router.dispatch(routed('key.created', 'normal'));
    await router.dispatch(routed('key.revoked', 'low'));
    await router.flush();
    expect(ch.a.ids).toHaveLength(1);
  });

  it('one failing channel does not block the others; the failure is logged', async () => {
    const { router, ch, log } = setup([route(['*'], ['a', 'b', 'c'])]);
    ch.b.fail = new Error('boom');
    const e = routed('key.revoked', 'critical');
    await expect(router.dispatch(e)).resolves.toBeUndefined();
    expect(ch.a.ids).toEqual([e.id]);
    expect(ch.c.ids).toEqual([e.id]);
    const line = log.lines.find((l) => l.msg === 'notification channel failed to take events');
    expect(line).toMatchObject({ level: 50, channel: 'b', eventIds: [e.id] });
  });

  it('sends to every channel in parallel: a slow channel does not delay the send to another', async () => {
    const { router, ch } = setup([route(['*'], ['a', 'b'])]);
    let release!: () => void;
    ch.a.gate = new Promise<void>((r) => (release = r));
    const e = routed('key.revoked', 'critical');
    const done = router.dispatch(e);
    await new Promise((r) => setImmediate(r));
    expect(ch.b.ids).toEqual([e.id]); // already sent while a is still busy
    expect(ch.a.ids).toEqual([]);
    release();
    await done;
    expect(ch.a.ids).toEqual([e.id]);
  });

  it('refuses routes naming unknown channels, listing them and the known ones', () => {
    const make = () =>
      new NotificationRouter({
        channels: new Map([['log', new FakeChannel('log')], ['ops', new FakeChannel('ops')]]),
        routes: [route(['*'], ['log', 'pager']), route(['key.*'], ['slack', 'pager'])],
        logger: captureLogger().logger,
      });
    expect(make).toThrow(UnknownChannelError);
    expect(make).toThrow('notification routes name unknown channel(s) pager, slack; known: log, ops');
    try {
      make();
    } catch (err) {
      expect(err).toMatchObject({ name: 'UnknownChannelError', unknown: ['pager', 'slack'], known: ['log', 'ops'] });
    }
  });

  it('refuses routes that cannot work as written', () => {
    const make = (r: Route) => () => setup([route(['*'], ['a']), r]);
    expect(make(route([], ['a']))).toThrow(InvalidRouteError);
    expect(make(route([], ['a']))).toThrow(/^notification route 1: types must not be empty/);
    expect(make(route(['ke*'], ['a']))).toThrow('notification route 1: type "ke*" must be an event type');
    expect(make(route(['*'], ['a'], ['urgent' as Priority]))).toThrow('notification route 1: priority "urgent" must be one of');
    expect(make(route(['*'], []))).toThrow('notification route 1: channels must not be empty');
    expect(() => setup([], { maxSize: 0 })).toThrow(RangeError);
    expect(() => setup([], { windowMs: -1 })).toThrow(RangeError);
  });
});

describe('NotificationRouter batching of low-priority events', () => {
  it('sends a batch as soon as it reaches maxSize', async () => {
    const { router, ch, timers } = setup([route(['ratelimit.*'], ['a', 'b'])], { maxSize: 3 });
    const events = [1, 2, 3, 4].map(() => routed('ratelimit.exceeded', 'low'));
    await router.dispatch(events[0]);
    await router.dispatch(events[1]);
    expect(ch.a.batches).toEqual([]);
    expect(router.buffered).toBe(4); // 2 events, 2 channels
    await router.dispatch(events[2]);
    expect(ch.a.batches).toEqual([events.slice(0, 3).map((e) => e.id)]);
    expect(ch.b.batches).toEqual([events.slice(0, 3).map((e) => e.id)]);
    expect(timers.count).toBe(0); // the full batch's window timer is gone
    await router.dispatch(events[3]);
    expect(router.buffered).toBe(2);
    expect(timers.count).toBe(2);
  });

  it('sends a batch windowMs after its first event', async () => {
    const { router, ch, timers } = setup([route(['*'], ['a'])], { maxSize: 100, windowMs: 1_000 });
    const e1 = routed('ratelimit.exceeded', 'low');
    const e2 = routed('ratelimit.exceeded', 'low');
    await router.dispatch(e1);
    await timers.advance(600);
    await router.dispatch(e2);
    await timers.advance(399);
    expect(ch.a.batches).toEqual([]);
    await timers.advance(1); // 1000 ms after e1, not after e2
    expect(ch.a.batches).toEqual([[e1.id, e2.id]]);
    const e3 = routed('ratelimit.exceeded', 'low');
    await router.dispatch(e3); // a new batch, a new window
    await timers.advance(999);
    expect(ch.a.batches).toHaveLength(1);
    await timers.advance(1);
    expect(ch.a.batches).toEqual([[e1.id, e2.id], [e3.id]]);
  });

  it('does not batch critical, high or normal events, even between low ones', async () => {
    const { router, ch } = setup([route(['*'], ['a'])], { maxSize: 10 });
    const low = routed('ratelimit.exceeded', 'low');
    await router.dispatch(low);
    for (const p of ['critical', 'high', 'normal'] as Priority[]) await router.dispatch(routed('key.revoked', p, `evt_${p}`));
    expect(ch.a.batches).toEqual([['evt_critical'], ['evt_high'], ['evt_normal']]);
    await router.flush();
    expect(ch.a.batches[3]).toEqual([low.id]);
  });

  it('batches per channel: each channel gets only the events routed to it', async () => {
    const { router, ch, timers } = setup([route(['ratelimit.*'], ['a']), route(['policy.*'], ['a', 'b'])], { maxSize: 10 });
    const r = routed('ratelimit.exceeded', 'low');
    const p = routed('policy.violation', 'low');
    await router.dispatch(r);
    await router.dispatch(p);
    await timers.advance(1_000);
    expect(ch.a.batches).toEqual([[r.id, p.id]]);
    expect(ch.b.batches).toEqual([[p.id]]);
  });

  it('a failing batch send is logged and does not affect another channel', async () => {
    const { router, ch, timers, log } = setup([route(['*'], ['a', 'b'])], { maxSize: 10 });
    ch.a.fail = new Error('down');
    const e = routed('ratelimit.exceeded', 'low');
    await router.dispatch(e);
    await timers.advance(1_000);
    expect(ch.b.batches).toEqual([[e.id]]);
    expect(log.lines.some((l) => l.channel === 'a' && l.level === 50)).toBe(true);
  });

  it('flush() sends every batch now and clears their timers', async () => {
    const { router, ch, timers } = setup([route(['*'], ['a', 'b'])], { maxSize: 10 });
    const e = routed('ratelimit.exceeded', 'low');
    await router.dispatch(e);
    expect(timers.count).toBe(2);
    await router.flush();
    expect(ch.a.batches).toEqual([[e.id]]);
    expect(ch.b.batches).toEqual([[e.id]]);
    expect(timers.count).toBe(0);
    expect(router.buffered).toBe(0);
    await timers.advance(5_000);
    expect(ch.a.batches).toHaveLength(1); // no second send from a stale timer
  });

  it('close() flushes, waits for sends in flight, closes every channel once, then refuses events', async () => {
    const { router, ch, log } = setup([route(['*'], ['a', 'b'])], { maxSize: 10 });
    ch.c.close = async () => {
      throw new Error('close failed');
    };
    const low = routed('ratelimit.exceeded', 'low');
    await router.dispatch(low);
    let release!: () => void;
    ch.b.gate = new Promise<void>((r) => (release = r));
    const closing = router.close();
    await new Promise((r) => setImmediate(r));
    expect(ch.a.closed).toBe(0); // b's batch is still in flight
    release();
    await Promise.all([closing, router.close()]);
    expect(ch.a.batches).toEqual([[low.id]]);
    expect(ch.b.batches).toEqual([[low.id]]);
    expect(ch.a.closed).toBe(1);
    expect(ch.b.closed).toBe(1);
    expect(log.lines.some((l) => l.channel === 'c' && l.msg === 'notification channel failed to close')).toBe(true);
    await expect(router.dispatch(routed('key.revoked', 'critical'))).rejects.toBeInstanceOf(RouterClosedError);
  });

  it('works with real timers (jest fake timers), which it unrefs', async () => {
    jest.useFakeTimers();
    try {
      const a = new FakeChannel('a');
      const router = new NotificationRouter({
        channels: new Map([['a', a]]),
        routes: [route(['*'], ['a'])],
        logger: captureLogger().logger,
      });
      const e = routed('ratelimit.exceeded', 'low');
      await router.dispatch(e);
      await jest.advanceTimersByTimeAsync(4_999);
      expect(a.batches).toEqual([]);
      await jest.advanceTimersByTimeAsync(1); // default window 5 s
      expect(a.batches).toEqual([[e.id]]);
      await router.close();
    } finally {
      jest.useRealTimers();
    }
  });

  it('default batch maxSize is 100', async () => {
    const a = new FakeChannel('a');
    const router = new NotificationRouter({ channels: new Map([['a', a]]), routes: [route(['*'], ['a'])], logger: captureLogger().logger });
    for (let i = 0; i < 99; i++) await router.dispatch(routed('ratelimit.exceeded', 'low'));
    expect(a.batches).toHaveLength(0);
    await router.dispatch(routed('ratelimit.exceeded', 'low'));
    expect(a.batches).toHaveLength(1);
    expect(a.batches[0]).toHaveLength(100);
    await router.close();
  });
});
