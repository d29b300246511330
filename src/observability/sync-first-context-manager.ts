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
 * work calls `track()` first (keyward's validation steps that read the store or a rate limit,
 * admin calls, streams and event consumers do, through span-helpers.ts), which switches it on with
 * the current context, and calls the release it got back when the work has settled. When the last
 * release comes, it is switched off again (on the next turn of the event loop, after every frame
 * of the current one has ended). Async work started inside a span without `track()` runs without
 * the span's context: its spans have no parent (so ioredis makes none) and its log lines no trace
 * id. In keyward's request paths that is only fire-and-forget work that outlives its call.
 */
export class SyncFirstContextManager implements ContextManager {
  private readonly als = new AsyncLocalStorage<Context>();
  /** The context of the innermost `with` running now, undefined outside any. */
  private frame: Context | undefined;
  /** The innermost frame began untracked and tracking was switched on inside it (its ambient store was set). */
  private dirty = false;
  private inFlight = 0;
  private tracking = false;
  private offScheduled = false;
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
      // tracking began inside this frame: what the rest of this turn creates belongs to the outer context
      // (tracking is switched off only on a later turn, so enterWith does not switch it on again)
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
    return () => {
      if (released) return;
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

  /** Listeners added from now on run in `ctx` (as the SDK's managers bind emitters). */
  private bindEmitter(ctx: Context, emitter: EventEmitter): EventEmitter {
    const bound = new WeakMap<(...a: unknown[]) => unknown, (...a: unknown[]) => unknown>();
    const wrap = (listener: (...a: unknown[]) => unknown) => {
      let b = bound.get(listener);
      if (b === undefined) bound.set(listener, (b = this.bindFunction(ctx, listener)));
      return b;
    };
    type Add = (event: string | symbol, listener: (...a: unknown[]) => unknown) => EventEmitter;
    for (const name of ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener'] as const) {
      const original = emitter[name].bind(emitter) as Add;
      emitter[name] = ((event: string | symbol, listener: (...a: unknown[]) => unknown) => original(event, wrap(listener))) as never;
    }
    for (const name of ['off', 'removeListener'] as const) {
      const original = emitter[name].bind(emitter) as Add;
      emitter[name] = ((event: string | symbol, listener: (...a: unknown[]) => unknown) => original(event, bound.get(listener) ?? listener)) as never;
    }
    return emitter;
  }
}
