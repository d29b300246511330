import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { ROOT_CONTEXT, type Context, type ContextManager } from '@opentelemetry/api';

/*
 * The OpenTelemetry context manager keyward registers when tracing is on.
 *
 * Why not the SDK's AsyncLocalStorage manager: on Node 20, once AsyncLocalStorage is used, a hook
 * runs for every promise and async resource the process creates, for good (the first traced call
 * switches it on). keyward's hot path, a cached ValidateKey, is synchronous: its server span needs
 * a context for the length of one call stack, not across async work. Measured on that path, the
 * hooks cost about 4 points of throughput at sampling ratio 1.0 (docs/BENCHMARKS.md, Session 5).
 *
 * So the active context lives on a synchronous stack (`with`), and AsyncLocalStorage runs only
 * while work that goes asynchronous inside a span is in flight: code that is about to start such
 * work calls `track()` first (through span-helpers.ts: every `withSpan` step, such as a store,
 * policy or rate-limit read; admin calls, streams and event consumers for their whole length; a
 * ValidateKey from the moment it goes async until it answers), which switches it on with the
 * current context, and calls the release it got back when the work has settled. When the last
 * release comes, it is switched off again on the next turn of the event loop. So a cached
 * ValidateKey runs without the hooks unless other tracked work is in flight. Async work started
 * inside a span without `track()` runs without the span's context (its spans have no parent, so
 * ioredis makes none, and its log lines no trace id): in keyward's request paths, only
 * fire-and-forget work that outlives its call.
 *
 * Node 20 only: where AsyncLocalStorage is built on AsyncContextFrame (the default from Node 24)
 * it costs no hook, and this manager brings nothing but still works.
 */
const BOUND = Symbol('keyward.contextBound');

export class SyncFirstContextManager implements ContextManager {
  private readonly als = new AsyncLocalStorage<Context>();
  /** The context of the innermost `with` running now, undefined outside any. */
  private frame: Context | undefined;
  /**
   * The innermost frame began untracked and tracking was switched on inside it, so the store of
   * the resource running it was set and must be reset when it ends (outside any frame: meaningless).
   */
  private dirty = false;
  private inFlight = 0;
  private tracking = false;
  private offScheduled = false;
  /** Releases handed out before the last `disable()` do nothing. */
  private generation = 0;
  private readonly switchOff = () => {
    this.offScheduled = false;
    if (this.inFlight > 0 || !this.tracking) return;
    this.tracking = false;
    this.als.disable();
  };

  /** True while AsyncLocalStorage propagates contexts (for tests and diagnostics). */
  get tracksAsyncWork(): boolean {
    return this.tracking;
  }

  active(): Context {
    if (this.frame !== undefined) return this.frame;
    return (this.tracking ? this.als.getStore() : undefined) ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    const outer = this.frame;
    const outerDirty = this.dirty;
    const trackedAtEntry = this.tracking;
    this.frame = ctx;
    this.dirty = false;
    try {
      return trackedAtEntry ? this.als.run(ctx, () => fn.apply(thisArg, args)) : fn.apply(thisArg, args);
    } finally {
      const dirty = this.dirty;
      this.frame = outer;
      this.dirty = outerDirty || dirty;
      // tracking began inside this frame: the resource running it gets the outer context back, for the
      // rest of this turn and its later callbacks (tracking is switched off only on a later turn, so
      // enterWith does not switch it on again)
      if (dirty && this.tracking) this.als.enterWith(outer ?? ROOT_CONTEXT);
    }
  }

  /**
   * Async work is about to start in the active context: contexts follow it until the returned
   * release is called (once, when the work has settled).
   */
  track(): () => void {
    this.inFlight++;
    if (!this.tracking) {
      this.tracking = true;
      // from here on in this turn, what is created carries the active context (undone when the frame ends)
      this.als.enterWith(this.active());
      if (this.frame !== undefined) this.dirty = true;
    }
    let released = false;
    const generation = this.generation;
    return () => {
      if (released || generation !== this.generation) return;
      released = true;
      if (--this.inFlight === 0 && !this.offScheduled) {
        this.offScheduled = true;
        setImmediate(this.switchOff);
      }
    };
  }

  bind<T>(ctx: Context, target: T): T {
    if (target instanceof EventEmitter) return this.bindEmitter(ctx, target) as T;
    if (typeof target === 'function') return this.bindFunction(ctx, target as (...a: unknown[]) => unknown) as T;
    return target;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.generation++;
    this.frame = undefined;
    this.dirty = false;
    this.inFlight = 0;
    this.tracking = false;
    this.als.disable();
    return this;
  }

  private bindFunction<F extends (...a: unknown[]) => unknown>(ctx: Context, fn: F): F {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const manager = this;
    return function (this: unknown, ...args: unknown[]) {
      return manager.with(ctx, fn as (...a: unknown[]) => unknown, this, ...args);
    } as F;
  }

  /**
   * Listeners added from now on run in `ctx`, as the SDK's managers bind emitters: the first bind
   * of an emitter wins, and removing a listener removes its bound copy.
   */
  private bindEmitter(ctx: Context, emitter: EventEmitter): EventEmitter {
    const marked = emitter as EventEmitter & { [BOUND]?: true };
    if (marked[BOUND]) return emitter;
    marked[BOUND] = true;
    const bound = new WeakMap<(...a: unknown[]) => unknown, (...a: unknown[]) => unknown>();
    const wrap = (listener: (...a: unknown[]) => unknown) => {
      let b = bound.get(listener);
      if (b === undefined) bound.set(listener, (b = this.bindFunction(ctx, listener)));
      return b;
    };
    type Add = (event: string | symbol, listener: (...a: unknown[]) => unknown) => EventEmitter;
    // `once` adds its own wrapper through `on`: that inner call must pass it through as it is
    let adding = false;
    for (const name of ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener'] as const) {
      const original = emitter[name].bind(emitter) as Add;
      emitter[name] = ((event: string | symbol, listener: (...a: unknown[]) => unknown) => {
        if (adding) return original(event, listener);
        adding = true;
        try {
          return original(event, wrap(listener));
        } finally {
          adding = false;
        }
      }) as never;
    }
    for (const name of ['off', 'removeListener'] as const) {
      const original = emitter[name].bind(emitter) as Add;
      emitter[name] = ((event: string | symbol, listener: (...a: unknown[]) => unknown) => original(event, bound.get(listener) ?? listener)) as never;
    }
    return emitter;
  }
}
