import { errorMonitor } from 'node:events';
import { status, type Metadata, type ServiceDefinition } from '@grpc/grpc-js';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Context, type Span, type SpanOptions, type TextMapGetter } from '@opentelemetry/api';
import { contextWithSpan, LINKED_ROOT } from './linked-context';
import { activeTracer, rootsNeverSampled, runWithContext, serverSpanStarter, trackAsyncWork } from './span-helpers';

/*
 * SERVER spans for keyward's gRPC services, one per call, named `keyward.v1.KeyService/ValidateKey`
 * with the rpc.* attributes of the semantic conventions, the caller's W3C trace context
 * (`traceparent`/`tracestate` metadata) as parent, and the gRPC status code.
 *
 * Why not @opentelemetry/instrumentation-grpc: it runs every call inside `context.with` and binds
 * the call's event emitter even when the span is not sampled, which switches Node's async hooks on
 * for the whole process; measured on the cached ValidateKey path that cost about 20 % of the
 * throughput at sampling ratio 0 (the issue allows 3 %). Here an unsampled call without a caller's
 * trace context goes straight to the handler: the overhead at ratio 0 is one metadata lookup and
 * the sampler's decision. Recording calls get the context (so validation steps, Redis commands and
 * events hang below the server span) like the instrumentation would give.
 *
 * No metadata is ever recorded: `authorization` carries admin credentials.
 */

/** Server-side failures (the semantic conventions' list); client errors leave the status unset. */
const SERVER_ERRORS = new Set<number>([status.UNKNOWN, status.DEADLINE_EXCEEDED, status.UNIMPLEMENTED, status.INTERNAL, status.UNAVAILABLE, status.DATA_LOSS]);

const getter: TextMapGetter<Metadata> = {
  get(md, key) {
    const v = md.get(key);
    if (v.length === 0) return undefined;
    return v.length === 1 ? String(v[0]) : v.map(String);
  },
  keys: (md) => Object.keys(md.getMap()),
};

/** The caller's trace context, or the root context when it sent none (the common, cheap case). */
function parentContext(md: Metadata): Context {
  if (md.get('traceparent').length === 0) return ROOT_CONTEXT;
  const extracted = propagation.extract(LINKED_ROOT, md, getter);
  return extracted === LINKED_ROOT ? ROOT_CONTEXT : extracted; // nothing valid in it
}

/** Sets the status code and ends the span, once (a handler that throws after answering ends it once). */
function end(span: Span, code: number): void {
  if (!span.isRecording()) return;
  span.setAttribute('rpc.grpc.status_code', code);
  if (SERVER_ERRORS.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, message: status[code] });
  span.end();
}

type Callback = (err: { code?: number } | null, value?: unknown, trailer?: unknown, flags?: unknown) => void;
type Handler = (call: { metadata: Metadata; on?: (e: string, l: (...a: unknown[]) => void) => unknown }, callback?: Callback) => unknown;

/**
 * The service implementation with each handler in a SERVER span; the implementation itself when
 * tracing is off. Handlers are called as grpc-js calls them (`call`, and `callback` for unary and
 * client-streaming methods).
 *
 * Per recorded unary call the work is: the span (its options and attributes are made once per
 * method), its context, and one closure that ends it before answering. Async context propagation
 * is on for the length of each call (span-helpers.ts `trackAsyncWork`), except for the methods
 * named in `syncFirst`: handlers that answer synchronously on their hot path and track the async
 * work they start themselves (ValidateKey: a cache hit is synchronous, a miss goes through
 * `withSpan`).
 */
export function traceService<S extends object>(implementation: S, definition: ServiceDefinition, opts: { syncFirst?: readonly string[] } = {}): S {
  const tracer = activeTracer();
  if (tracer === undefined) return implementation;
  const starter = serverSpanStarter();
  const out: Record<string, unknown> = { ...(implementation as Record<string, unknown>) };
  for (const [name, method] of Object.entries(definition)) {
    const handler = out[name] as Handler | undefined;
    if (typeof handler !== 'function') continue;
    const spanName = method.path.replace(/^\//, '');
    const slash = spanName.lastIndexOf('/');
    const attributes = { 'rpc.system': 'grpc', 'rpc.service': spanName.slice(0, slash), 'rpc.method': spanName.slice(slash + 1) };
    const options: SpanOptions = { kind: SpanKind.SERVER, attributes };
    const unaryResponse = !method.responseStream;
    const streaming = method.requestStream || method.responseStream;
    const tracked = !(opts.syncFirst ?? []).includes(name);

    out[name] = (call: Parameters<Handler>[0], callback?: Callback) => {
      const parent = parentContext(call.metadata);
      // no caller context and a sampler that never starts a trace (ratio 0): straight through
      if (parent === ROOT_CONTEXT && rootsNeverSampled()) return handler(call, callback);
      const span = starter !== undefined ? starter.start(spanName, attributes, parent) : tracer.startSpan(spanName, options, parent);
      // unsampled and no caller context to pass on: nothing to do (no context switch, no hooks)
      if (!span.isRecording() && parent === ROOT_CONTEXT) return handler(call, callback);
      const ctx = contextWithSpan(parent, span);
      let release = tracked ? trackAsyncWork() : undefined;
      let finished = false;
      const finish = (code: number) => {
        finished = true;
        release?.();
        end(span, code);
      };
      if (streaming) {
        // listeners the handler adds (on 'data', ...) run in the span's context
        context.bind(ctx, call as unknown as NodeJS.EventEmitter);
        const emitter = call as unknown as NodeJS.EventEmitter;
        emitter.once('finish', () => finish(status.OK));
        emitter.once('cancelled', () => finish(status.CANCELLED));
        emitter.once(errorMonitor, (err: { code?: number }) => finish(err?.code ?? status.UNKNOWN)); // observes, handles nothing
      }
      const done: Callback | undefined =
        unaryResponse && callback
          ? (err, value, trailer, flags) => {
              finish(err ? (err.code ?? status.UNKNOWN) : status.OK);
              callback(err, value, trailer, flags);
            }
          : callback;
      try {
        const result = runWithContext(ctx, handler, call, done);
        // a sync-first handler that did not answer at once went async: keep propagation on until it answers,
        // so that tracking cannot switch off between its steps
        if (!tracked && !finished && unaryResponse) release = trackAsyncWork();
        return result;
      } catch (err) {
        finish(status.UNKNOWN);
        throw err;
      }
    };
  }
  return out as S;
}
