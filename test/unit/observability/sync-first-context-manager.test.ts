import { EventEmitter } from 'node:events';
import { createContextKey, ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import { SyncFirstContextManager } from '../../../src/observability/sync-first-context-manager';

const KEY = createContextKey('test');
const ctx = (name: string): Context => ROOT_CONTEXT.setValue(KEY, name);
const nameOf = (c: Context): unknown => c.getValue(KEY);
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('SyncFirstContextManager', () => {
  let m: SyncFirstContextManager;
  beforeEach(() => {
    m = new SyncFirstContextManager();
  });
  afterEach(() => {
    m.disable();
  });

  it('keeps the active context on a stack: nested frames, return values, and exceptions', () => {
    expect(m.active()).toBe(ROOT_CONTEXT);
    const seen: unknown[] = [];
    const out = m.with(ctx('a'), (x: number) => {
      seen.push(nameOf(m.active()));
      m.with(ctx('b'), () => seen.push(nameOf(m.active())));
      expect(() => m.with(ctx('c'), () => {
        throw new Error('boom');
      })).toThrow('boom');
      seen.push(nameOf(m.active()));
      return x * 2;
    }, undefined, 21);
    expect(out).toBe(42);
    expect(seen).toEqual(['a', 'b', 'a']);
    expect(m.active()).toBe(ROOT_CONTEXT);
  });

  it('does not follow async work that was not tracked (no async hooks on the synchronous path)', async () => {
    const after = await m.with(ctx('a'), async () => {
      await null;
      return nameOf(m.active());
    });
    expect(after).toBeUndefined();
    expect(m.tracksAsyncWork).toBe(false);
  });

  it('follows tracked async work across awaits, timers and nested frames, then switches off', async () => {
    const seen: unknown[] = [];
    const work = m.with(ctx('a'), async () => {
      const release = m.track();
      try {
        await null;
        seen.push(nameOf(m.active()));
        await new Promise((resolve) => setTimeout(resolve, 1));
        seen.push(nameOf(m.active()));
        await m.with(ctx('b'), async () => {
          await nextTurn();
          seen.push(nameOf(m.active()));
        });
        seen.push(nameOf(m.active()));
      } finally {
        release();
      }
    });
    expect(m.active()).toBe(ROOT_CONTEXT); // the frame has ended: the rest of this turn is outside it
    await work;
    expect(seen).toEqual(['a', 'a', 'b', 'a']);
    expect(m.tracksAsyncWork).toBe(true); // switched off on the next turn, not inside a frame
    await nextTurn();
    expect(m.tracksAsyncWork).toBe(false);
    expect(m.active()).toBe(ROOT_CONTEXT);
  });

  it('after a frame that switched tracking on, work created later in the same turn is outside it', async () => {
    let inner: Promise<unknown> | undefined;
    m.with(ctx('a'), () => {
      const release = m.track();
      inner = Promise.resolve().then(() => nameOf(m.active()));
      void inner.finally(release);
    });
    const outside = Promise.resolve().then(() => nameOf(m.active()));
    expect(await inner).toBe('a');
    expect(await outside).toBeUndefined();
  });

  it('stays on while any tracked work is in flight, and releases once per track', async () => {
    const r1 = m.track();
    const r2 = m.track();
    r1();
    r1(); // a second call of the same release counts once
    await nextTurn();
    expect(m.tracksAsyncWork).toBe(true);
    r2();
    await nextTurn();
    expect(m.tracksAsyncWork).toBe(false);
  });

  it('stays on when new work is tracked in the turn the last release came in', async () => {
    m.track()();
    const r = m.track();
    await nextTurn();
    expect(m.tracksAsyncWork).toBe(true);
    r();
    await nextTurn();
    expect(m.tracksAsyncWork).toBe(false);
  });

  it('gives the outer frame back its own context when tracking began in an inner one', async () => {
    let inA: Promise<unknown> | undefined;
    let inB: Promise<unknown> | undefined;
    m.with(ctx('a'), () => {
      m.with(ctx('b'), () => {
        const release = m.track();
        inB = Promise.resolve().then(() => nameOf(m.active()));
        void inB.finally(release);
      });
      inA = Promise.resolve().then(() => nameOf(m.active()));
    });
    const outside = Promise.resolve().then(() => nameOf(m.active()));
    expect([await inB, await inA, await outside]).toEqual(['b', 'a', undefined]);
  });

  it('ignores releases handed out before disable()', async () => {
    const before = m.track();
    m.disable();
    const r = m.track();
    before(); // must not count against the work tracked since
    await nextTurn();
    expect(m.tracksAsyncWork).toBe(true);
    r();
    await nextTurn();
    expect(m.tracksAsyncWork).toBe(false);
  });

  it('binds functions and event emitters to a context', () => {
    const f = m.bind(ctx('f'), () => nameOf(m.active()));
    expect(f()).toBe('f');
    const emitter = m.bind(ctx('e'), new EventEmitter());
    const seen: unknown[] = [];
    const listener = () => seen.push(nameOf(m.active()));
    emitter.on('x', listener);
    emitter.once('y', listener);
    emitter.emit('x');
    emitter.emit('y');
    emitter.emit('y');
    emitter.removeListener('x', listener);
    emitter.emit('x');
    expect(seen).toEqual(['e', 'e']);
    expect(emitter.listenerCount('x')).toBe(0);
  });

  it('removes once-listeners by the listener given, and keeps the first binding of an emitter', () => {
    const emitter = m.bind(ctx('first'), new EventEmitter());
    m.bind(ctx('second'), emitter);
    const seen: unknown[] = [];
    const listener = () => seen.push(nameOf(m.active()));
    emitter.once('x', listener);
    emitter.prependOnceListener('y', listener);
    emitter.removeListener('x', listener);
    emitter.off('y', listener);
    expect([emitter.listenerCount('x'), emitter.listenerCount('y')]).toEqual([0, 0]);
    emitter.on('z', listener);
    emitter.emit('x');
    emitter.emit('z');
    expect(seen).toEqual(['first']);
  });
});
