import {
  context,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type ContextManager,
  type Span,
  type Tracer,
} from '@opentelemetry/api';

/*
 * The span helpers keyward's own code uses. They depend only on @opentelemetry/api, so importing
 * them costs nothing when tracing is off; `tracing.ts` switches them on once a tracer provider is
 * registered (with an exporter). Until then every helper is a flag test and a direct call.
 *
 * Child spans are made only under a recording parent: a validation step never starts a trace of
 * its own, and with parent-based sampling an unsampled request costs no span at all.
 */

export const TRACER_NAME = 'keyward';

let tracer: Tracer | undefined;
let rootsUnsampled = false;
let serverSpans: ServerSpanStarter | undefined;
let asyncContext: AsyncContextTracker | undefined;

/** Starts keyward's gRPC SERVER spans (light-span.ts); without one the tracer's spans are used. */
export interface ServerSpanStarter {
  start(name: string, attributes: Attributes, parent: Context): Span;
}

/**
 * The registered context manager (sync-first-context-manager.ts), reached directly on the request
 * path rather than through the API's global registry, and its switch for async propagation.
 */
export interface AsyncContextTracker extends Pick<ContextManager, 'active' | 'with'> {
  /** Async work starts in the active context; call the release when it has settled. */
  track(): () => void;
}

const NOTHING_TO_RELEASE = (): void => undefined;

/**
 * Called by tracing.ts when a provider is registered (or removed). `rootsUnsampled`: the sampler
 * never samples a new trace (ratio 0, always_off), so a request without a caller's trace context
 * can skip even the sampler's decision. `asyncContext`: the registered context manager propagates
 * contexts across async work only while it is told of such work (without one, it always does).
 */
export function setTracer(
  t: Tracer | undefined,
  opts: { rootsUnsampled?: boolean; serverSpans?: ServerSpanStarter; asyncContext?: AsyncContextTracker } = {},
): void {
  tracer = t;
  rootsUnsampled = t !== undefined && opts.rootsUnsampled === true;
  serverSpans = t === undefined ? undefined : opts.serverSpans;
  asyncContext = t === undefined ? undefined : opts.asyncContext;
}

/** The active context: from the registered manager itself when keyward registered it. */
function activeContext(): Context {
  return asyncContext === undefined ? context.active() : asyncContext.active();
}

/**
 * Runs `fn(a, b)` in `ctx`, through the registered manager directly when keyward registered it
 * (the gRPC server spans' wrapper, once per traced call).
 */
export function runWithContext<A, B, R>(ctx: Context, fn: (a: A, b: B) => R, a: A, b: B): R {
  return asyncContext === undefined ? context.with(ctx, fn, undefined, a, b) : asyncContext.with(ctx, fn, undefined, a, b);
}

/**
 * Before starting async work whose continuations must keep the active span (its spans, its log
 * lines): returns the release to call once the work has settled.
 */
export function trackAsyncWork(): () => void {
  return asyncContext === undefined ? NOTHING_TO_RELEASE : asyncContext.track();
}

/** @internal For grpc-server-spans.ts. */
export function serverSpanStarter(): ServerSpanStarter | undefined {
  return serverSpans;
}

/** @internal True when new traces are never sampled (see setTracer). */
export function rootsNeverSampled(): boolean {
  return rootsUnsampled;
}

/** True once tracing is configured (an OTLP endpoint is set), whatever the sampling ratio. */
export function tracingEnabled(): boolean {
  return tracer !== undefined;
}

/** @internal For the messaging helpers. */
export function activeTracer(): Tracer | undefined {
  return tracer;
}

/**
 * Runs `fn` in a child span of the active span, when tracing is on and the active span records;
 * otherwise just runs it (`span` is then undefined). A promise result ends the span when it
 * settles. A failure sets the span's status to ERROR with the error's name only: messages can
 * carry request data, and spans must never carry a secret.
 */
export function withSpan<T>(name: string, attributes: Attributes | undefined, fn: (span: Span | undefined) => T): T {
  if (tracer === undefined) return fn(undefined);
  const parent = context.active();
  const parentSpan = trace.getSpan(parent);
  if (parentSpan === undefined) return fn(undefined);
  // unsampled, but a caller's trace: no span, and its context still follows the work (log lines, events)
  if (!parentSpan.isRecording()) return tracked(() => fn(undefined));
  const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }, parent);
  return runInSpan(trace.setSpan(parent, span), span, () => fn(span));
}

/** Runs `fn` with async propagation on until its result settles. */
function tracked<T>(fn: () => T): T {
  const release = trackAsyncWork();
  let result: T;
  try {
    result = fn();
  } catch (err) {
    release();
    throw err;
  }
  if (result instanceof Promise) return result.finally(release) as T;
  release();
  return result;
}

/**
 * Runs `fn` in `ctx` (which holds `span`), with async propagation on until it settles, and ends
 * the span then: at once for a value, when a promise settles for a promise, failed on an error.
 */
export function runInSpan<T>(ctx: Context, span: Span, fn: () => T): T {
  let result: T;
  try {
    result = tracked(() => context.with(ctx, fn));
  } catch (err) {
    endWithError(span, err);
    throw err;
  }
  if (result instanceof Promise) {
    return result.then(
      (value: unknown) => {
        span.end();
        return value;
      },
      (err: unknown) => {
        endWithError(span, err);
        throw err;
      },
    ) as T;
  }
  span.end();
  return result;
}

/**
 * The active span when tracing is on and it records, for attributes that are not worth a span of
 * their own (a cache hit takes a microsecond; a span for it would cost several).
 */
export function recordingActiveSpan(): Span | undefined {
  if (tracer === undefined) return undefined;
  const ctx = activeContext();
  // no span anywhere (an untraced call at ratio 0): the common case, answered without a lookup
  if (ctx === ROOT_CONTEXT) return undefined;
  const span = trace.getSpan(ctx);
  return span !== undefined && span.isRecording() ? span : undefined;
}

/** Marks a span failed (error name only, never the message) and ends it. */
export function endWithError(span: Span, err: unknown): void {
  const type = errorName(err);
  span.setAttribute('error.type', type);
  span.setStatus({ code: SpanStatusCode.ERROR, message: type });
  span.end();
}

function errorName(err: unknown): string {
  if (err instanceof Error) return err.name || 'Error';
  return typeof err;
}

/** The W3C `traceparent` of the active span, or undefined when tracing is off or no span is active. */
export function traceparentOfActiveSpan(): string | undefined {
  if (tracer === undefined) return undefined;
  const span = trace.getSpan(context.active());
  return span === undefined ? undefined : traceparentOf(span);
}

/** The W3C `traceparent` (version 00) of a span, or undefined when its context is not valid. */
export function traceparentOf(span: Span): string | undefined {
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return undefined;
  const flags = sc.traceFlags & TraceFlags.SAMPLED ? '01' : '00';
  return `00-${sc.traceId}-${sc.spanId}-${flags}`;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * A context whose (remote) parent is the span a W3C `traceparent` names; undefined when the
 * value is missing or not a valid traceparent (version ff, all-zero ids, extra fields in 00).
 */
export function contextFromTraceparent(traceparent: string | undefined, base: Context = ROOT_CONTEXT): Context | undefined {
  if (!traceparent) return undefined;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (m === null || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return undefined;
  const sc = { traceId: m[2], spanId: m[3], traceFlags: parseInt(m[4], 16) & TraceFlags.SAMPLED, isRemote: true };
  if (!isSpanContextValid(sc)) return undefined;
  return trace.setSpanContext(base, sc);
}
